import Loading
import OSLayer
import Placement
import ResultsFormat
import TensorEngine

/// The contract between `run` and a measured child, version ``version`` (docs/child-protocol.md).
///
/// The parent writes a ``ChildRequest`` to a file and gives it to the child as its standard input (its path is
/// also in `BIGMODEL_BENCH_REQUEST`). The child writes ``ChildEvent``s as JSON lines to descriptor
/// `BIGMODEL_BENCH_EVENTS_FD` (3) and reads ``ControlCommand``s as JSON lines from `BIGMODEL_BENCH_CONTROL_FD`
/// (4). Standard error is the child's log, never parsed. The shape follows ordo-one/package-benchmark's
/// `BenchmarkCommandRequest` / `BenchmarkCommandReply`: typed Codable values both ways, nothing in argv.
package enum ChildProtocol {
    /// Bumped whenever a request, event or command changes meaning.
    package static let version = 1
    /// The descriptor the child writes events to, and the variable that names it.
    package static let eventsDescriptor: Int32 = 3
    package static let eventsVariable = "BIGMODEL_BENCH_EVENTS_FD"
    /// The descriptor the child reads commands from, and the variable that names it.
    package static let controlDescriptor: Int32 = 4
    package static let controlVariable = "BIGMODEL_BENCH_CONTROL_FD"
    /// The request file's path.
    package static let requestVariable = "BIGMODEL_BENCH_REQUEST"
    /// The protocol version, for a child that wants to check it before parsing anything.
    package static let versionVariable = "BIGMODEL_BENCH_PROTOCOL"
}

/// Everything a measured child needs to know, in one Codable value: nothing is passed in argv.
package struct ChildRequest: Codable, Sendable, Equatable {
    /// What the child is asked to do.
    package enum Task: String, Codable, Sendable {
        /// Load the checkpoint with `strategy` under every probe; reply with a `measurement` event.
        case load
        /// Time reading `files` into fresh huge-page memory; reply with a `floor` event.
        case floor
    }

    package var protocolVersion = ChildProtocol.version
    package var task: Task
    /// The checkpoint folder (or file).
    package var checkpoint: String
    /// The shard files, in order.
    package var files: [String] = []
    package var strategy: StrategyName = .lowMemory
    /// The target dtype; nil: `auto` (the config's, else the first floating tensor's).
    package var dtype: DType?
    package var sampleIntervalMilliseconds: Double = 20
    /// The ledger's cap on live RAM bytes; past it the load ends as `oom`.
    package var ledgerBudgetBytes: Int?
    /// device-map runs: where the model goes (accelerate's `device_map` / `max_memory` vocabulary).
    package var placement: PlacementRequest?
    /// device-map runs: where disk-placed weights are written.
    package var offloadFolder: String?
    /// floor: evict the files from the page cache before each pass.
    package var coldCache = false
    /// Who loads (the engine's own child ignores it; a loader may check it).
    package var subject: Subject = .engine
    /// A loader measured from outside reads every parameter once after the load, as a first forward pass would.
    package var touch = true
    /// The checkpoint's config.json, when it has one.
    package var config: String?
    /// Which rank of how many this child is (also in its environment, as torchrun sets it); nil: one rank.
    package var rank: RankInfo?
    /// Sample PSS too (a rank of a multi-rank run: the machine's Σ PSS is summed from the ranks).
    package var samplePss = false
    /// load: the run's prediction, computed once by the parent from the checkpoint it prepared; the child
    /// records it as it is (nil: the child predicts, as `load` does on its own).
    package var prediction: ChildPrediction?
    /// A Python subject under `--attribute`: run memray's tracker over the load and touch, writing its capture here.
    package var attribution: AttributionRequest?
}

/// Where a Python driver writes memray's capture (read by `python/bigmodel_bench_attribution.py` afterwards).
package struct AttributionRequest: Codable, Sendable, Equatable {
    package var captureFile: String
    package init(captureFile: String) { self.captureFile = captureFile }
}

/// What the parent predicts a run's peak to be, and by which formula.
package struct ChildPrediction: Codable, Sendable, Equatable {
    package var predictedPeakBytes: Int
    package var formula: String

    package init(predictedPeakBytes: Int, formula: String) {
        self.predictedPeakBytes = predictedPeakBytes
        self.formula = formula
    }
}

/// A rank as torchrun describes it.
package struct RankInfo: Codable, Sendable, Equatable {
    package var rank: Int
    package var localRank: Int
    package var worldSize: Int
    package var localWorldSize: Int
    /// The node's index in the job (torchrun's `GROUP_RANK`).
    package var groupRank: Int = 0

    package init(rank: Int, localRank: Int, worldSize: Int, localWorldSize: Int, groupRank: Int = 0) {
        self.rank = rank
        self.localRank = localRank
        self.worldSize = worldSize
        self.localWorldSize = localWorldSize
        self.groupRank = groupRank
    }

    /// The variables torchrun sets for a rank (`RANK`, `LOCAL_RANK`, `WORLD_SIZE`, `LOCAL_WORLD_SIZE`,
    /// `GROUP_RANK`, and a local rendezvous address).
    package var environment: [String: String] {
        [
            "RANK": String(rank), "LOCAL_RANK": String(localRank), "WORLD_SIZE": String(worldSize),
            "LOCAL_WORLD_SIZE": String(localWorldSize),
            "GROUP_RANK": String(groupRank), "ROLE_RANK": String(rank), "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": "29500",
        ]
    }

    /// The rank the environment describes (as torchrun or `srun` set it); nil when `RANK` or `WORLD_SIZE` is
    /// missing or not a number.
    package static func fromEnvironment(_ environment: [String: String]) -> RankInfo? {
        func int(_ keys: String...) -> Int? { keys.lazy.compactMap { environment[$0].flatMap { Int($0) } }.first }
        guard let rank = int("RANK", "SLURM_PROCID"), let world = int("WORLD_SIZE", "SLURM_NTASKS"), rank >= 0,
            world > rank
        else { return nil }
        let local = int("LOCAL_RANK", "SLURM_LOCALID") ?? rank
        return RankInfo(
            rank: rank, localRank: local, worldSize: world, localWorldSize: int("LOCAL_WORLD_SIZE") ?? world,
            groupRank: int("GROUP_RANK", "SLURM_NODEID") ?? 0)
    }
}

/// A command from the parent, one JSON line on the control descriptor: `{"command": "start"}`.
package enum ControlCommand: String, Codable, Sendable {
    /// Begin the load (sent once every child of a run is at its baseline: the start barrier).
    case start
    /// Go on after `loaded` (the parent has read the end-of-load figures).
    case `continue`
    /// Exit now (the parent has read the final figures, VmHWM included, with the model still alive).
    case exit
}

/// What a child tells its parent, one JSON object per line: `{"event": "phase_began", "name": "init", …}`.
package enum ChildEvent: Sendable, Equatable {
    /// First line: who is speaking.
    case hello(Hello)
    /// The baseline is taken; the child waits for `start`.
    case ready
    case phaseBegan(PhaseMark)
    case phaseEnded(PhaseMark)
    /// Sent at least every second while the child runs: the watchdog's sign of life.
    case heartbeat
    /// The final reply of a `load` task.
    case measurement(RunMeasurement)
    /// The final reply of a `floor` task.
    case floor(FloorInfo)
    /// A loader measured from outside finished its load (the model is in memory); it waits for `continue`.
    case loaded(Loaded)
    /// A loader measured from outside is done (after the touch); it waits for `exit`.
    case result(SubjectResult)
    /// The child could not do what was asked (or was killed by a fatal signal, written from its handler).
    case failure(ChildFailure)

    package struct Hello: Codable, Sendable, Equatable {
        package var protocolVersion: Int
        package var pid: Int32
        /// Who loads: `engine` (bigmodel-bench itself), or a loader's own name.
        package var subject: String
        /// Versions of what the child runs on (`bigmodel-bench`, `python`, `torch` …).
        package var versions: [String: String]

        package init(pid: Int32, subject: String, versions: [String: String]) {
            self.protocolVersion = ChildProtocol.version
            self.pid = pid
            self.subject = subject
            self.versions = versions
        }
    }

    package struct Loaded: Codable, Sendable, Equatable {
        /// Seconds the load took, by the loader's clock.
        package var seconds: Double?
        package init(seconds: Double?) { self.seconds = seconds }
    }

    package struct PhaseMark: Codable, Sendable, Equatable {
        package var name: String
        /// Seconds since the child's load clock started.
        package var seconds: Double
        package var ledgerLiveBytes: Int?

        package init(name: String, seconds: Double, ledgerLiveBytes: Int?) {
            self.name = name
            self.seconds = seconds
            self.ledgerLiveBytes = ledgerLiveBytes
        }
    }
}

/// What a loader measured from outside reports at the end: how it loaded, what it found.
package struct SubjectResult: Codable, Sendable, Equatable {
    /// The dtype the model ended up in (torch's name).
    package var dtype: String?
    package var loadSeconds: Double?
    /// Seconds the touch took (every parameter read once), when it was asked for.
    package var touchSeconds: Double?
    package var touchedBytes: Int?
    package var missingKeys: [String]?
    package var unexpectedKeys: [String]?
    /// transformers' `hf_device_map` (`{"model.embed_tokens": "cpu", …}`), for device-map runs.
    package var hfDeviceMap: [String: String]?
    package var notes: [String]?

    package init(dtype: String? = nil, loadSeconds: Double? = nil) {
        self.dtype = dtype
        self.loadSeconds = loadSeconds
    }
}

/// A structured failure: what kind, and one line saying what happened.
package struct ChildFailure: Codable, Sendable, Equatable, Error {
    package enum Kind: String, Codable, Sendable {
        /// Bad input: the checkpoint, config or request.
        case badData = "bad_data"
        case missingInput = "missing_input"
        case usage
        case io
        case outOfMemory = "out_of_memory"
        /// A fatal signal (`signal` says which).
        case signal
        /// Anything else the loader raised.
        case runtime
    }

    package var kind: Kind
    package var message: String
    /// For `signal`: the signal's number and name.
    package var signal: Int32?
    package var signalName: String?

    package init(kind: Kind, message: String, signal: Int32? = nil, signalName: String? = nil) {
        self.kind = kind
        self.message = message
        self.signal = signal
        self.signalName = signalName
    }

    /// The failure an error raised in the child is reported as.
    package init(_ error: any Error) {
        guard let error = error as? any ReportableError else {
            self.init(kind: .runtime, message: "\(error)")
            return
        }
        let kind: Kind
        switch error.category {
        case .usage: kind = .usage
        case .badData: kind = .badData
        case .missingInput: kind = .missingInput
        case .io, .interrupted, .notComparable, .unavailable: kind = .io
        case .outOfMemory: kind = .outOfMemory
        }
        self.init(kind: kind, message: error.description)
    }
}

extension ChildEvent: Codable {
    enum Name: String, Codable {
        case hello, ready, heartbeat, measurement, floor, loaded, result
        case phaseBegan = "phase_began"
        case phaseEnded = "phase_ended"
        case failure = "error"
    }

    enum CodingKeys: String, CodingKey { case event, measurement, floor }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        switch try container.decode(Name.self, forKey: .event) {
        case .hello: self = .hello(try Hello(from: decoder))
        case .ready: self = .ready
        case .phaseBegan: self = .phaseBegan(try PhaseMark(from: decoder))
        case .phaseEnded: self = .phaseEnded(try PhaseMark(from: decoder))
        case .heartbeat: self = .heartbeat
        case .measurement: self = .measurement(try container.decode(RunMeasurement.self, forKey: .measurement))
        case .floor: self = .floor(try container.decode(FloorInfo.self, forKey: .floor))
        case .loaded: self = .loaded(try Loaded(from: decoder))
        case .result: self = .result(try SubjectResult(from: decoder))
        case .failure: self = .failure(try ChildFailure(from: decoder))
        }
    }

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(name, forKey: .event)
        switch self {
        case .hello(let hello): try hello.encode(to: encoder)
        case .ready, .heartbeat: break
        case .phaseBegan(let mark), .phaseEnded(let mark): try mark.encode(to: encoder)
        case .measurement(let measurement): try container.encode(measurement, forKey: .measurement)
        case .floor(let floor): try container.encode(floor, forKey: .floor)
        case .loaded(let loaded): try loaded.encode(to: encoder)
        case .result(let result): try result.encode(to: encoder)
        case .failure(let failure): try failure.encode(to: encoder)
        }
    }

    var name: Name {
        switch self {
        case .hello: .hello
        case .ready: .ready
        case .phaseBegan: .phaseBegan
        case .phaseEnded: .phaseEnded
        case .heartbeat: .heartbeat
        case .measurement: .measurement
        case .floor: .floor
        case .loaded: .loaded
        case .result: .result
        case .failure: .failure
        }
    }
}
