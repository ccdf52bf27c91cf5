import Checkpoint
import TensorEngine

/// The naive path: build the model with random init, read the whole state dict, copy it in, free it.
/// Two copies of the model at once: peak M_t + M_ck.
package struct NaiveLoad: LoadStrategy {
    package var name: StrategyName { .naive }
    package var formula: String { "M_t + M_ck" }

    package func predictedPeakBytes(_ f: MemoryFigures) -> Int { f.modelBytes + f.checkpointBytes }

    package func load(_ plan: LoadPlan, ledger: MemoryLedger, phases: PhaseLog) throws -> LoadedModel {
        let model = try initializedModel(plan, ledger: ledger, phases: phases)
        phases.begin("read checkpoint")
        var stateDict = try readStateDict(Array(plan.checkpoint.tensors.values), from: plan.checkpoint, ledger: ledger)
        phases.begin(copyPhaseName(plan))
        copyStateDict(stateDict, into: model, plan)
        // The optimizer may end a value's lifetime after its last use: pin the state dict until the free phase
        // has begun, so phase boundaries show the memory where it really is.
        withExtendedLifetime(stateDict) { phases.begin("free state dict") }
        stateDict.removeAll()
        phases.end()
        return LoadedModel(tensors: model)
    }
}
