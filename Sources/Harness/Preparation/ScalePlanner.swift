import Checkpoint
import Loading
import Models
import Placement
import ResultsFormat
import TensorEngine

/// Predicts every run of a scenario at a given scale, and picks the scale `"fit"` asks for.
///
/// The fit is the largest scale on a fixed grid (1, 0.99, …, 0.01, then 0.009 … 0.001) at which every run's
/// upper bound (predicted peak plus tolerance) fits in `safeShare` of the memory the machine offers
/// (MemAvailable, or `--memory-limit` when smaller), and the checkpoint fits on the free disk. A grid rather
/// than a continuous search, so that the same machine picks the same scale run after run and the cached
/// checkpoint is reused.
package struct ScalePlanner: Sendable {
    /// The share of available memory a run may plan to use: the rest is for the page cache holding the
    /// checkpoint (warm runs), the harness, and the kernel.
    package static let safeShare = 0.6
    /// Per-process overhead a child has before its load starts (runtime, jemalloc, sampler).
    package static let processOverheadBytes = 96 << 20

    package struct RunPrediction: Sendable {
        package let run: Scenario.Run
        package let dtype: DType
        package let figures: MemoryFigures
        package let predictedPeakBytes: Int
        package let formula: String
        /// device-map runs: the placement request with percentages resolved for this model size (for a loader
        /// outside this tool, without the simulated accelerators: only cpu and disk exist for it), and the
        /// `hf_device_map` it gives.
        package let request: PlacementRequest?
        package var deviceMap: [DeviceUsage.MapEntry]? = nil
    }

    package let scenario: Scenario
    /// The cpu budget of device-map runs that give no `max_memory` (accelerate uses the RAM available).
    package let hostAvailableBytes: Int?

    package init(scenario: Scenario, hostAvailableBytes: Int? = nil) {
        self.scenario = scenario
        self.hostAvailableBytes = hostAvailableBytes
    }

    /// The synthetic checkpoint a generated scenario uses at `scale`.
    package func synthetic(scale: Double) throws -> SyntheticCheckpoint? {
        guard case .generated(let dtype, let maxShardSize, let seed) = scenario.checkpoint else { return nil }
        return try SyntheticCheckpoint(
            config: scenario.config, dtype: dtype, maxShardSize: maxShardSize, seed: seed, scale: scale,
            scaling: scenario.resolvedScaling)
    }

    /// Every run's prediction at `scale`, computed from the model and the shard plan alone.
    package func predictions(scale: Double) throws -> [RunPrediction] {
        guard let synthetic = try synthetic(scale: scale) else { return [] }
        let shardPlan = synthetic.plan
        return try scenario.runs.map { run in
            let target = run.dtype ?? synthetic.dtype
            let figures = MemoryFigures(
                architecture: synthetic.architecture, storedDType: synthetic.dtype, shardPlan: shardPlan, target: target
            )
            let strategy = run.strategy.strategy
            guard let settings = run.placement else {
                return RunPrediction(
                    run: run, dtype: target, figures: figures, predictedPeakBytes: strategy.predictedPeakBytes(figures),
                    formula: strategy.formula,
                    request: nil)
            }
            let request = try Self.request(
                settings, run: run, modelBytes: figures.modelBytes, hostAvailableBytes: hostAvailableBytes)
            let placement = try request.place(architecture: synthetic.architecture, dtype: target)
            let prediction = try DeviceMapPrediction(
                placement: placement, architecture: synthetic.architecture, storedDType: synthetic.dtype, target: target
            )
            return RunPrediction(
                run: run, dtype: target, figures: figures, predictedPeakBytes: prediction.ramPeakBytes,
                formula: strategy.formula, request: request,
                deviceMap: placement.deviceMap.map { DeviceUsage.MapEntry(module: $0.key, device: $0.value) })
        }
    }

    /// Every run's prediction for a checkpoint on disk.
    package func predictions(checkpoint: Checkpoint) throws -> [RunPrediction] {
        try scenario.runs.map { run in
            let plan = try LoadPlan(checkpoint: checkpoint, requested: run.dtype)
            let strategy = run.strategy.strategy
            let figures = plan.figures
            guard let settings = run.placement else {
                return RunPrediction(
                    run: run, dtype: plan.dtype, figures: figures,
                    predictedPeakBytes: strategy.predictedPeakBytes(figures), formula: strategy.formula,
                    request: nil)
            }
            let request = try Self.request(
                settings, run: run, modelBytes: figures.modelBytes, hostAvailableBytes: hostAvailableBytes)
            let (placement, prediction) = try DeviceMapLoad(request: request).predict(plan)
            return RunPrediction(
                run: run, dtype: plan.dtype, figures: figures, predictedPeakBytes: prediction.ramPeakBytes,
                formula: strategy.formula,
                request: request,
                deviceMap: placement.deviceMap.map { DeviceUsage.MapEntry(module: $0.key, device: $0.value) })
        }
    }

    /// A device-map run's request; a loader outside this tool has no simulated accelerator, so for it only the
    /// cpu and disk budgets remain.
    static func request(_ settings: PlacementSettings, run: Scenario.Run, modelBytes: Int, hostAvailableBytes: Int?)
        throws -> PlacementRequest
    {
        let request = try settings.request(modelBytes: modelBytes, hostAvailableBytes: hostAvailableBytes)
        return run.subject.isEngine ? request : request.withoutAccelerators
    }

    /// What a run may take of the machine at most: its ranks' upper bounds together (for mmap, the mapped
    /// checkpoint once, in the page cache, plus each rank's owned bytes).
    package func machineBound(_ p: RunPrediction) -> Int {
        let tolerance = scenario.tolerance(for: p.run)
        let n = p.run.ranks
        guard p.run.strategy == .mmap, let mapped = p.figures.mappedBytes else {
            return n * (p.predictedPeakBytes + tolerance.bytes(for: p.predictedPeakBytes))
        }
        return mapped + tolerance.bytes(for: mapped) + n
            * (p.predictedPeakBytes + tolerance.bytes(for: p.predictedPeakBytes))
    }

    /// The candidate scales, largest first.
    package static let grid: [Double] =
        (1...100).reversed().map { Double($0) / 100 } + (1...9).reversed().map { Double($0) / 1000 }

    /// Chooses the scale for a generated scenario. `memoryBytes` is what the machine offers (MemAvailable or
    /// the simulated limit); `diskFreeBytes` the space where the checkpoint goes (nil: not checked);
    /// `cachedScales` scales whose checkpoint already exists (they need no disk).
    package func fit(memoryBytes: Int, diskFreeBytes: Int?, cachedScales: Set<Double> = []) throws -> (
        scale: Double, reason: String
    ) {
        let budget =
            Int(Double(memoryBytes) * Self.safeShare) - Self.processOverheadBytes
            * (scenario.runs.map(\.ranks).max() ?? 1)
        for scale in Self.grid {
            let predictions = try predictions(scale: scale)
            let worst = predictions.map(machineBound).max() ?? 0
            guard worst <= budget else { continue }
            if let diskFreeBytes, !cachedScales.contains(scale), let synthetic = try synthetic(scale: scale) {
                let need = synthetic.plan.totalSize + (1 << 30)
                guard need <= diskFreeBytes else { continue }
            }
            let largest = predictions.max { machineBound($0) < machineBound($1) }
            let reason =
                scale == 1
                ? "every run fits at full size: the largest upper bound (\(largest?.run.id ?? "-"), \(ByteSize.binary(worst))) is within \(ByteSize.binary(budget)) (\(Int(Self.safeShare * 100))% of \(ByteSize.binary(memoryBytes)) available, less \(ByteSize.binary(Self.processOverheadBytes)) per-process overhead)"
                : "largest scale on the grid at which every run's upper bound fits in \(ByteSize.binary(budget)) (\(Int(Self.safeShare * 100))% of \(ByteSize.binary(memoryBytes)) available, less \(ByteSize.binary(Self.processOverheadBytes)) per-process overhead); the largest, \(largest?.run.id ?? "-"), needs up to \(ByteSize.binary(worst))"
            return (scale, reason)
        }
        let smallest = Self.grid.last ?? 0.001
        return (
            smallest,
            "nothing fits even at scale \(smallest); runs whose prediction exceeds the machine will be capped and reported as oom"
        )
    }
}
