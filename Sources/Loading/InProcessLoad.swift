import Checkpoint
import TensorEngine

/// One load in this process, the one that `load`, the measured child (`measure-run`) and `bench load` run: the
/// plan, the strategy (a device-map run placed before anything is loaded, so its prediction is exact per device),
/// the ledger and the phase log, then the model and, for device-map, what each device holds.
package struct InProcessLoad {
    package let plan: LoadPlan
    /// The strategy as it loads: a device-map run's prepared placement, else the strategy given.
    package let strategy: any LoadStrategy
    /// device-map runs: the placement and its prediction.
    package let prepared: PreparedDeviceMapLoad?
    package let ledger: MemoryLedger
    package let phases: PhaseLog

    /// What the load gave.
    package struct Loaded {
        package var model: LoadedModel
        /// device-map runs: each device's budget, prediction, ledger figures and offload.
        package var placement: DevicePlacementReport?
    }

    /// Plans the load of `checkpoint` into `dtype` (nil: auto), checks the plan (`load --strict`) and, for
    /// device-map, places the model.
    package init(
        checkpoint: Checkpoint, dtype: DType?, strategy: any LoadStrategy, ledger: MemoryLedger = MemoryLedger(),
        phases: PhaseLog? = nil, checkingPlan check: (LoadPlan) throws -> Void = { _ in }
    ) throws {
        plan = try LoadPlan(checkpoint: checkpoint, requested: dtype)
        try check(plan)
        prepared = try (strategy as? DeviceMapLoad)?.prepare(plan)
        self.strategy = prepared ?? strategy
        self.ledger = ledger
        self.phases = phases ?? PhaseLog(ledger: ledger)
    }

    /// The strategy's predicted peak for this plan (device-map: the placement's RAM-resident peak).
    package var predictedPeakBytes: Int { strategy.predictedPeakBytes(plan.figures) }

    /// Loads. Throws what the strategy throws (out of memory, I/O); the caller decides what a failure is.
    package func run() throws -> Loaded {
        if let prepared {
            let result = try prepared.loadReporting(plan, ledger: ledger, phases: phases)
            return Loaded(model: result.model, placement: result.report)
        }
        return Loaded(model: try strategy.load(plan, ledger: ledger, phases: phases), placement: nil)
    }
}
