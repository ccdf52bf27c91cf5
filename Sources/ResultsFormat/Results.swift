import Foundation
import Loading
import TensorEngine

/// The results file `run` writes (`Reports/<scenario>.json`) and `report` / `compare` read.
///
/// Every size is in bytes, every time in seconds, and every figure is named for exactly what it measures:
/// `rss_anon_peak_delta_bytes` is the sampled maximum of `/proc/self/status` RssAnon minus its baseline,
/// `vmhwm_delta_bytes` the kernel's own high-water mark of VmRSS minus the baseline VmRSS, and so on.
/// The schema is `Reports/schema/results.schema.json`; `schemaVersion` changes whenever a field changes meaning.
package struct ScenarioResults: Codable, Sendable, Equatable {
    /// The version this tool writes: 2 adds loaders other than the engine (`subject`), makes the figures a
    /// loader does not have absent (ledger, jemalloc) and records the watchdog's limits. Version-1 files
    /// decode as they are (every new field is optional).
    package static let currentSchemaVersion = 2
    /// The versions `report` and `compare` read.
    package static let readableSchemaVersions: ClosedRange<Int> = 1...2

    package var schemaVersion: Int
    package var tool: ToolInfo
    package var scenario: ScenarioInfo
    package var environment: EnvironmentInfo
    package var scale: ScaleInfo
    package var checkpoint: CheckpointInfo
    package var floor: FloorInfo?
    /// Why the floor could not be measured, when it could not (its child stopped, timed out, was killed, failed).
    package var floorFailure: String? = nil
    /// Each run's predicted peak at full size (scale 1), with the formula that gives it.
    package var fullSizePredictions: [Prediction]
    package var runs: [RunResult]
    /// Runs of several ranks: what they cost the machine together, and the machine-level claims.
    package var machineRuns: [MachineRun]? = nil
    /// A sweep's sizes (``SweepInfo``); absent for a scenario measured at one scale.
    package var sweep: SweepInfo? = nil
    /// A sweep's lines: each run's figures against the checkpoint's bytes (``SweepFit``).
    package var fits: [SweepFit]? = nil
    /// True when every planned run finished (false after an interrupt or a fatal error).
    package var complete: Bool
    /// Why the scenario stopped early, when it did.
    package var stoppedReason: StopReason?
    package var startedAt: String
    package var finishedAt: String?

    package init(
        tool: ToolInfo, scenario: ScenarioInfo, environment: EnvironmentInfo, scale: ScaleInfo,
        checkpoint: CheckpointInfo,
        floor: FloorInfo?, fullSizePredictions: [Prediction], runs: [RunResult], complete: Bool,
        stoppedReason: StopReason?,
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
package enum StopReason: String, Codable, Sendable {
    /// SIGINT or SIGTERM: the run in progress was ended; the runs that completed are kept.
    case interrupted
    /// The runner itself failed (the results file could not be written, the checkpoint could not be made).
    case error
}

package struct ToolInfo: Codable, Sendable, Equatable {
    package var name: String
    package var version: String
    /// `git rev-parse HEAD` of the checkout the tool was built from, when known.
    package var gitCommit: String?
    package var swiftVersion: String
    package var buildConfiguration: String

    package init(
        name: String,
        version: String,
        gitCommit: String? = nil,
        swiftVersion: String,
        buildConfiguration: String
    ) {
        self.name = name
        self.version = version
        self.gitCommit = gitCommit
        self.swiftVersion = swiftVersion
        self.buildConfiguration = buildConfiguration
    }
}

package struct ScenarioInfo: Codable, Sendable, Equatable {
    package var name: String
    package var description: String
    package var file: String
    package var modelType: String
    package var repeatCount: Int
    package var cache: PageCacheMode
    package var toleranceRelative: Double
    package var toleranceAbsoluteBytes: Int
    package var sampleIntervalSeconds: Double
    /// The parent's sampling period for loaders measured from outside, when the scenario has any (version 2).
    package var outsideProbeIntervalSeconds: Double? = nil
    /// `--memory-limit`, when given: the machine size simulated.
    package var memoryLimitBytes: Int?
    /// The watchdog's limits (version 2).
    package var runTimeoutSeconds: Double? = nil
    package var stallTimeoutSeconds: Double? = nil
    /// The tolerance of claims on loaders outside the engine (version 2; present when the scenario has such runs).
    package var subjectToleranceRelative: Double? = nil
    package var subjectToleranceAbsoluteBytes: Int? = nil

    package init(
        name: String,
        description: String,
        file: String,
        modelType: String,
        repeatCount: Int,
        cache: PageCacheMode,
        toleranceRelative: Double,
        toleranceAbsoluteBytes: Int,
        sampleIntervalSeconds: Double,
        outsideProbeIntervalSeconds: Double? = nil,
        memoryLimitBytes: Int? = nil,
        runTimeoutSeconds: Double? = nil,
        stallTimeoutSeconds: Double? = nil,
        subjectToleranceRelative: Double? = nil,
        subjectToleranceAbsoluteBytes: Int? = nil
    ) {
        self.name = name
        self.description = description
        self.file = file
        self.modelType = modelType
        self.repeatCount = repeatCount
        self.cache = cache
        self.toleranceRelative = toleranceRelative
        self.toleranceAbsoluteBytes = toleranceAbsoluteBytes
        self.sampleIntervalSeconds = sampleIntervalSeconds
        self.outsideProbeIntervalSeconds = outsideProbeIntervalSeconds
        self.memoryLimitBytes = memoryLimitBytes
        self.runTimeoutSeconds = runTimeoutSeconds
        self.stallTimeoutSeconds = stallTimeoutSeconds
        self.subjectToleranceRelative = subjectToleranceRelative
        self.subjectToleranceAbsoluteBytes = subjectToleranceAbsoluteBytes
    }
}

package struct EnvironmentInfo: Codable, Sendable, Equatable {
    package var hostname: String
    package var kernel: String
    package var cpuModel: String
    package var logicalCpus: Int
    package var memTotalBytes: Int
    package var memAvailableBytes: Int
    package var swapTotalBytes: Int
    package var transparentHugePages: String
    package var transparentHugePagesDefrag: String
    package var pageSizeBytes: Int
    /// The allocator serving the measured processes: `jemalloc <version>`.
    package var allocator: String
    /// `MALLOC_CONF` as set for each measured child, and jemalloc's effective options read back in it.
    package var mallocConf: String
    package var jemallocOptions: [String: String]
    /// The measured children's complete environment.
    package var childEnvironment: [String: String]
    package var cgroup: String?
    package var cgroupMemoryLimitBytes: Int?

    package init(
        hostname: String,
        kernel: String,
        cpuModel: String,
        logicalCpus: Int,
        memTotalBytes: Int,
        memAvailableBytes: Int,
        swapTotalBytes: Int,
        transparentHugePages: String,
        transparentHugePagesDefrag: String,
        pageSizeBytes: Int,
        allocator: String,
        mallocConf: String,
        jemallocOptions: [String: String],
        childEnvironment: [String: String],
        cgroup: String? = nil,
        cgroupMemoryLimitBytes: Int? = nil
    ) {
        self.hostname = hostname
        self.kernel = kernel
        self.cpuModel = cpuModel
        self.logicalCpus = logicalCpus
        self.memTotalBytes = memTotalBytes
        self.memAvailableBytes = memAvailableBytes
        self.swapTotalBytes = swapTotalBytes
        self.transparentHugePages = transparentHugePages
        self.transparentHugePagesDefrag = transparentHugePagesDefrag
        self.pageSizeBytes = pageSizeBytes
        self.allocator = allocator
        self.mallocConf = mallocConf
        self.jemallocOptions = jemallocOptions
        self.childEnvironment = childEnvironment
        self.cgroup = cgroup
        self.cgroupMemoryLimitBytes = cgroupMemoryLimitBytes
    }
}

package struct ScaleInfo: Codable, Sendable, Equatable {
    /// `"fit"` or the number asked for.
    package var requested: String
    package var chosen: Double
    /// How the scale was chosen, in a sentence.
    package var reason: String
    /// The memory the fit aimed to stay within: safe share × (MemAvailable or --memory-limit).
    package var memoryBudgetBytes: Int
    package var safeShare: Double
    package var diskFreeBytes: Int?

    package init(
        requested: String,
        chosen: Double,
        reason: String,
        memoryBudgetBytes: Int,
        safeShare: Double,
        diskFreeBytes: Int? = nil
    ) {
        self.requested = requested
        self.chosen = chosen
        self.reason = reason
        self.memoryBudgetBytes = memoryBudgetBytes
        self.safeShare = safeShare
        self.diskFreeBytes = diskFreeBytes
    }
}

package struct CheckpointInfo: Codable, Sendable, Equatable {
    package var path: String
    /// True when bigmodel-bench generated it (synthetic values), false for an existing checkpoint.
    package var generated: Bool
    /// True when it came from the cache instead of being written by this run.
    package var reused: Bool
    package var dtype: String?
    package var maxShardSizeBytes: Int?
    package var seed: UInt64?
    package var files: Int
    package var totalSizeBytes: Int
    package var largestShardBytes: Int
    package var generationSeconds: Double?

    package init(
        path: String,
        generated: Bool,
        reused: Bool,
        dtype: String? = nil,
        maxShardSizeBytes: Int? = nil,
        seed: UInt64? = nil,
        files: Int,
        totalSizeBytes: Int,
        largestShardBytes: Int,
        generationSeconds: Double? = nil
    ) {
        self.path = path
        self.generated = generated
        self.reused = reused
        self.dtype = dtype
        self.maxShardSizeBytes = maxShardSizeBytes
        self.seed = seed
        self.files = files
        self.totalSizeBytes = totalSizeBytes
        self.largestShardBytes = largestShardBytes
        self.generationSeconds = generationSeconds
    }
}

/// The machine's floor: the same bytes read into fresh memory the fastest plain way, in a fresh process as a
/// run is measured (`seconds`: the first pass), and once its memory is warm (`warmSeconds`: the fastest pass).
package struct FloorInfo: Codable, Sendable, Equatable {
    package var bytes: Int
    package var seconds: Double
    package var gigabytesPerSecond: Double
    package var method: String
    /// The fastest of the passes, in memory the floor's process had already touched (absent in older files,
    /// whose `seconds` was this fastest pass).
    package var warmSeconds: Double? = nil
    /// The uncounted first pass, which paid for memory the host had taken back (absent in older files, whose
    /// `seconds` was this first pass or the fastest one).
    package var firstPassSeconds: Double? = nil

    package init(bytes: Int, seconds: Double, gigabytesPerSecond: Double, method: String) {
        self.bytes = bytes
        self.seconds = seconds
        self.gigabytesPerSecond = gigabytesPerSecond
        self.method = method
    }
}

package struct Prediction: Codable, Sendable, Equatable {
    package var run: String
    package var strategy: StrategyName
    package var formula: String
    package var figures: MemoryFigures
    package var predictedPeakBytes: Int

    package init(
        run: String,
        strategy: StrategyName,
        formula: String,
        figures: MemoryFigures,
        predictedPeakBytes: Int
    ) {
        self.run = run
        self.strategy = strategy
        self.formula = formula
        self.figures = figures
        self.predictedPeakBytes = predictedPeakBytes
    }
}

/// The verdict on one run.
package enum Verdict: String, Codable, Sendable {
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
package enum CheckRelation: String, Codable, Sendable {
    /// The measured figure may not exceed the bound.
    case atMost = "<="
    /// The measured figure must reach the bound.
    case atLeast = ">="
    /// Exactly equal (the ledger against its formula).
    case equal = "=="
    /// An agreement check: the measured figure is a difference, the bound the difference allowed.
    case within

    package func holds(_ measured: Int, _ bound: Int) -> Bool {
        switch self {
        case .atMost, .within: measured <= bound
        case .atLeast: measured >= bound
        case .equal: measured == bound
        }
    }
}

/// One check of one run: a measured figure against a bound.
package struct Check: Codable, Sendable, Equatable {
    /// Which claim it verifies; in JSON its name (`"name"`).
    package var kind: CheckKind
    package var passed: Bool
    package var measuredBytes: Int
    package var boundBytes: Int
    package var relation: CheckRelation
    package var detail: String

    /// The name reports print and results files keep.
    package var name: String { kind.name }

    /// A check whose `passed` follows from the relation.
    package init(_ kind: CheckKind, measuredBytes: Int, boundBytes: Int, relation: CheckRelation, detail: String) {
        self.init(
            kind, passed: relation.holds(measuredBytes, boundBytes), measuredBytes: measuredBytes,
            boundBytes: boundBytes, relation: relation, detail: detail)
    }

    package init(
        _ kind: CheckKind, passed: Bool, measuredBytes: Int, boundBytes: Int, relation: CheckRelation, detail: String
    ) {
        self.kind = kind
        self.passed = passed
        self.measuredBytes = measuredBytes
        self.boundBytes = boundBytes
        self.relation = relation
        self.detail = detail
    }

    private enum CodingKeys: String, CodingKey {
        case name, passed, measuredBytes, boundBytes, relation, detail
    }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        kind = CheckKind(name: try container.decode(String.self, forKey: .name))
        passed = try container.decode(Bool.self, forKey: .passed)
        measuredBytes = try container.decode(Int.self, forKey: .measuredBytes)
        boundBytes = try container.decode(Int.self, forKey: .boundBytes)
        relation = try container.decode(CheckRelation.self, forKey: .relation)
        detail = try container.decode(String.self, forKey: .detail)
    }

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(name, forKey: .name)
        try container.encode(passed, forKey: .passed)
        try container.encode(measuredBytes, forKey: .measuredBytes)
        try container.encode(boundBytes, forKey: .boundBytes)
        try container.encode(relation, forKey: .relation)
        try container.encode(detail, forKey: .detail)
    }
}

/// A run's target dtype: `auto` until the child resolved it, then the dtype.
package enum TargetDType: Codable, Sendable, Equatable, CustomStringConvertible {
    case auto
    case resolved(DType)

    package init(_ dtype: DType?) { self = dtype.map { .resolved($0) } ?? .auto }

    package var description: String {
        switch self {
        case .auto: "auto"
        case .resolved(let dtype): dtype.torchName
        }
    }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if (try? container.decode(String.self)) == "auto" {
            self = .auto
        } else {
            self = .resolved(try container.decode(DType.self))
        }
    }

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

package struct RunResult: Codable, Sendable, Equatable {
    package var id: String
    /// Who loaded; absent: the engine.
    package var subject: Subject? = nil
    /// A rank of a multi-rank run: which, of how many.
    package var rank: Int? = nil
    package var worldSize: Int? = nil
    /// `measure-rank`: the rank's index on its node and the node (its hostname), which `merge` groups by.
    package var localRank: Int? = nil
    package var node: String? = nil
    package var strategy: StrategyName
    /// The resolved target dtype (`auto` when the run never resolved it).
    package var dtype: TargetDType
    package var repeatIndex: Int
    /// A sweep's run: the scale it was measured at (``SweepInfo/points`` has that size's checkpoint).
    package var scale: Double? = nil
    package var verdict: Verdict
    /// One line: why the verdict is what it is.
    package var verdictDetail: String
    package var checks: [Check]
    package var formula: String
    package var figures: MemoryFigures?
    package var predictedPeakBytes: Int?
    /// predicted + tolerance: the most any RSS peak delta may reach.
    package var upperBoundBytes: Int?
    /// predicted − tolerance, for strategies whose claim is a high cost (naive, load-then-cast).
    package var lowerBoundBytes: Int?
    package var toleranceBytes: Int?
    package var measurement: RunMeasurement?
    /// How the child process ended.
    package var exit: RunExit
    /// Wall-clock seconds of the load itself (inside the child).
    package var seconds: Double?
    /// `seconds` divided by the floor's seconds.
    package var floorMultiple: Double?

    /// The subject, the engine when absent.
    package var loader: Subject { subject ?? .engine }

    package init(
        id: String,
        subject: Subject? = nil,
        rank: Int? = nil,
        worldSize: Int? = nil,
        localRank: Int? = nil,
        node: String? = nil,
        strategy: StrategyName,
        dtype: TargetDType,
        repeatIndex: Int,
        verdict: Verdict,
        verdictDetail: String,
        checks: [Check],
        formula: String,
        figures: MemoryFigures? = nil,
        predictedPeakBytes: Int? = nil,
        upperBoundBytes: Int? = nil,
        lowerBoundBytes: Int? = nil,
        toleranceBytes: Int? = nil,
        measurement: RunMeasurement? = nil,
        exit: RunExit,
        seconds: Double? = nil,
        floorMultiple: Double? = nil
    ) {
        self.id = id
        self.subject = subject
        self.rank = rank
        self.worldSize = worldSize
        self.localRank = localRank
        self.node = node
        self.strategy = strategy
        self.dtype = dtype
        self.repeatIndex = repeatIndex
        self.verdict = verdict
        self.verdictDetail = verdictDetail
        self.checks = checks
        self.formula = formula
        self.figures = figures
        self.predictedPeakBytes = predictedPeakBytes
        self.upperBoundBytes = upperBoundBytes
        self.lowerBoundBytes = lowerBoundBytes
        self.toleranceBytes = toleranceBytes
        self.measurement = measurement
        self.exit = exit
        self.seconds = seconds
        self.floorMultiple = floorMultiple
    }
}

package struct RunExit: Codable, Sendable, Equatable {
    package var status: Int32?
    package var signal: Int32?
    package var signalName: String?
    package var coreDumped: Bool
    /// The child's ru_maxrss (KiB → bytes) from wait4; inflated by the exec pitfall, kept for reference only.
    package var rusageMaxRssBytes: Int?
    package var userSeconds: Double?
    package var systemSeconds: Double?
    /// Last lines of the child's stderr when it failed.
    package var stderrTail: String?

    package init(
        status: Int32? = nil,
        signal: Int32? = nil,
        signalName: String? = nil,
        coreDumped: Bool,
        rusageMaxRssBytes: Int? = nil,
        userSeconds: Double? = nil,
        systemSeconds: Double? = nil,
        stderrTail: String? = nil
    ) {
        self.status = status
        self.signal = signal
        self.signalName = signalName
        self.coreDumped = coreDumped
        self.rusageMaxRssBytes = rusageMaxRssBytes
        self.userSeconds = userSeconds
        self.systemSeconds = systemSeconds
        self.stderrTail = stderrTail
    }
}

extension Check {
    /// One failed check in words: which bound, by how much.
    package var failureDescription: String {
        let by = abs(measuredBytes - boundBytes)
        switch relation {
        case .atMost:
            return
                "\(name) failed: \(ByteSize.binary(measuredBytes)) exceeds \(ByteSize.binary(boundBytes)) by \(ByteSize.binary(by))"
        case .atLeast:
            return
                "\(name) failed: \(ByteSize.binary(measuredBytes)) is \(ByteSize.binary(by)) below \(ByteSize.binary(boundBytes))"
        case .equal:
            return
                "\(name) failed: \(measuredBytes) bytes vs \(boundBytes) predicted (off by \(measuredBytes - boundBytes))"
        case .within:
            return "\(name) failed: differ by \(ByteSize.binary(measuredBytes)), allowed \(ByteSize.binary(boundBytes))"
        }
    }
}
