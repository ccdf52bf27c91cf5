import Checkpoint
import Foundation
import Models
import OSLayer
import ResultsFormat
import TensorEngine

/// Everything decided before the first child starts: the scale, the checkpoint on disk (generated, reused
/// from the cache, or the user's), and each run's prediction at that scale and at full size.
package struct PreparedScenario: Sendable {
    package let scale: ScaleInfo
    package let checkpoint: CheckpointInfo
    package let folder: String
    package let shardPaths: [String]
    package let fullSize: [Prediction]
    /// By run id: the prediction at the chosen scale (device-map runs: with their placement request).
    package let atScale: [String: ScalePlanner.RunPrediction]
}

/// Chooses the scale, makes or finds the checkpoint, and predicts every run (the first box of `run`).
package struct CheckpointPreparation {
    package let scenario: Scenario
    /// `--scale`, overriding the scenario's.
    package let scaleOverride: Scenario.ScaleRequest?
    /// What the machine offers (MemAvailable, or `--memory-limit` when smaller).
    package let memoryBytes: Int
    package let hostAvailableBytes: Int
    package let diskFreeBytes: Int?
    package let cache: CheckpointCache
    package let workDirectory: String

    package init(
        scenario: Scenario, scaleOverride: Scenario.ScaleRequest?, memoryBytes: Int, hostAvailableBytes: Int,
        diskFreeBytes: Int?, workDirectory: String
    ) {
        self.scenario = scenario
        self.scaleOverride = scaleOverride
        self.memoryBytes = memoryBytes
        self.hostAvailableBytes = hostAvailableBytes
        self.diskFreeBytes = diskFreeBytes
        self.cache = CheckpointCache(workDirectory: workDirectory)
        self.workDirectory = workDirectory
    }

    var planner: ScalePlanner { ScalePlanner(scenario: scenario, hostAvailableBytes: hostAvailableBytes) }

    /// Runs the preparation; `progress` sees generation as it goes, `note` one line per decision. `share`, when
    /// given, decides whose choice of scale counts (the ranks of one job must all load the same checkpoint).
    package func prepare(
        progress: @escaping (Int, Int) -> Void, note: (String) -> Void,
        share: ((() throws -> ScaleInfo) throws -> ScaleInfo)? = nil
    ) throws -> PreparedScenario {
        let scale = try share.map { try $0(chooseScale) } ?? chooseScale()
        note("scale \(scale.chosen): \(scale.reason)")
        let (folder, info) = try makeCheckpoint(scale: scale.chosen, progress: progress, note: note)
        let checkpoint = try Checkpoint(path: folder)
        let fullSize: [Prediction]
        let atScale: [ScalePlanner.RunPrediction]
        if case .generated = scenario.checkpoint {
            fullSize = try planner.predictions(scale: 1).map {
                Prediction(
                    run: $0.run.id, strategy: $0.run.strategy, formula: $0.formula, figures: $0.figures,
                    predictedPeakBytes: $0.predictedPeakBytes)
            }
            atScale = try planner.predictions(scale: scale.chosen)
        } else {
            fullSize = []
            atScale = try planner.predictions(checkpoint: checkpoint)
        }
        return PreparedScenario(
            scale: scale, checkpoint: info, folder: folder, shardPaths: checkpoint.files.map(\.path),
            fullSize: fullSize,
            atScale: Dictionary(uniqueKeysWithValues: atScale.map { ($0.run.id, $0) }))
    }

    func chooseScale() throws -> ScaleInfo {
        let request = scaleOverride ?? scenario.scale
        let budget = Int(Double(memoryBytes) * ScalePlanner.safeShare)
        func info(_ chosen: Double, _ reason: String, budget: Int) -> ScaleInfo {
            ScaleInfo(
                requested: Self.describe(request), chosen: chosen, reason: reason, memoryBudgetBytes: budget,
                safeShare: ScalePlanner.safeShare,
                diskFreeBytes: diskFreeBytes)
        }
        switch (request, scenario.checkpoint) {
        case (_, .existing):
            return info(1, "an existing checkpoint is loaded as it is", budget: memoryBytes)
        case (.fixed(let value), .generated):
            return info(value, "fixed by \(scaleOverride == nil ? "the scenario" : "--scale")", budget: budget)
        case (.fit, .generated):
            let cached = Set(
                try ScalePlanner.grid.filter { candidate in
                    guard let synthetic = try planner.synthetic(scale: candidate) else { return false }
                    return FileManager.default.fileExists(atPath: cache.folder(for: synthetic, scenario: scenario.name))
                })
            let fit = try planner.fit(memoryBytes: memoryBytes, diskFreeBytes: diskFreeBytes, cachedScales: cached)
            return info(fit.scale, fit.reason, budget: budget)
        }
    }

    func makeCheckpoint(scale: Double, progress: @escaping (Int, Int) -> Void, note: (String) -> Void) throws -> (
        String, CheckpointInfo
    ) {
        switch scenario.checkpoint {
        case .existing(let path):
            let checkpoint = try Checkpoint(path: path)
            return (
                path,
                CheckpointInfo(
                    path: path, generated: false, reused: true, dtype: nil, maxShardSizeBytes: nil, seed: nil,
                    files: checkpoint.files.count,
                    totalSizeBytes: checkpoint.totalSize, largestShardBytes: checkpoint.largestShardBytes,
                    generationSeconds: nil)
            )
        case .generated(let dtype, _, let seed):
            guard let synthetic = try planner.synthetic(scale: scale) else {
                preconditionFailure("generated scenario without a synthetic checkpoint")
            }
            let total = synthetic.plan.totalSize
            if !cache.isCached(synthetic, scenario: scenario.name), let free = diskFreeBytes, free < total + (1 << 30) {
                throw FileIOError(
                    path: workDirectory, operation: "generate checkpoint",
                    reason:
                        "needs \(ByteSize.decimal(total)) plus 1 GiB of headroom but \(ByteSize.decimal(free)) are free; use --scale or --work-dir"
                )
            }
            let made = try cache.checkpoint(
                for: synthetic, scenario: scenario.name, progress: { progress($0, total) },
                isCancelled: { SignalTrap.interrupted })
            let checkpoint = try Checkpoint(path: made.folder)
            note(
                made.reused
                    ? "checkpoint reused: \(made.folder)"
                    : "checkpoint generated in \(ByteSize.fixed(made.seconds ?? 0, digits: 1)) s: \(made.folder)")
            return (
                made.folder,
                CheckpointInfo(
                    path: made.folder, generated: true, reused: made.reused, dtype: dtype.torchName,
                    maxShardSizeBytes: synthetic.maxShardSize, seed: seed,
                    files: checkpoint.files.count, totalSizeBytes: checkpoint.totalSize,
                    largestShardBytes: checkpoint.largestShardBytes,
                    generationSeconds: made.seconds)
            )
        }
    }

    static func describe(_ request: Scenario.ScaleRequest) -> String {
        switch request {
        case .fit: return "fit"
        case .fixed(let value): return "\(value)"
        }
    }
}
