import Checkpoint
import Foundation
import OrderedCollections
import Synchronization
import TensorEngine

/// The low-memory path (`low_cpu_mem_usage=True`, a meta-device skeleton) and its dtype-direct variant
/// (`torch_dtype=float16`): no parameter exists until its turn; then it is allocated at its final dtype and
/// read straight into place with `pread`. Weights that are loaded are never initialised. A tensor stored in
/// another dtype streams through one bounded staging buffer. Peak M_t (+ staging when anything converts).
///
/// The two names share this implementation: `dtype-direct` is the same path with an explicit target dtype.
package struct SkeletonLoad: LoadStrategy {
    package let name: StrategyName
    package var formula: String { "M_t + staging" }

    package init(name: StrategyName) {
        self.name = name
    }

    package func predictedPeakBytes(_ f: MemoryFigures) -> Int { f.modelBytes + f.stagingBytes }

    package func load(_ plan: LoadPlan, ledger: MemoryLedger, phases: PhaseLog) throws -> LoadedModel {
        phases.begin("skeleton")
        // The meta model: shapes and dtypes, no bytes.
        var model = OrderedDictionary<String, Tensor>()
        for parameter in plan.parameters {
            model[parameter.name] = Tensor.meta(dtype: parameter.dtype, shape: parameter.shape)
        }
        let stagingBytes = plan.figures.stagingBytes
        let staging: TensorStorage? =
            stagingBytes > 0 ? try TensorStorage.allocate(byteCount: stagingBytes, ledger: ledger) : nil

        let checkpoint = plan.checkpoint
        let byFile = Dictionary(grouping: plan.parameters.filter { $0.source != nil }) { $0.source?.fileIndex ?? -1 }
        for fileIndex in 0..<checkpoint.files.count {
            phases.begin("load shard \(fileIndex + 1)/\(checkpoint.files.count)")
            let file = checkpoint.files[fileIndex]
            // Data order within the file: sequential reads.
            let parameters = (byFile[fileIndex] ?? []).sorted {
                ($0.source?.tensor.begin ?? 0) < ($1.source?.tensor.begin ?? 0)
            }
            // Every tensor of the shard allocated, then read as one stream (ShardStream): the ledger reaches
            // the same peak, M_t + staging, at the end of the last shard.
            var items: [ShardStream.Item] = []
            for parameter in parameters {
                guard let stored = parameter.source?.tensor else { continue }
                let tensor = try Tensor.empty(dtype: parameter.dtype, shape: parameter.shape, ledger: ledger)
                items.append(ShardStream.Item(stored: stored, tensor: tensor))
                model[parameter.name] = tensor
            }
            try ShardStream.load(items, from: file, staging: staging?.mutableBytes)
        }
        if !plan.missingKeys.isEmpty {
            phases.begin("materialize missing")
            let initializer = ModelInitializer(plan: plan, ledger: ledger)
            for parameter in plan.parameters where parameter.source == nil {
                model[parameter.name] = try initializer.materialize(parameter)
            }
        }
        tie(&model, plan)
        phases.end()
        withExtendedLifetime(staging) {}
        return LoadedModel(tensors: model)
    }
}
