import Foundation
import Loading
import TensorEngine

/// The results file `run` writes (`Reports/<scenario>.json`) and `report` / `compare` read.
///
/// Every size is in bytes, every time in seconds, and every figure is named for exactly what it measures:
/// `rss_anon_peak_delta_bytes` is the sampled maximum of `/proc/self/status` RssAnon minus its baseline,
/// `vmhwm_delta_bytes` the kernel's own high-water mark of VmRSS minus the baseline VmRSS, and so on.
/// The schema is `Reports/schema/results.schema.json`; `schemaVersion` changes whenever a field changes meaning.
public struct ScenarioResults: Codable, Sendable, Equatable {
    /// The version this tool writes: 2 adds loaders other than the engine (`subject`), makes the figures a
    /// loader does not have absent (ledger, jemalloc) and records the watchdog's limits. Version-1 files
    /// decode as they are (every new field is optional).
    public static let currentSchemaVersion = 2
    /// The versions `report` and `compare` read.
    public static let readableSchemaVersions: ClosedRange<Int> = 1...2

    public var schemaVersion: Int
    public var tool: ToolInfo
    public var scenario: ScenarioInfo
    public var environment: EnvironmentInfo
    public var scale: ScaleInfo
    public var checkpoint: CheckpointInfo
    public var floor: FloorInfo?
    /// Each run's predicted peak at full size (scale 1), with the formula that gives it.
    public var fullSizePredictions: [Prediction]
    public var runs: [RunResult]
    /// Runs of several ranks: what they cost the machine together, and the machine-level claims.
    public var machineRuns: [MachineRun]? = nil
    /// True when every planned run finished (false after an interrupt or a fatal error).
    public var complete: Bool
    /// Why the scenario stopped early, when it did.
    public var stoppedReason: StopReason?
    public var startedAt: String
    public var finishedAt: String?

    public init(
        tool: ToolInfo, scenario: ScenarioInfo, environment: EnvironmentInfo, scale: ScaleInfo, checkpoint: CheckpointInfo,
        floor: FloorInfo?, fullSizePredictions: [Prediction], runs: [RunResult], complete: Bool, stoppedReason: StopReason?,
        startedAt: String, finishedAt: String?
    ) {
        self.schemaVersion = Self.currentSchemaVersion
        self.tool = tool
        self.scenario = scenario
        self.environment = environment
        self.scale = scale
        self.checkpoint = checkpoint
        self.floor = floor
        self.fullSizePredictions = fullSizePredictions
        self.runs = runs
        self.complete = complete
        self.stoppedReason = stoppedReason
        self.startedAt = startedAt
        self.finishedAt = finishedAt
    }
}

/// Why a scenario stopped before every planned run finished.
public enum StopReason: String, Codable, Sendable {
    /// SIGINT or SIGTERM: the run in progress was ended; the runs that completed are kept.
    case interrupted
    /// The runner itself failed (the results file could not be written, the checkpoint could not be made).
    case error
}

public struct ToolInfo: Codable, Sendable, Equatable {
    public var name: String
    public var version: String
    /// `git rev-parse HEAD` of the checkout the tool was built from, when known.
    public var gitCommit: String?
    public var swiftVersion: String
    public var buildConfiguration: String
}

public struct ScenarioInfo: Codable, Sendable, Equatable {
    public var name: String
    public var description: String
    public var file: String
    public var modelType: String
    public var repeatCount: Int
    public var cache: Scenario.CacheMode
    public var toleranceRelative: Double
    public var toleranceAbsoluteBytes: Int
    public var sampleIntervalSeconds: Double
    /// The parent's sampling period for loaders measured from outside, when the scenario has any (version 2).
    public var outsideProbeIntervalSeconds: Double? = nil
    /// `--memory-limit`, when given: the machine size simulated.
    public var memoryLimitBytes: Int?
    /// The watchdog's limits (version 2).
    public var runTimeoutSeconds: Double? = nil
    public var stallTimeoutSeconds: Double? = nil
    /// The tolerance of claims on loaders outside the engine (version 2; present when the scenario has such runs).
    public var subjectToleranceRelative: Double? = nil
    public var subjectToleranceAbsoluteBytes: Int? = nil
}

public struct EnvironmentInfo: Codable, Sendable, Equatable {
    public var hostname: String
    public var kernel: String
    public var cpuModel: String
    public var logicalCpus: Int
    public var memTotalBytes: Int
    public var memAvailableBytes: Int
    public var swapTotalBytes: Int
    public var transparentHugePages: String
    public var transparentHugePagesDefrag: String
    public var pageSizeBytes: Int
    /// The allocator serving the measured processes: `jemalloc <version>`.
    public var allocator: String
    /// `MALLOC_CONF` as set for each measured child, and jemalloc's effective options read back in it.
    public var mallocConf: String
    public var jemallocOptions: [String: String]
    /// The measured children's complete environment.
    public var childEnvironment: [String: String]
    public var cgroup: String?
    public var cgroupMemoryLimitBytes: Int?
}

public struct ScaleInfo: Codable, Sendable, Equatable {
    /// `"fit"` or the number asked for.
    public var requested: String
    public var chosen: Double
    /// How the scale was chosen, in a sentence.
    public var reason: String
    /// The memory the fit aimed to stay within: safe share × (MemAvailable or --memory-limit).
    public var memoryBudgetBytes: Int
    public var safeShare: Double
    public var diskFreeBytes: Int?
}

public struct CheckpointInfo: Codable, Sendable, Equatable {
    public var path: String
    /// True when bigmodel-bench generated it (synthetic values), false for an existing checkpoint.
    public var generated: Bool
    /// True when it came from the cache instead of being written by this run.
    public var reused: Bool
    public var dtype: String?
    public var maxShardSizeBytes: Int?
    public var seed: UInt64?
    public var files: Int
    public var totalSizeBytes: Int
    public var largestShardBytes: Int
    public var generationSeconds: Double?
}

/// The machine's floor: the same bytes read into fresh memory the fastest plain way.
public struct FloorInfo: Codable, Sendable, Equatable {
    public var bytes: Int
    public var seconds: Double
    public var gigabytesPerSecond: Double
    public var method: String

    public init(bytes: Int, seconds: Double, gigabytesPerSecond: Double, method: String) {
        self.bytes = bytes
        self.seconds = seconds
        self.gigabytesPerSecond = gigabytesPerSecond
        self.method = method
    }
}

public struct Prediction: Codable, Sendable, Equatable {
    public var run: String
    public var strategy: StrategyName
    public var formula: String
    public var figures: MemoryFigures
    public var predictedPeakBytes: Int
}

/// The verdict on one run.
public enum Verdict: String, Codable, Sendable {
    /// Every claim held and the probes agreed.
    case pass
    /// A bound did not hold, or the probes disagreed; `checks` says which and by how much.
    case fail
    /// The run hit its memory cap (ledger budget or rlimit) instead of the kernel's OOM killer.
    case oom
    /// The run died or could not be measured.
    case error
}

/// How a check compares its measured figure with its bound.
public enum CheckRelation: String, Codable, Sendable {
    /// The measured figure may not exceed the bound.
    case atMost = "<="
    /// The measured figure must reach the bound.
    case atLeast = ">="
    /// Exactly equal (the ledger against its formula).
    case equal = "=="
    /// An agreement check: the measured figure is a difference, the bound the difference allowed.
    case within

    public func holds(_ measured: Int, _ bound: Int) -> Bool {
        switch self {
        case .atMost, .within: measured <= bound
        case .atLeast: measured >= bound
        case .equal: measured == bound
        }
    }
}

/// One check of one run: a measured figure against a bound.
public struct Check: Codable, Sendable, Equatable {
    public var name: String
    public var passed: Bool
    public var measuredBytes: Int
    public var boundBytes: Int
    public var relation: CheckRelation
    public var detail: String

    /// A check whose `passed` follows from the relation.
    public init(name: String, measuredBytes: Int, boundBytes: Int, relation: CheckRelation, detail: String) {
        self.init(name: name, passed: relation.holds(measuredBytes, boundBytes), measuredBytes: measuredBytes, boundBytes: boundBytes, relation: relation, detail: detail)
    }

    public init(name: String, passed: Bool, measuredBytes: Int, boundBytes: Int, relation: CheckRelation, detail: String) {
        self.name = name
        self.passed = passed
        self.measuredBytes = measuredBytes
        self.boundBytes = boundBytes
        self.relation = relation
        self.detail = detail
    }
}

/// A run's target dtype: `auto` until the child resolved it, then the dtype.
public enum TargetDType: Codable, Sendable, Equatable, CustomStringConvertible {
    case auto
    case resolved(DType)

    public init(_ dtype: DType?) { self = dtype.map { .resolved($0) } ?? .auto }

    public var description: String {
        switch self {
        case .auto: "auto"
        case .resolved(let dtype): dtype.torchName
        }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if (try? container.decode(String.self)) == "auto" {
            self = .auto
        } else {
            self = .resolved(try container.decode(DType.self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

public struct RunResult: Codable, Sendable, Equatable {
    public var id: String
    /// Who loaded; absent: the engine.
    public var subject: Subject? = nil
    /// A rank of a multi-rank run: which, of how many.
    public var rank: Int? = nil
    public var worldSize: Int? = nil
    /// `measure-rank`: the rank's index on its node and the node (its hostname), which `merge` groups by.
    public var localRank: Int? = nil
    public var node: String? = nil
    public var strategy: StrategyName
    /// The resolved target dtype (`auto` when the run never resolved it).
    public var dtype: TargetDType
    public var repeatIndex: Int
    public var verdict: Verdict
    /// One line: why the verdict is what it is.
    public var verdictDetail: String
    public var checks: [Check]
    public var formula: String
    public var figures: MemoryFigures?
    public var predictedPeakBytes: Int?
    /// predicted + tolerance: the most any RSS peak delta may reach.
    public var upperBoundBytes: Int?
    /// predicted − tolerance, for strategies whose claim is a high cost (naive, load-then-cast).
    public var lowerBoundBytes: Int?
    public var toleranceBytes: Int?
    public var measurement: RunMeasurement?
    /// How the child process ended.
    public var exit: RunExit
    /// Wall-clock seconds of the load itself (inside the child).
    public var seconds: Double?
    /// `seconds` divided by the floor's seconds.
    public var floorMultiple: Double?

    /// The subject, the engine when absent.
    public var loader: Subject { subject ?? .engine }
}

public struct RunExit: Codable, Sendable, Equatable {
    public var status: Int32?
    public var signal: Int32?
    public var signalName: String?
    public var coreDumped: Bool
    /// The child's ru_maxrss (KiB → bytes) from wait4; inflated by the exec pitfall, kept for reference only.
    public var rusageMaxRssBytes: Int?
    public var userSeconds: Double?
    public var systemSeconds: Double?
    /// Last lines of the child's stderr when it failed.
    public var stderrTail: String?
}
