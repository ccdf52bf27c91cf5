import Foundation
import Loading

/// The results file `run` writes (`Reports/<scenario>.json`) and `report` / `compare` read.
///
/// Every size is in bytes, every time in seconds, and every figure is named for exactly what it measures:
/// `rss_anon_peak_delta_bytes` is the sampled maximum of `/proc/self/status` RssAnon minus its baseline,
/// `vmhwm_delta_bytes` the kernel's own high-water mark of VmRSS minus the baseline VmRSS, and so on.
/// The schema is `Reports/schema/results.schema.json`; `schemaVersion` changes whenever a field changes meaning.
public struct ScenarioResults: Codable, Sendable, Equatable {
    public static let currentSchemaVersion = 1

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
    /// True when every planned run finished (false after an interrupt or a fatal error).
    public var complete: Bool
    /// Why the scenario stopped early, when it did.
    public var stoppedReason: String?
    public var startedAt: String
    public var finishedAt: String?

    public init(
        tool: ToolInfo, scenario: ScenarioInfo, environment: EnvironmentInfo, scale: ScaleInfo, checkpoint: CheckpointInfo,
        floor: FloorInfo?, fullSizePredictions: [Prediction], runs: [RunResult], complete: Bool, stoppedReason: String?,
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
    public var cache: String
    public var toleranceRelative: Double
    public var toleranceAbsoluteBytes: Int
    public var sampleIntervalSeconds: Double
    /// `--memory-limit`, when given: the machine size simulated.
    public var memoryLimitBytes: Int?
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
    public var strategy: String
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

/// One check of one run: a measured figure against a bound.
public struct Check: Codable, Sendable, Equatable {
    public var name: String
    public var passed: Bool
    public var measuredBytes: Int
    public var boundBytes: Int
    /// `"<="`, `">="` or `"=="` (or `"within"` for agreement checks, bound = allowed difference).
    public var relation: String
    public var detail: String
}

public struct RunResult: Codable, Sendable, Equatable {
    public var id: String
    public var strategy: String
    /// The resolved target dtype.
    public var dtype: String
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
