import Checkpoint
import OrderedCollections
import TensorEngine

/// The float32 default, then a cast: the model is built in float32 (transformers' default dtype), the
/// weights are loaded and upcast into it, and the model is then cast parameter by parameter to the target
/// (`model.to(torch.float16)`). Peak M_32 + T_t.
///
/// Loaded weights skip random init (`_fast_init`); a stored tensor already in float32 is read into place
/// with `pread`, others are converted from a read-only mapping of the file (as transformers reads from the
/// mmap'd safetensors file), which costs file pages, not owned memory. The cast goes largest parameter
/// first: each step holds the whole model plus one new tensor, so the first step is the peak, M_32 + T_t.
/// With a float32 target the cast is a no-op and the peak is M_32.
package struct LoadThenCast: LoadStrategy {
    package var name: StrategyName { .loadThenCast }
    package var formula: String { "M_32 + T_t" }

    package init() {}

    /// The order parameters are cast in: largest target size first, ties in model order.
    static func castOrder(_ plan: LoadPlan) -> [LoadPlan.Parameter] {
        plan.parameters.enumerated()
            .filter { $0.element.dtype.isConvertible && $0.element.dtype != .f32 }
            .sorted { ($0.element.byteCount, -$0.offset) > ($1.element.byteCount, -$1.offset) }
            .map(\.element)
    }

    /// Simulated over the cast order (see `MemoryFigures`): M_32 + T_t for targets narrower than float32.
    package func predictedPeakBytes(_ f: MemoryFigures) -> Int { f.loadThenCastPeakBytes }

    package func load(_ plan: LoadPlan, ledger: MemoryLedger, phases: PhaseLog) throws -> LoadedModel {
        phases.begin("init float32")
        let initializer = ModelInitializer(plan: plan, ledger: ledger)
        var model = OrderedDictionary<String, Tensor>()
        let float32 = plan.parameters.map { p in
            LoadPlan.Parameter(
                name: p.name, shape: p.shape, dtype: p.dtype.isConvertible ? .f32 : p.dtype,
                initialization: p.initialization, source: p.source)
        }
        for parameter in float32 {
            model[parameter.name] =
                parameter.source == nil
                ? try initializer.materialize(parameter)
                : try Tensor.empty(dtype: parameter.dtype, shape: parameter.shape, ledger: ledger)
        }
        let checkpoint = plan.checkpoint
        for fileIndex in 0..<checkpoint.files.count {
            phases.begin("load shard \(fileIndex + 1)/\(checkpoint.files.count)")
            let file = checkpoint.files[fileIndex]
            for parameter in float32 where parameter.source?.fileIndex == fileIndex {
                guard let stored = parameter.source?.tensor, let tensor = model[parameter.name] else { continue }
                if stored.dtype == tensor.dtype {
                    try file.read(stored, into: tensor.storage.mutableBytes)
                } else {
                    let window = try file.map(stored, populate: true)
                    copyOrConvert(window.bytes, from: stored.dtype, into: tensor)
                    try file.checkIntact(window, of: stored)
                }
            }
        }
        let order = Self.castOrder(plan)
        if !order.isEmpty {
            phases.begin("cast to \(plan.dtype.torchName)")
            for parameter in order {
                guard let wide = model[parameter.name] else { continue }
                let narrow = try Tensor.empty(dtype: parameter.dtype, shape: parameter.shape, ledger: ledger)
                copyOrConvert(wide.storage.bytes, from: wide.dtype, into: narrow)
                model[parameter.name] = narrow  // the float32 tensor's last reference goes: freed now
            }
        }
        tie(&model, plan)
        phases.end()
        return LoadedModel(tensors: model)
    }
}
