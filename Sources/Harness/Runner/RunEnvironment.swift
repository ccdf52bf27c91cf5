import Foundation
import Probes
import ResultsFormat

/// The parts of a results file that describe where and how it was measured: the tool, the scenario's
/// settings, the machine and the measured children's environment.
extension ScenarioRunner {
    func initialResults(_ prepared: PreparedScenario, _ system: SystemInfo) -> ScenarioResults {
        ScenarioResults(
            tool: Self.toolInfo(), scenario: scenarioInfo(), environment: environmentInfo(system),
            scale: prepared.scale,
            checkpoint: prepared.checkpoint, floor: nil, fullSizePredictions: prepared.fullSize, runs: [],
            complete: false, stoppedReason: nil,
            startedAt: ResultsStore.timestamp(), finishedAt: nil)
    }

    func scenarioInfo() -> ScenarioInfo {
        var info = ScenarioInfo(
            name: scenario.name, description: scenario.description, file: scenario.file,
            modelType: scenario.config.modelType ?? "unknown",
            repeatCount: options.repeatCount ?? scenario.repeatCount, cache: scenario.cache,
            toleranceRelative: scenario.tolerance.relative,
            toleranceAbsoluteBytes: scenario.tolerance.absoluteBytes,
            sampleIntervalSeconds: scenario.sampleIntervalMilliseconds / 1000,
            memoryLimitBytes: options.memoryLimit, runTimeoutSeconds: scenario.limits.wallSeconds,
            stallTimeoutSeconds: scenario.limits.stallSeconds)
        if plannedRuns.contains(where: { !$0.run.subject.isEngine }) {
            info.outsideProbeIntervalSeconds = scenario.outsideProbeIntervalMilliseconds / 1000
            info.subjectToleranceRelative = scenario.subjectTolerance.relative
            info.subjectToleranceAbsoluteBytes = scenario.subjectTolerance.absoluteBytes
        }
        return info
    }

    func environmentInfo(_ system: SystemInfo) -> EnvironmentInfo {
        let config = JemallocStats.configuration()
        var options: [String: String] = [:]
        if let v = config.dirtyDecayMilliseconds { options["opt.dirty_decay_ms (parent)"] = String(v) }
        if let v = config.muzzyDecayMilliseconds { options["opt.muzzy_decay_ms (parent)"] = String(v) }
        if let v = config.transparentHugePages { options["opt.thp"] = v }
        if let v = config.oversizeThresholdBytes { options["opt.oversize_threshold"] = String(v) }
        if let v = config.automaticArenaCount { options["opt.narenas"] = String(v) }
        if let v = config.threadCache { options["opt.tcache"] = String(v) }
        let cgroup = CgroupMemory.current()
        var cgroupLimit: Int?
        if case .bytes(let bytes)? = cgroup?.limit { cgroupLimit = bytes }
        return EnvironmentInfo(
            hostname: system.hostname, kernel: "\(system.kernelName) \(system.kernelRelease) \(system.machine)",
            cpuModel: system.cpuModel ?? "unknown",
            logicalCpus: system.logicalCores, memTotalBytes: system.memTotalBytes ?? 0,
            memAvailableBytes: system.memAvailableBytes ?? 0,
            swapTotalBytes: system.swapTotalBytes ?? 0,
            transparentHugePages: system.transparentHugePagesEnabled ?? "unknown",
            transparentHugePagesDefrag: system.transparentHugePagesDefrag ?? "unknown", pageSizeBytes: system.pageSize,
            allocator: "jemalloc \(config.version ?? "unknown")", mallocConf: Self.childMallocConf,
            jemallocOptions: options,
            childEnvironment: childEnvironment, cgroup: cgroup.map { "\($0.version.rawValue) \($0.cgroupPath)" },
            cgroupMemoryLimitBytes: cgroupLimit)
    }

    /// This tool's identity, recorded in every results file.
    package static func toolInfo() -> ToolInfo {
        #if DEBUG
        let configuration = "debug"
        #else
        let configuration = "release"
        #endif
        return ToolInfo(
            name: "bigmodel-bench", version: ToolVersion.version, gitCommit: ToolVersion.gitCommit(),
            swiftVersion: ToolVersion.swiftVersion,
            buildConfiguration: configuration)
    }
}
