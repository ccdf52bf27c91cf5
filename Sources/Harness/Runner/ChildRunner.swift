import Foundation
import OSLayer
import Probes
import ResultsFormat

/// Runs measured children and brings back what each said and how each ended: spawns them (each its own
/// process group, dying with the parent), relays their events, holds them at the start barrier until every one
/// is at its baseline, watches them (a child silent for ``Limits/stallSeconds`` or running past
/// ``Limits/wallSeconds`` is killed), ends them on Ctrl-C, reaps them and removes what they leave.
package struct ChildRunner {
    /// The watchdog's limits.
    package struct Limits: Sendable, Equatable {
        /// Wall time a child may run in all.
        package var wallSeconds: Double
        /// Time a child may go without sending any event (it sends a heartbeat every half second).
        package var stallSeconds: Double
        /// Time the ranks that came may wait at the start barrier for those that did not (`rendezvous_timeout_s`,
        /// `--rendezvous-timeout`). 300 s: time for a slow node to start its ranks and generate or read the
        /// checkpoint's headers, and half the run limit, so that a rank that never comes is named as such
        /// before the watchdog's wall-time limit ends the waiting ones for a reason of its own.
        package var rendezvousSeconds: Double = 300

        package init(wallSeconds: Double, stallSeconds: Double, rendezvousSeconds: Double = 300) {
            self.wallSeconds = wallSeconds
            self.stallSeconds = stallSeconds
            self.rendezvousSeconds = rendezvousSeconds
        }

        package static let `default` = Limits(wallSeconds: 600, stallSeconds: 60)
    }

    /// One child to start.
    package struct Launch: Sendable {
        package var request: ChildRequest
        package var executable: String
        package var arguments: [String]
        /// The child's environment (the protocol's variables are added).
        package var environment: [String: String]
        /// Where the child's standard error goes, and its request file.
        package var logPath: String
        package var requestPath: String
        /// Removed once the child is reaped (an offload folder, say).
        package var cleanupPaths: [String] = []
        /// Measure the child from outside (a loader that is not the engine) at this interval.
        package var probeInterval: Duration?
        /// Measured from outside: the child is ended as `oom` when its sampled RssAnon passes this.
        package var memoryCapBytes: Int?
        /// A rank: it keeps its model after its final reply until every rank of the run has replied (the
        /// runner then sends `exit` to all), so the machine holds every model at once.
        package var holdsUntilAllLoaded = false
        /// False for a loader command that does not speak the protocol: it is at its baseline (exec) when
        /// spawned, cannot wait at the start barrier and cannot be held, so its ranks overlap only as far as
        /// their launches and load times let them.
        package var speaksProtocol = true
    }

    /// Barriers with processes this runner did not start (the other ranks of a job, `measure-rank`): each is
    /// told once that this runner's children reached it, then asked, every loop, whether all have.
    package struct Gates {
        /// Every rank is at its baseline: loading starts.
        package var allReady: Gate?
        /// Every rank holds its model: each reads its held figures.
        package var allReplied: Gate?
        /// Every rank has read them: the models may go.
        package var allHeld: Gate?

        package init(allReady: Gate? = nil, allReplied: Gate? = nil, allHeld: Gate? = nil) {
            self.allReady = allReady
            self.allReplied = allReplied
            self.allHeld = allHeld
        }

        func pass(_ gate: KeyPath<Gates, Gate?>) -> Bool {
            guard let gate = self[keyPath: gate] else { return true }
            gate.arrive()
            return gate.isOpen()
        }
    }

    /// One barrier: `arrive` (called every loop once this runner's children are there; it must be idempotent),
    /// `isOpen`, and which ranks it still waits for.
    package struct Gate {
        package let arrive: () -> Void
        package let isOpen: () -> Bool
        package let missing: () -> [Int]
        /// How many ranks meet at it.
        package let ranks: Int

        package init(
            arrive: @escaping () -> Void, isOpen: @escaping () -> Bool, missing: @escaping () -> [Int] = { [] },
            ranks: Int = 0
        ) {
            self.arrive = arrive
            self.isOpen = isOpen
            self.missing = missing
            self.ranks = ranks
        }
    }

    /// Why the parent ended a child itself.
    package enum Stop: Sendable, Equatable {
        /// The user interrupted the scenario.
        case interrupted
        /// No event for this many seconds (stopped, deadlocked, or not speaking the protocol).
        case stalled(seconds: Double, state: String?)
        /// Ran past the wall-time limit.
        case timedOut(seconds: Double)
        /// Measured from outside, its sampled RssAnon passed the run's memory cap.
        case memoryCap(reachedBytes: Int, capBytes: Int)
        /// The ranks that came waited this long at the start barrier for `missing` (local ranks), which never came.
        case rendezvousTimedOut(seconds: Double, missing: [Int], of: Int)
    }

    /// What one child said and how it ended.
    package struct Outcome: Sendable {
        package var pid: Int32?
        package var exit: ChildExit?
        package var hello: ChildEvent.Hello?
        package var measurement: RunMeasurement?
        package var floor: FloorInfo?
        package var failure: ChildFailure?
        /// A loader measured from outside: its final report, and what the parent's probe saw.
        package var subjectResult: SubjectResult?
        package var observation: ExternalProbe.Observation?
        package var stop: Stop?
        /// The child could not be started at all.
        package var spawnError: String?
        /// The last lines of the child's standard error.
        package var stderrTail: String?
        /// Lines on the event descriptor that were not events.
        package var undecodableLines: [String] = []
        /// Seconds from spawn to reaping.
        package var wallSeconds: Double = 0
        /// A rank: its status and `smaps_rollup` the moment every rank held its model.
        package var held: HeldReading?
        /// `--attribute`: memray's attribution of a Python subject's peak, or why it could not be read.
        package var attribution: Attribution?
        package var attributionFailure: String?
    }

    package let limits: Limits
    /// Told every 5 s while ready ranks wait at the start barrier: which local ranks are missing, of how many, and
    /// for how long.
    package var onRendezvousWait: (_ missing: [Int], _ of: Int, _ seconds: Double) -> Void = { _, _, _ in }

    package init(limits: Limits = .default) {
        self.limits = limits
    }

    /// Runs `launches` together (one start barrier for all) and returns their outcomes in the same order.
    /// `onEvent(index, event)` sees every event as it arrives; `machine`, when given, is started at the barrier
    /// and sampled every 10 ms until the last child exits.
    func run(
        _ launches: [Launch], machine: MachineProbe? = nil, gates: Gates = Gates(),
        onEvent: (Int, ChildEvent) -> Void = { _, _ in }
    ) -> [Outcome] {
        let sessions = launches.map { ChildSession(launch: $0) }
        defer { for session in sessions { session.cleanUp() } }
        for session in sessions { session.start() }
        var startSent = false
        var heldRead = false
        var exitSent = false
        var lastSample = 0.0
        var rendezvous = Rendezvous(limit: limits.rendezvousSeconds)
        while sessions.contains(where: { !$0.isFinished }) {
            let open = sessions.filter { !$0.isFinished }.map(\.eventsDescriptor)
            let readable = Descriptor.waitReadable(open, seconds: machine == nil ? 0.05 : MachineProbe.interval)
            for (index, session) in sessions.enumerated() where readable.contains(session.eventsDescriptor) {
                session.drain { onEvent(index, $0) }
            }
            if !startSent, sessions.allSatisfy({ $0.isReady || $0.isFinished }), gates.pass(\.allReady) {
                startSent = true
                machine?.begin(pids: sessions.compactMap(\.outcome.pid))
                for session in sessions where !session.isFinished { session.send(.start) }
            }
            if !startSent, let stop = rendezvous.check(sessions, gate: gates.allReady, onWaiting: onRendezvousWait) {
                for session in sessions where !session.isFinished { session.end(stop) }
            }
            if !heldRead, sessions.contains(where: \.launch.holdsUntilAllLoaded),
                sessions.allSatisfy({ $0.isFinished || $0.hasReplied }),
                gates.pass(\.allReplied)
            {
                heldRead = true
                if let machine, machine.started { machine.sample(rollup: true) }
                for session in sessions where !session.isFinished { session.readHeld() }
            }
            // Every rank of the node must have read its held figures before any lets its model go.
            if heldRead, !exitSent, gates.pass(\.allHeld) {
                exitSent = true
                for session in sessions where !session.isFinished { session.send(.exit) }
            }
            if let machine, machine.started, MonotonicClock.monotonicSeconds() - lastSample >= MachineProbe.interval {
                lastSample = MonotonicClock.monotonicSeconds()
                machine.sample()
            }
            for (index, session) in sessions.enumerated() where !session.isFinished {
                session.reapIfExited { onEvent(index, $0) }
                if SignalTrap.interrupted {
                    session.end(.interrupted)
                } else if let stop = session.watchdog(limits) {
                    session.end(stop)
                }
            }
        }
        return sessions.map(\.outcome)
    }
}

/// The start barrier's clock: from the moment a rank is ready (one of this runner's, or this runner's all, with a
/// gate of other processes' ranks) it counts how long the ready ones wait for the rest, says so after 3 s and every 5 s, and
/// ends the wait at the limit naming who never came.
struct Rendezvous {
    let limit: Double
    private var since: Double?
    private var lastSaid: Double?

    init(limit: Double) { self.limit = limit }

    mutating func check(
        _ sessions: [ChildSession], gate: ChildRunner.Gate?, onWaiting: ([Int], Int, Double) -> Void
    ) -> ChildRunner.Stop? {
        let ready = sessions.filter { $0.isReady && !$0.isFinished }
        let notReady = sessions.indices.filter { !sessions[$0].isReady && !sessions[$0].isFinished }
        let missing = notReady.isEmpty ? gate?.missing() ?? [] : notReady
        guard !ready.isEmpty, !missing.isEmpty else {
            since = nil
            lastSaid = nil
            return nil
        }
        let now = MonotonicClock.monotonicSeconds()
        let start = since ?? now
        since = start
        let total = notReady.isEmpty ? max(sessions.count, gate?.ranks ?? 0) : sessions.count
        if now - start >= limit { return .rendezvousTimedOut(seconds: now - start, missing: missing, of: total) }
        // The first line after 3 s (a rank a moment behind is not news), then every 5 s.
        if lastSaid.map({ now - $0 >= 5 }) ?? (now - start >= 3) {
            lastSaid = now
            onWaiting(missing, total, now - start)
        }
        return nil
    }
}

/// One child under a ``ChildRunner``: its process, its two pipes, what it said.
final class ChildSession {
    let launch: ChildRunner.Launch
    private(set) var outcome = ChildRunner.Outcome()
    private var child: ChildProcess?
    private var events: ProcessPipe?
    private var control: ProcessPipe?
    private var reader = EventLineReader()
    private var lastActivity = MonotonicClock.monotonicSeconds()
    private var startedAt = MonotonicClock.monotonicSeconds()
    private var probe: ExternalProbe?
    private var cpuTicks = -1
    private var lastStateCheck = 0.0
    private(set) var isReady = false
    private(set) var isFinished = false

    init(launch: ChildRunner.Launch) {
        self.launch = launch
    }

    var eventsDescriptor: Int32 { events?.readEnd ?? -1 }

    /// Its final reply arrived (a measurement, or a loader's result).
    var hasReplied: Bool { outcome.measurement != nil || outcome.subjectResult != nil }

    func start() {
        do {
            try ResultsCodec.encode(launch.request).withUnsafeBytes {
                try Data($0).write(to: URL(fileURLWithPath: launch.requestPath))
            }
            let events = try ProcessPipe.make()
            let control = try ProcessPipe.make()
            self.events = events
            self.control = control
            try Descriptor.setNonBlocking(events.readEnd)
            var environment = launch.environment
            environment[ChildProtocol.eventsVariable] = String(ChildProtocol.eventsDescriptor)
            environment[ChildProtocol.controlVariable] = String(ChildProtocol.controlDescriptor)
            environment[ChildProtocol.requestVariable] = launch.requestPath
            environment[ChildProtocol.versionVariable] = String(ChildProtocol.version)
            startedAt = MonotonicClock.monotonicSeconds()
            let child = try ChildProcess.spawn(
                executable: launch.executable, arguments: launch.arguments, environment: environment,
                options: .init(
                    standardInput: .file(launch.requestPath), standardOutput: .null,
                    standardError: .file(launch.logPath),
                    descriptors: [
                        ChildProtocol.eventsDescriptor: events.writeEnd,
                        ChildProtocol.controlDescriptor: control.readEnd,
                    ]))
            self.child = child
            outcome.pid = child.pid
            isReady = !launch.speaksProtocol
            if let interval = launch.probeInterval {
                let probe = try ExternalProbe(
                    pid: child.pid, interval: interval, checkpointFiles: launch.request.files,
                    samplePss: launch.request.samplePss)
                try probe.start()
                self.probe = probe
            }
            // The child holds its own copies now; closing ours lets end of file mean "the child is gone".
            Descriptor.close(events.writeEnd)
            Descriptor.close(control.readEnd)
            lastActivity = MonotonicClock.monotonicSeconds()
        } catch {
            outcome.spawnError = "\(error)"
            isFinished = true
        }
    }

    /// Reads what is available and handles each event.
    func drain(_ onEvent: (ChildEvent) -> Void) {
        guard let fd = events?.readEnd else { return }
        var bytes: [UInt8] = []
        while case .data = Descriptor.read(fd, appendingTo: &bytes) {}
        guard !bytes.isEmpty else { return }
        lastActivity = MonotonicClock.monotonicSeconds()
        for event in reader.feed(bytes) {
            record(event)
            onEvent(event)
        }
        outcome.undecodableLines = reader.undecodable
    }

    private func record(_ event: ChildEvent) {
        switch event {
        case .hello(let hello): outcome.hello = hello
        case .ready:
            probe?.takeBaseline()
            isReady = true
        case .measurement(let measurement): outcome.measurement = measurement
        case .floor(let floor): outcome.floor = floor
        case .failure(let failure): outcome.failure = failure
        case .phaseBegan(let mark): probe?.phaseBegan(mark.name)
        case .phaseEnded(let mark): probe?.phaseEnded(mark.name)
        case .loaded:
            probe?.markLoaded()
            send(.continue)
        case .result(let result):
            outcome.subjectResult = result
            probe?.markFinal()
            if !launch.holdsUntilAllLoaded { send(.exit) }
        case .heartbeat: break
        }
    }

    func send(_ command: ControlCommand) {
        guard let fd = control?.writeEnd,
            let line = try? JSONLines.encode(MeasuredChild.ControlCommandLine(command: command))
        else { return }
        Descriptor.writeAll(fd, line)
    }

    /// The child's status and rollup now (every rank holds its model).
    func readHeld() {
        guard let pid = outcome.pid, let status = try? ProcessMemory.read(pid: pid) else { return }
        outcome.held = HeldReading(
            seconds: MonotonicClock.monotonicSeconds(),
            reading: MemoryReading(status: status, rollup: try? ProcessMemory.smapsRollup(pid: pid)))
    }

    /// Reaps the child if it exited, reading the last of what it wrote first.
    func reapIfExited(_ onEvent: (ChildEvent) -> Void) {
        guard let child, let exit = try? child.poll() else { return }
        drain(onEvent)
        finish(exit)
    }

    /// The watchdog's verdict on a running child: nil while it is alive and talking (or, measured from
    /// outside, using CPU time) and within its memory cap.
    func watchdog(_ limits: ChildRunner.Limits) -> ChildRunner.Stop? {
        let now = MonotonicClock.monotonicSeconds()
        if let cap = launch.memoryCapBytes, let anon = probe?.latestAnonymous, anon > cap {
            return .memoryCap(reachedBytes: anon, capBytes: cap)
        }
        if now - startedAt > limits.wallSeconds { return .timedOut(seconds: limits.wallSeconds) }
        if now - lastStateCheck > 0.5, let child {
            lastStateCheck = now
            let ticks = ProcessState.read(pid: child.pid)?.cpuTicks ?? cpuTicks
            if ticks != cpuTicks {
                cpuTicks = ticks
                lastActivity = now
            }
        }
        if now - lastActivity > limits.stallSeconds {
            return .stalled(
                seconds: limits.stallSeconds, state: child.flatMap { ProcessState.read(pid: $0.pid)?.description })
        }
        return nil
    }

    /// Ends the child: SIGTERM then SIGKILL after 2 s for an interrupt (it may still write its last event),
    /// SIGKILL at once for a hung one.
    func end(_ stop: ChildRunner.Stop) {
        guard let child, !isFinished else { return }
        outcome.stop = stop
        let exit = stop == .interrupted ? try? child.terminate(grace: .seconds(2)) : try? child.kill()
        drain { _ in }
        finish(exit)
    }

    private func finish(_ exit: ChildExit?) {
        outcome.observation = probe?.finish()
        probe = nil
        outcome.exit = exit
        outcome.wallSeconds = MonotonicClock.monotonicSeconds() - startedAt
        outcome.stderrTail = Self.tail(of: launch.logPath)
        isFinished = true
    }

    func cleanUp() {
        if let child, !child.hasExited { _ = try? child.kill() }
        for fd in [events?.readEnd, events?.writeEnd, control?.readEnd, control?.writeEnd].compactMap({ $0 }) {
            Descriptor.close(fd)
        }
        events = nil
        control = nil
        try? FileManager.default.removeItem(atPath: launch.requestPath)
        for path in launch.cleanupPaths { try? FileManager.default.removeItem(atPath: path) }
    }

    /// The last `lines` lines of a log file (its last 64 KiB at most).
    static func tail(of path: String, lines: Int = 5) -> String? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        let size = (try? handle.seekToEnd()) ?? 0
        try? handle.seek(toOffset: size > 65_536 ? size - 65_536 : 0)
        guard let data = try? handle.readToEnd(), !data.isEmpty else { return nil }
        let text = String(decoding: data, as: UTF8.self).split(separator: "\n").suffix(lines).joined(separator: "\n")
        return text.isEmpty ? nil : text
    }
}
