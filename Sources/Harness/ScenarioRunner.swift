import Checkpoint
import Foundation
import Loading
import Models
import Probes
import StrictJSON
import TensorEngine

/// Runs a scenario: chooses the scale, prepares the checkpoint, measures the floor, then runs every
/// strategy × repeat in a fresh child process of this executable, judging each as it completes and
/// rewriting the results file after every run.
public final class ScenarioRunner {
    public struct Options: Sendable {
        /// `--scale`: overrides the scenario's scale.
        public var scale: Scenario.ScaleRequest?
        /// `--only`: run ids (or strategy names) to run; nil runs all.
        public var only: Set<String>?
        public var repeatCount: Int?
        /// Where results go (`<outputDirectory>/<scenario>.json`).
        public var outputDirectory: String
        /// `--memory-limit`: simulate a machine with this much memory.
        public var memoryLimit: Int?
        /// Cache and scratch folder (`.bigmodel-bench`).
        public var workDirectory: String
        /// The executable to spawn as the measured child (this program).
        public var executable: String

        public init(
            scale: Scenario.ScaleRequest? = nil, only: Set<String>? = nil, repeatCount: Int? = nil, outputDirectory: String,
            memoryLimit: Int? = nil, workDirectory: String, executable: String
        ) {
            self.scale = scale
            self.only = only
            self.repeatCount = repeatCount
            self.outputDirectory = outputDirectory
            self.memoryLimit = memoryLimit
            self.workDirectory = workDirectory
            self.executable = executable
        }
    }

    /// What the runner tells its caller as it goes (the CLI prints it).
    public enum Event: Sendable {
        case note(String)
        case generating(done: Int, total: Int)
        case runStarted(index: Int, count: Int, id: String, repeatIndex: Int)
        case phase(id: String, name: String, ledgerBytes: Int, elapsedSeconds: Double)
        case runFinished(RunResult)
    }

    /// `MALLOC_CONF` for every measured child: freed pages go back to the OS at once, so RSS after a free
    /// is honest, and no background thread runs beside the sampler.
    public static let childMallocConf = "dirty_decay_ms:0,muzzy_decay_ms:0,background_thread:false"

    public let scenario: Scenario
    public let options: Options
    private let onEvent: (Event) -> Void

    public init(scenario: Scenario, options: Options, onEvent: @escaping (Event) -> Void = { _ in }) {
        self.scenario = scenario
        self.options = options
        self.onEvent = onEvent
    }

    public var resultsPath: String { options.outputDirectory + "/\(scenario.name).json" }

    /// The environment every child gets: fixed and complete, nothing inherited but PATH and HOME.
    public var childEnvironment: [String: String] {
        let parent = ProcessInfo.processInfo.environment
        return [
            "PATH": parent["PATH"] ?? "/usr/bin:/bin",
            "HOME": parent["HOME"] ?? "/",
            "LANG": "C.UTF-8",
            "MALLOC_CONF": Self.childMallocConf,
        ]
    }

    /// Runs everything; returns the results (also written to `resultsPath` after each run).
    public func run() throws -> ScenarioResults {
        let fm = FileManager.default
        try? fm.createDirectory(atPath: options.workDirectory, withIntermediateDirectories: true)
        try? fm.createDirectory(atPath: options.outputDirectory, withIntermediateDirectories: true)
        let runsFolder = options.workDirectory + "/runs"
        try? fm.createDirectory(atPath: runsFolder, withIntermediateDirectories: true)

        let system = SystemInfo.current(diskPath: options.workDirectory)
        let available = system.memAvailableBytes ?? system.memTotalBytes ?? 0
        let memoryBytes = options.memoryLimit.map { min($0, available) } ?? available
        let planner = ScalePlanner(scenario: scenario, hostAvailableBytes: available)
        let cache = CheckpointCache(workDirectory: options.workDirectory)

        // Scale.
        let request = options.scale ?? scenario.scale
        let scaleInfo: ScaleInfo
        var scale = 1.0
        switch (request, scenario.checkpoint) {
        case (_, .existing):
            scaleInfo = ScaleInfo(
                requested: Self.describe(request), chosen: 1, reason: "an existing checkpoint is loaded as it is", memoryBudgetBytes: memoryBytes,
                safeShare: ScalePlanner.safeShare, diskFreeBytes: system.disk?.availableBytes)
        case (.fixed(let value), .generated):
            scale = value
            scaleInfo = ScaleInfo(
                requested: Self.describe(request), chosen: value, reason: "fixed by \(options.scale == nil ? "the scenario" : "--scale")",
                memoryBudgetBytes: Int(Double(memoryBytes) * ScalePlanner.safeShare), safeShare: ScalePlanner.safeShare,
                diskFreeBytes: system.disk?.availableBytes)
        case (.fit, .generated):
            let cached = Set(try ScalePlanner.grid.filter { candidate in
                guard let synthetic = try planner.synthetic(scale: candidate) else { return false }
                return fm.fileExists(atPath: cache.folder(for: synthetic, scenario: scenario.name))
            })
            let fit = try planner.fit(memoryBytes: memoryBytes, diskFreeBytes: system.disk?.availableBytes, cachedScales: cached)
            scale = fit.scale
            scaleInfo = ScaleInfo(
                requested: "fit", chosen: fit.scale, reason: fit.reason, memoryBudgetBytes: Int(Double(memoryBytes) * ScalePlanner.safeShare),
                safeShare: ScalePlanner.safeShare, diskFreeBytes: system.disk?.availableBytes)
        }
        onEvent(.note("scale \(scaleInfo.chosen): \(scaleInfo.reason)"))

        // Checkpoint.
        let checkpointInfo: CheckpointInfo
        let checkpointFolder: String
        switch scenario.checkpoint {
        case .existing(let path):
            let checkpoint = try Checkpoint(path: path)
            checkpointFolder = path
            checkpointInfo = CheckpointInfo(
                path: path, generated: false, reused: true, dtype: nil, maxShardSizeBytes: nil, seed: nil, files: checkpoint.files.count,
                totalSizeBytes: checkpoint.totalSize, largestShardBytes: checkpoint.largestShardBytes, generationSeconds: nil)
        case .generated(let dtype, _, let seed):
            guard let synthetic = try planner.synthetic(scale: scale) else { preconditionFailure("generated scenario without a synthetic checkpoint") }
            let total = synthetic.plan.totalSize
            if !cache.isCached(synthetic, scenario: scenario.name), let free = system.disk?.availableBytes, free < total + (1 << 30) {
                throw FileIOError(
                    path: options.workDirectory, operation: "generate checkpoint",
                    reason: "needs \(ByteSize.decimal(total)) plus 1 GiB of headroom but \(ByteSize.decimal(free)) are free; use --scale or --work-dir")
            }
            let made = try cache.checkpoint(
                for: synthetic, scenario: scenario.name, progress: { [onEvent] in onEvent(.generating(done: $0, total: total)) },
                isCancelled: { SignalTrap.interrupted })
            checkpointFolder = made.folder
            let checkpoint = try Checkpoint(path: made.folder)
            checkpointInfo = CheckpointInfo(
                path: made.folder, generated: true, reused: made.reused, dtype: dtype.torchName, maxShardSizeBytes: synthetic.maxShardSize, seed: seed,
                files: checkpoint.files.count, totalSizeBytes: checkpoint.totalSize, largestShardBytes: checkpoint.largestShardBytes,
                generationSeconds: made.seconds)
            onEvent(.note(made.reused ? "checkpoint reused: \(made.folder)" : "checkpoint generated in \(ByteSize.fixed(made.seconds ?? 0, digits: 1)) s: \(made.folder)"))
        }
        let shardPaths = try Checkpoint(path: checkpointFolder).files.map(\.path)

        // Full-size predictions, and the caps for this machine.
        let fullSize: [Prediction]
        if case .generated = scenario.checkpoint {
            fullSize = try planner.predictions(scale: 1).map {
                Prediction(run: $0.run.id, strategy: $0.run.strategy.rawValue, formula: $0.formula, figures: $0.figures, predictedPeakBytes: $0.predictedPeakBytes)
            }
        } else {
            fullSize = []
        }
        // Each child's ledger cap: what the machine (or --memory-limit) offers, less headroom, so a run that
        // would exceed it fails an allocation and is reported as oom instead of meeting the kernel's OOM killer.
        let cap = Self.ledgerCap(memoryBytes: memoryBytes)

        var results = ScenarioResults(
            tool: Self.toolInfo(), scenario: scenarioInfo(), environment: environmentInfo(system), scale: scaleInfo, checkpoint: checkpointInfo,
            floor: nil, fullSizePredictions: fullSize, runs: [], complete: false, stoppedReason: nil, startedAt: Self.timestamp(), finishedAt: nil)
        try write(results)

        // The floor.
        try prepareCache(shardPaths)
        if SignalTrap.interrupted { return try stop(&results, reason: "interrupted") }
        let floorResult = runsFolder + "/\(scenario.name)-floor.json"
        let floorRun = try spawnChild(
            arguments: ["measure-floor", "--result", floorResult] + (scenario.cache == .cold ? ["--cold"] : []) + shardPaths, log: runsFolder + "/\(scenario.name)-floor.log", id: "floor")
        if case .exited(0) = floorRun.exit.termination, let data = fm.contents(atPath: floorResult),
            let floor = try? JSONDecoder.results.decode(FloorInfo.self, from: data)
        {
            results.floor = floor
            onEvent(.note("floor: \(ByteSize.decimal(floor.bytes)) read in \(ByteSize.fixed(floor.seconds, digits: 2)) s (\(ByteSize.fixed(floor.gigabytesPerSecond, digits: 2)) GB/s, \(floor.method))"))
        } else if floorRun.interrupted {
            return try stop(&results, reason: "interrupted")
        }
        try write(results)

        // Each run's prediction at this scale (device-map runs: their placement request, percentages resolved).
        let atScale: [String: ScalePlanner.RunPrediction]
        if case .generated = scenario.checkpoint {
            atScale = Dictionary(uniqueKeysWithValues: try planner.predictions(scale: scale).map { ($0.run.id, $0) })
        } else {
            atScale = Dictionary(uniqueKeysWithValues: try planner.predictions(checkpoint: try Checkpoint(path: checkpointFolder)).map { ($0.run.id, $0) })
        }

        // The runs.
        let runs = scenario.runs.filter { run in options.only.map { $0.contains(run.id) || $0.contains(run.strategy.rawValue) } ?? true }
        let repeats = options.repeatCount ?? scenario.repeatCount
        let checker = ClaimChecker(tolerance: scenario.tolerance)
        var index = 0
        for run in runs {
            for repeatIndex in 0..<repeats {
                index += 1
                if SignalTrap.interrupted { return try stop(&results, reason: "interrupted") }
                onEvent(.runStarted(index: index, count: runs.count * repeats, id: run.id, repeatIndex: repeatIndex))
                try prepareCache(shardPaths)
                let stem = runsFolder + "/\(scenario.name)-\(run.id)-\(repeatIndex + 1)"
                try? fm.removeItem(atPath: stem + ".json")
                var arguments = [
                    "measure-run", checkpointFolder, "--strategy", run.strategy.rawValue, "--result", stem + ".json",
                    "--sample-interval-ms", String(scenario.sampleIntervalMilliseconds), "--ledger-budget", String(cap),
                ]
                if let dtype = run.dtype { arguments += ["--dtype", dtype.torchName] }
                let offload = options.workDirectory + "/offload/\(scenario.name)-\(run.id)-\(repeatIndex + 1)"
                if let request = atScale[run.id]?.request {
                    try? fm.removeItem(atPath: offload)
                    try fm.createDirectory(atPath: offload, withIntermediateDirectories: true)
                    arguments += try PlacementSettings.arguments(for: request, mapFile: stem + "-map.json") + ["--offload-folder", offload]
                }
                let child = try spawnChild(arguments: arguments, log: stem + ".log", id: run.id)
                defer { try? fm.removeItem(atPath: offload) }
                let result = judge(run: run, repeatIndex: repeatIndex, child: child, resultPath: stem + ".json", log: stem + ".log", checker: checker, floor: results.floor)
                results.runs.append(result)
                try write(results)
                onEvent(.runFinished(result))
                if child.interrupted { return try stop(&results, reason: "interrupted") }
            }
        }
        results.complete = true
        results.finishedAt = Self.timestamp()
        try write(results)
        return results
    }

    // MARK: - Children

    struct ChildOutcome {
        let exit: ChildExit
        let interrupted: Bool
    }

    /// Spawns this executable with `arguments`, its stderr to `log`, and waits, relaying phase lines and
    /// ending it when the user interrupts.
    private func spawnChild(arguments: [String], log: String, id: String) throws -> ChildOutcome {
        let child = try ChildProcess.spawn(
            executable: options.executable, arguments: arguments, environment: childEnvironment,
            options: .init(standardInput: .null, standardOutput: .null, standardError: .file(log)))
        let start = ContinuousClock.now
        var relayed = 0
        while true {
            if let exit = try child.poll() {
                relayPhases(log: log, from: &relayed, id: id, start: start)
                return ChildOutcome(exit: exit, interrupted: false)
            }
            if SignalTrap.interrupted {
                let exit = try child.terminate(grace: .seconds(2))
                return ChildOutcome(exit: exit, interrupted: true)
            }
            relayPhases(log: log, from: &relayed, id: id, start: start)
            Thread.sleep(forTimeInterval: 0.02)
        }
    }

    /// Forwards the child's `phase NAME\tLEDGER` lines as events.
    private func relayPhases(log: String, from offset: inout Int, id: String, start: ContinuousClock.Instant) {
        guard let handle = FileHandle(forReadingAtPath: log) else { return }
        defer { try? handle.close() }
        try? handle.seek(toOffset: UInt64(offset))
        guard let data = try? handle.readToEnd(), !data.isEmpty else { return }
        guard let lastNewline = data.lastIndex(of: 0x0A) else { return }
        let complete = data[data.startIndex...lastNewline]
        offset += complete.count
        for line in String(decoding: complete, as: UTF8.self).split(separator: "\n") where line.hasPrefix("phase\t") {
            let parts = line.split(separator: "\t")
            guard parts.count >= 3, let bytes = Int(parts[2]) else { continue }
            onEvent(.phase(id: id, name: String(parts[1]), ledgerBytes: bytes, elapsedSeconds: (ContinuousClock.now - start).inSeconds))
        }
    }

    private func judge(
        run: Scenario.Run, repeatIndex: Int, child: ChildOutcome, resultPath: String, log: String, checker: ClaimChecker, floor: FloorInfo?
    ) -> RunResult {
        let usage = child.exit.resourceUsage
        var exit = RunExit(
            status: nil, signal: nil, signalName: nil, coreDumped: false, rusageMaxRssBytes: usage.maxRSSBytes,
            userSeconds: usage.userCPUSeconds, systemSeconds: usage.systemCPUSeconds, stderrTail: nil)
        switch child.exit.termination {
        case .exited(let code): exit.status = code
        case .signaled(let signal, let core):
            exit.signal = signal
            exit.signalName = ChildTermination.signalName(signal)
            exit.coreDumped = core
        }
        var result = RunResult(
            id: run.id, strategy: run.strategy.rawValue, dtype: run.dtype?.torchName ?? "auto", repeatIndex: repeatIndex, verdict: .error,
            verdictDetail: "", checks: [], formula: run.strategy.strategy.formula, figures: nil, predictedPeakBytes: nil, upperBoundBytes: nil,
            lowerBoundBytes: nil, toleranceBytes: nil, measurement: nil, exit: exit, seconds: nil, floorMultiple: nil)
        guard exit.status == 0, let data = FileManager.default.contents(atPath: resultPath),
            let measurement = try? JSONDecoder.results.decode(RunMeasurement.self, from: data)
        else {
            result.exit.stderrTail = Self.tail(of: log)
            if child.interrupted {
                result.verdictDetail = "interrupted by the user"
            } else if let signal = exit.signalName {
                let oomKilled = (CgroupMemory.current()?.oomKillCount ?? 0) > 0 && exit.signal == SIGKILL
                result.verdictDetail = "the child died of \(signal)" + (oomKilled ? " (the kernel's OOM killer: the cgroup's oom_kill count is non-zero)" : "")
            } else {
                result.verdictDetail = "the child exited with status \(exit.status ?? -1) and no readable measurement: \(result.exit.stderrTail ?? "")"
            }
            return result
        }
        let outcome = checker.evaluate(measurement, strategy: run.strategy)
        result.dtype = measurement.dtype
        result.verdict = outcome.verdict
        result.verdictDetail = outcome.detail
        result.checks = outcome.checks
        result.formula = measurement.formula
        result.figures = measurement.figures
        result.predictedPeakBytes = measurement.predictedPeakBytes
        result.upperBoundBytes = outcome.upperBoundBytes
        result.lowerBoundBytes = outcome.lowerBoundBytes
        result.toleranceBytes = outcome.toleranceBytes
        result.measurement = measurement
        result.seconds = measurement.seconds
        if let floor, floor.seconds > 0 { result.floorMultiple = measurement.seconds / floor.seconds }
        return result
    }

    /// Applies the scenario's cache mode to the shard files before a measured child starts.
    private func prepareCache(_ paths: [String]) throws {
        for path in paths {
            switch scenario.cache {
            case .cold:
                try PageCache.evict(path: path)
            case .warm:
                let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
                if (try? PageCache.residentBytes(path: path)) != size { try PageCache.warm(path: path) }
            }
        }
    }

    // MARK: - Results

    private func write(_ results: ScenarioResults) throws {
        let data = try JSONEncoder.results.encode(results)
        try AtomicFile.write([UInt8](data) + [0x0A], to: resultsPath, sync: false)
    }

    private func stop(_ results: inout ScenarioResults, reason: String) throws -> ScenarioResults {
        results.complete = false
        results.stoppedReason = reason
        results.finishedAt = Self.timestamp()
        try write(results)
        return results
    }

    private func scenarioInfo() -> ScenarioInfo {
        ScenarioInfo(
            name: scenario.name, description: scenario.description, file: scenario.file, modelType: scenario.config.modelType ?? "unknown",
            repeatCount: options.repeatCount ?? scenario.repeatCount, cache: scenario.cache.rawValue, toleranceRelative: scenario.tolerance.relative,
            toleranceAbsoluteBytes: scenario.tolerance.absoluteBytes, sampleIntervalSeconds: scenario.sampleIntervalMilliseconds / 1000,
            memoryLimitBytes: options.memoryLimit)
    }

    private func environmentInfo(_ system: SystemInfo) -> EnvironmentInfo {
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
            hostname: system.hostname, kernel: "\(system.kernelName) \(system.kernelRelease) \(system.machine)", cpuModel: system.cpuModel ?? "unknown",
            logicalCpus: system.logicalCores, memTotalBytes: system.memTotalBytes ?? 0, memAvailableBytes: system.memAvailableBytes ?? 0,
            swapTotalBytes: system.swapTotalBytes ?? 0, transparentHugePages: system.transparentHugePagesEnabled ?? "unknown",
            transparentHugePagesDefrag: system.transparentHugePagesDefrag ?? "unknown", pageSizeBytes: system.pageSize,
            allocator: "jemalloc \(config.version ?? "unknown")", mallocConf: Self.childMallocConf, jemallocOptions: options,
            childEnvironment: childEnvironment, cgroup: cgroup.map { "\($0.version.rawValue) \($0.cgroupPath)" }, cgroupMemoryLimitBytes: cgroupLimit)
    }

    /// 85% of the memory offered less the per-process overhead, but never under half of it (tiny simulated
    /// machines).
    public static func ledgerCap(memoryBytes: Int) -> Int {
        max(Int(Double(memoryBytes) * 0.85) - ScalePlanner.processOverheadBytes, memoryBytes / 2)
    }

    static func describe(_ request: Scenario.ScaleRequest) -> String {
        switch request {
        case .fit: return "fit"
        case .fixed(let value): return "\(value)"
        }
    }

    static func timestamp() -> String {
        ISO8601DateFormatter().string(from: Date())
    }

    static func tail(of path: String, lines: Int = 5) -> String? {
        guard let data = FileManager.default.contents(atPath: path), !data.isEmpty else { return nil }
        let text = String(decoding: data, as: UTF8.self).split(separator: "\n").filter { !$0.hasPrefix("phase\t") }
        return text.suffix(lines).joined(separator: "\n")
    }

    /// This tool's identity, recorded in every results file.
    public static func toolInfo() -> ToolInfo {
        #if DEBUG
        let configuration = "debug"
        #else
        let configuration = "release"
        #endif
        return ToolInfo(
            name: "bigmodel-bench", version: ToolVersion.version, gitCommit: ToolVersion.gitCommit(), swiftVersion: ToolVersion.swiftVersion,
            buildConfiguration: configuration)
    }
}

extension JSONEncoder {
    /// The results file's encoding: snake_case keys, sorted, pretty, no escaped slashes; byte-stable.
    public static var results: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}

extension JSONDecoder {
    public static var results: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return decoder
    }
}
