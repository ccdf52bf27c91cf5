import Checkpoint
import TensorEngine

/// `load_sharded_checkpoint`: build the model with random init, then one shard at a time read it, copy it
/// in and free it. Peak M_t + S, S being the largest shard's tensor bytes.
package struct ShardedLoad: LoadStrategy {
    package var name: StrategyName { .sharded }
    package var formula: String { "M_t + S" }

    package func predictedPeakBytes(_ f: MemoryFigures) -> Int { f.modelBytes + f.largestShardBytes }

    package func load(_ plan: LoadPlan, ledger: MemoryLedger, phases: PhaseLog) throws -> LoadedModel {
        let model = try initializedModel(plan, ledger: ledger, phases: phases)
        let checkpoint = plan.checkpoint
        let count = checkpoint.files.count
        for fileIndex in 0..<count {
            phases.begin("read shard \(fileIndex + 1)/\(count)")
            let locations = checkpoint.tensors.values.filter { $0.fileIndex == fileIndex }
            var stateDict = try readStateDict(locations, from: checkpoint, ledger: ledger)
            phases.begin(copyPhaseName(plan, suffix: " shard \(fileIndex + 1)/\(count)"))
            copyStateDict(stateDict, into: model, plan)
            withExtendedLifetime(stateDict) {}  // freed here, not earlier (phase boundaries show the real memory)
            stateDict.removeAll()
        }
        phases.end()
        return LoadedModel(tensors: model)
    }
}
