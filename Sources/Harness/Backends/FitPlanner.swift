import Checkpoint
import Foundation
import Loading
import Models
import OSLayer
import ResultsFormat
import StrictJSON
import TensorEngine

/// `fit`: every loading path's predicted full-size peak for a model, from its config, a scenario or a
/// checkpoint's headers — nothing is loaded or generated, so it answers at once.
///
/// - a config (`config.json`, or a folder holding only one): the model at full size in the config's dtype (or
///   `--dtype`'s), sharded as `save_pretrained` does by default (5 GB shards);
/// - a scenario: its runs at scale 1, each with its own dtype, placement and ranks;
/// - a checkpoint (folder, index or `.safetensors`): its headers as they are.
/// Without a scenario the paths are naive, sharded, low-memory and mmap at the stored dtype, and dtype-direct and
/// load-then-cast when `--dtype` asks for another; device-map is left out (what stays in RAM is what its budgets
/// say: `plan` answers that).
package struct FitPlanner {
    package struct Answer: Sendable {
        package let model: String
        package let modelBytes: Int
        /// The checkpoint's bytes at full size (its files as `save_pretrained` writes them): what a calibration's
        /// lines are in.
        package var checkpointBytes: Int
        package let estimates: [FitEstimate]
        package let notes: [String]
    }

    package let path: String
    package let dtype: DType?
    package let ranks: Int?
    package let memoryBytes: Int

    /// `save_pretrained`'s default `max_shard_size`.
    package static let defaultShardBytes = 5_000_000_000

    package init(path: String, dtype: DType?, ranks: Int?, memoryBytes: Int) {
        self.path = path
        self.dtype = dtype
        self.ranks = ranks
        self.memoryBytes = memoryBytes
    }

    package func answer() throws -> Answer {
        switch try Self.kind(of: path) {
        case .scenario: return try scenarioAnswer(try Scenario.load(path: path))
        case .config(let file): return try configAnswer(try ModelConfig.load(path: file), file: file)
        case .checkpoint: return try checkpointAnswer(try Checkpoint(path: path))
        }
    }

    enum Kind: Equatable {
        case scenario
        case config(String)
        case checkpoint
    }

    /// A `.json` file whose object has "model" and "runs" members is a scenario (a broken one then reports its
    /// own errors), any other `.json` a config; a folder with safetensors
    /// files or an index is a checkpoint, a folder with only `config.json` a config; anything else a checkpoint
    /// (whose opening says what is wrong with it).
    static func kind(of path: String) throws -> Kind {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return .checkpoint }
        if isDirectory.boolValue {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
            let hasWeights = names.contains { $0.hasSuffix(".safetensors") || $0 == ShardIndex.fileName }
            return !hasWeights && names.contains("config.json")
                ? .config((path as NSString).appendingPathComponent("config.json")) : .checkpoint
        }
        guard path.hasSuffix(".json"), !path.hasSuffix(ShardIndex.fileName) else { return .checkpoint }
        // Not JSON: the config reader says so, naming the file.
        let document = try? JSONParser().parse(try Checkpoint.readSmallFile(path, limit: 16 << 20))
        let scenarioLike = document?["model"] != nil && document?["runs"] != nil
        return scenarioLike ? .scenario : .config(path)
    }

    func scenarioAnswer(_ scenario: Scenario) throws -> Answer {
        let planner = ScalePlanner(scenario: scenario, hostAvailableBytes: memoryBytes)
        let predictions =
            try planner.synthetic(scale: 1) != nil
            ? planner.predictions(scale: 1) : planner.predictions(checkpoint: try existing(scenario))
        let estimates = predictions.map { p in
            FitEstimate(
                run: p.run.id, strategy: p.run.strategy, processPeakBytes: p.predictedPeakBytes,
                mappedBytes: p.figures.mappedBytes,
                ranks: ranks ?? p.run.ranks, tolerance: scenario.tolerance, memoryBytes: memoryBytes)
        }
        let modelBytes = predictions.first?.figures.modelBytes ?? 0
        let checkpointBytes = try planner.synthetic(scale: 1)?.plan.totalSize ?? existing(scenario).totalSize
        return Answer(
            model: "\(scenario.name) at scale 1", modelBytes: modelBytes, checkpointBytes: checkpointBytes,
            estimates: estimates + (try others(scenario)), notes: [])
    }

    /// The paths at the stored dtype a generated scenario does not run (mmap, say), so that every path is sized.
    func others(_ scenario: Scenario) throws -> [FitEstimate] {
        guard let synthetic = try ScalePlanner(scenario: scenario).synthetic(scale: 1) else { return [] }
        let figures = MemoryFigures(
            architecture: synthetic.architecture, storedDType: synthetic.dtype, shardPlan: synthetic.plan,
            target: synthetic.dtype)
        let run = Set(scenario.runs.map(\.strategy))
        return Self.storedPaths.filter { !run.contains($0) }.map { estimate($0, figures, target: synthetic.dtype) }
    }

    func existing(_ scenario: Scenario) throws -> Checkpoint {
        guard case .existing(let folder) = scenario.checkpoint else {
            throw UsageError("\(scenario.file): the scenario has no checkpoint to size")
        }
        return try Checkpoint(path: folder)
    }

    func configAnswer(_ config: ModelConfig, file: String) throws -> Answer {
        guard let stored = try config.dtype() ?? dtype else {
            throw UsageError("\(file) names no dtype (torch_dtype or dtype); give --dtype")
        }
        let synthetic = try SyntheticCheckpoint(
            config: config, dtype: stored, maxShardSize: Self.defaultShardBytes, seed: 0, scale: 1)
        let atStored = MemoryFigures(
            architecture: synthetic.architecture, storedDType: stored, shardPlan: synthetic.plan, target: stored)
        let (estimates, notes) = try paths(atStored: atStored, stored: stored) { target in
            MemoryFigures(
                architecture: synthetic.architecture, storedDType: stored, shardPlan: synthetic.plan, target: target)
        }
        let name = "\(config.modelType ?? "model") (\(file)) in \(stored.torchName), 5 GB shards"
        return Answer(
            model: name, modelBytes: atStored.modelBytes, checkpointBytes: synthetic.plan.totalSize,
            estimates: estimates, notes: notes)
    }

    func checkpointAnswer(_ checkpoint: Checkpoint) throws -> Answer {
        let stored = try LoadPlan(checkpoint: checkpoint, requested: nil)
        let (estimates, notes) = try paths(atStored: stored.figures, stored: stored.dtype) { target in
            try LoadPlan(checkpoint: checkpoint, requested: target).figures
        }
        return Answer(
            model: "\(checkpoint.files.count)-file checkpoint \(path) in \(stored.dtype.torchName)",
            modelBytes: stored.figures.modelBytes, checkpointBytes: checkpoint.totalSize, estimates: estimates,
            notes: notes)
    }

    /// The paths that load the stored dtype as it is, for a config or a checkpoint without a scenario.
    static let storedPaths: [StrategyName] = [.naive, .sharded, .lowMemory, .mmap]

    /// Every path without a scenario, least need first: ``storedPaths`` at the stored dtype, and dtype-direct and
    /// load-then-cast at `--dtype` (the figures `cast` gives) when it asks for another.
    func paths(atStored: MemoryFigures, stored: DType, cast: (DType) throws -> MemoryFigures) throws -> (
        [FitEstimate], [String]
    ) {
        var estimates = Self.storedPaths.map { estimate($0, atStored, target: stored) }
        var notes = [
            "device-map is left out: what stays in RAM is what its budgets say (`bigmodel-bench plan --max-memory …`)"
        ]
        if let dtype, dtype != stored {
            let figures = try cast(dtype)
            estimates += [StrategyName.dtypeDirect, .loadThenCast].map { estimate($0, figures, target: dtype) }
        } else {
            notes.append("dtype-direct and load-then-cast: give --dtype other than the stored \(stored.torchName)")
        }
        return (estimates.sorted { $0.needBytes < $1.needBytes }, notes)
    }

    func estimate(_ strategy: StrategyName, _ figures: MemoryFigures, target: DType) -> FitEstimate {
        let peak = strategy.strategy.predictedPeakBytes(figures)
        let label =
            strategy == .dtypeDirect || strategy == .loadThenCast
            ? "\(strategy.rawValue) → \(target.torchName)" : strategy.rawValue
        return FitEstimate(
            run: label, strategy: strategy, processPeakBytes: peak, mappedBytes: figures.mappedBytes, ranks: ranks ?? 1,
            tolerance: .default, memoryBytes: memoryBytes)
    }
}
