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

    /// The floor a run is compared with, measured as `bench load` measures it, in a fresh process of its own.
    ///
    /// One uncounted pass first: it pays for memory this VM's host had taken back (a first touch at the host's
    /// rate, 3.42 s where the passes after it took 0.65 s on the main job), which no run pays, since each run
    /// follows another within seconds and gets the memory the guest just freed. Then ``passes`` rounds of every
    /// floor method that fits the cache (warm: one pread per core, and 16 in flight; cold: O_DIRECT too), the
    /// files evicted before every pass when the runs read them cold. The floor is the fastest method's median;
    /// `warm_seconds` its fastest pass; `first_pass_seconds` the uncounted pass.
    static func floor(_ request: ChildRequest) throws -> FloorInfo {
        let evict = { () throws in
            if request.coldCache { for file in request.files { try PageCache.evict(path: file) } }
        }
        try evict()
        let first = try ReadFloor.measure(paths: request.files)
        var timings = ReadFloorCase.forRuns(cold: request.coldCache).map { ($0, [ReadFloorResult]()) }
        for _ in 0..<passes {
            for index in timings.indices {
                try evict()
                do {
                    timings[index].1.append(try timings[index].0.measure(paths: request.files))
                } catch let error as SystemCallError where timings[index].0.direct && error.errno == .invalidArgument {
                    continue  // a file system without O_DIRECT (tmpfs): that method is left out
                }
            }
        }
        let measured = timings.filter { !$0.1.isEmpty }
        guard
            let (method, results) = measured.min(by: {
                LoadBenchmark.median($0.1.map(\.seconds)) < LoadBenchmark.median($1.1.map(\.seconds))
            })
        else { throw SystemCallError(call: "read floor", subject: request.files.first, errno: .invalidArgument) }
        let seconds = LoadBenchmark.median(results.map(\.seconds))
        var info = FloorInfo(
            bytes: first.bytes, seconds: seconds,
            gigabytesPerSecond: seconds > 0 ? Double(first.bytes) / seconds / 1e9 : 0,
            method: floorMethod(method, all: measured, cold: request.coldCache))
        info.warmSeconds = results.map(\.seconds).min()
        info.firstPassSeconds = first.seconds
        return info
    }

    /// Counted passes of each floor method.
    static let passes = 3

    /// The chosen method and every method's median, in words.
    private static func floorMethod(_ method: ReadFloorCase, all: [(ReadFloorCase, [ReadFloorResult])], cold: Bool)
        -> String
    {
        let medians = all.map {
            "\($0.0.name) \(ByteSize.fixed(LoadBenchmark.median($0.1.map(\.seconds)), digits: 3)) s"
        }
        return
            "\(method.name): \(method.description), \(cold ? "page cache evicted before each pass" : "page cache warm"); "
            + "the fastest method's median of \(passes) passes in a fresh process after one uncounted pass (medians: \(medians.joined(separator: ", ")))"
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
