import Foundation
import Loading
import OSLayer
import Probes
import ResultsFormat
import Synchronization
import TensorEngine

/// The measured child's side of the protocol: reads the ``ChildRequest`` from standard input, says hello,
/// keeps a heartbeat going, does the task and replies with its final event — or with a `failure` event before
/// rethrowing, so the parent learns why even when the exit status alone could not say.
package enum MeasuredChild {
    /// The largest request accepted on standard input.
    static let requestLimit = 16 << 20

    package static func run() throws {
        Descriptor.ignoreBrokenPipes()
        guard let events = ChildEventWriter.fromEnvironment() else {
            throw UsageError(
                "measure-run is started by `run`: \(ChildProtocol.eventsVariable) names no event descriptor")
        }
        try FatalSignalGuard.install(reportingTo: events.fileDescriptor, line: ChildEventWriter.signalLine)
        events.send(.hello(.init(pid: getpid(), subject: "engine", versions: ["bigmodel-bench": ToolVersion.version])))
        let heartbeat = HeartbeatThread(events: events)
        defer { heartbeat.stop() }
        do {
            let request = try readRequest()
            switch request.task {
            case .load:
                let measurement = try measure(request, events: events)
                if request.rank == nil { events.send(.measurement(measurement)) }
            case .floor: events.send(.floor(try floor(request)))
            }
        } catch let error as ParentGone {
            throw error
        } catch {
            events.send(.failure(ChildFailure(error)))
            throw error
        }
    }

    static func readRequest() throws -> ChildRequest {
        var bytes: [UInt8] = []
        while bytes.count <= requestLimit {
            if case .data = Descriptor.read(0, appendingTo: &bytes) { continue }
            break
        }
        guard bytes.count <= requestLimit else {
            throw UsageError("the request on standard input is larger than \(requestLimit) bytes")
        }
        do {
            let request = try ResultsCodec.decode(ChildRequest.self, from: bytes)
            guard request.protocolVersion == ChildProtocol.version else {
                throw UsageError(
                    "the request speaks protocol \(request.protocolVersion), this child \(ChildProtocol.version)")
            }
            return request
        } catch let error as UsageError {
            throw error
        } catch {
            throw UsageError("the request on standard input is not a child request: \(error)")
        }
    }

    static func measure(_ request: ChildRequest, events: ChildEventWriter) throws -> RunMeasurement {
        let strategy: any LoadStrategy =
            request.strategy == .deviceMap
            ? DeviceMapLoad(request: request.placement ?? .cpuOnly, offloadFolder: request.offloadFolder)
            : request.strategy.strategy
        var measured = MeasuredLoad(
            checkpointPath: request.checkpoint, strategy: strategy, dtype: request.dtype,
            sampleInterval: .microseconds(Int64((request.sampleIntervalMilliseconds * 1000).rounded())),
            ledgerBudget: request.ledgerBudgetBytes,
            onPhase: { transition in
                switch transition {
                case .began(let name, let seconds, let live):
                    events.send(.phaseBegan(.init(name: name, seconds: seconds, ledgerLiveBytes: live)))
                case .ended(let name, let seconds, let live):
                    events.send(.phaseEnded(.init(name: name, seconds: seconds, ledgerLiveBytes: live)))
                }
            },
            ready: {
                events.send(.ready)
                try waitForStart()
            })
        measured.samplePss = request.samplePss
        measured.prediction = request.prediction
        if request.rank != nil {
            // A rank keeps its model until the parent says every rank has loaded.
            measured.hold = { measurement in
                events.send(.measurement(measurement))
                try waitFor(.exit)
            }
        }
        return try measured.run()
    }

    /// Blocks until the parent sends `start` on the control descriptor (at once when there is none). A parent
    /// that closed it without a start is gone or gave up: the child stops.
    static func waitForStart() throws(ParentGone) { try waitFor(.start) }

    static func waitFor(_ command: ControlCommand) throws(ParentGone) {
        guard let text = ProcessInfo.processInfo.environment[ChildProtocol.controlVariable], let fd = Int32(text) else {
            return
        }
        while let line = Descriptor.readLine(fd) {
            if (try? JSONLines.decode(ControlCommandLine.self, from: line))?.command == command { return }
        }
        throw ParentGone(awaited: command)
    }

    /// The parent closed the control descriptor before sending what the child waited for: it is gone or gave
    /// up, so the child stops quietly (the CLI exits 0; nobody reads a failure event any more).
    package struct ParentGone: Error {
        package let awaited: ControlCommand
    }

    struct ControlCommandLine: Codable { var command: ControlCommand }

    /// Three passes in this fresh process. The floor a run is compared with is the **first**: like the run, a
    /// fresh process reading into fresh memory (which this VM hands out at its host's first-touch rate) with the
    /// page cache as the runs have it. The fastest pass, in memory the process already touched, is kept beside it
    /// (`warm_seconds`): what the machine can do once its memory is warm, the figure `bench load` compares with.
    static func floor(_ request: ChildRequest) throws -> FloorInfo {
        var passes: [ReadFloorResult] = []
        for _ in 0..<3 {
            if request.coldCache { for file in request.files { try PageCache.evict(path: file) } }
            passes.append(try ReadFloor.measure(paths: request.files))
        }
        let first = passes[0]
        let best = passes.min { $0.seconds < $1.seconds } ?? first
        let cache = request.coldCache ? "page cache evicted before each pass" : "page cache warm"
        let times = passes.map { ByteSize.fixed($0.seconds, digits: 3) + " s" }.joined(separator: ", ")
        var info = FloorInfo(
            bytes: first.bytes, seconds: first.seconds, gigabytesPerSecond: first.bytesPerSecond / 1e9,
            method:
                "8 MiB preads on 2 MiB boundaries, \(ProcessInfo.processInfo.activeProcessorCount) at once (one per core), into fresh madvise(MADV_HUGEPAGE) buffers, one file at a time, \(cache); the first of 3 passes in a fresh process, as a run is measured (passes: \(times); the fastest is warm_seconds)"
        )
        info.warmSeconds = best.seconds
        return info
    }
}

/// Sends a heartbeat every half second from its own thread: the parent's watchdog takes silence for a hang
/// (a stopped or deadlocked child), since even a child busy in one long read keeps beating.
final class HeartbeatThread: Sendable {
    private let stopped = Atomic<Bool>(false)

    init(events: ChildEventWriter) {
        let thread = Thread { [self] in
            while !stopped.load(ordering: .relaxed) {
                events.send(.heartbeat)
                Thread.sleep(forTimeInterval: 0.5)
            }
        }
        thread.start()
    }

    func stop() { stopped.store(true, ordering: .relaxed) }
}
