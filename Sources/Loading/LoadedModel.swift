import Checkpoint
import Models
import OrderedCollections
import TensorEngine

/// A model in memory: every parameter by name, tied aliases sharing their target's storage.
package struct LoadedModel: Sendable {
    /// Parameters in model order, then aliases.
    package var tensors: OrderedDictionary<String, Tensor>

    package init(tensors: OrderedDictionary<String, Tensor>) {
        self.tensors = tensors
    }

    /// Bytes held as read-only views of the checkpoint's files (each storage once; disk offload excluded).
    package var mappedBytes: Int {
        var seen = Set<ObjectIdentifier>()
        return tensors.values.reduce(0) { total, tensor in
            guard tensor.storage.kind == .fileWindow, tensor.storage.device != .disk,
                seen.insert(ObjectIdentifier(tensor.storage)).inserted
            else { return total }
            return total + tensor.byteCount
        }
    }

    /// SHA-256 of every tensor's bytes (aliases included), in model order.
    package func digests() -> [(name: String, dtype: DType, shape: [Int], sha256: String)] {
        tensors.map { (name: $0.key, dtype: $0.value.dtype, shape: $0.value.shape, sha256: $0.value.sha256()) }
    }
}

/// Materialises parameters: allocates them in the ledger and writes their initial values the way a freshly
/// constructed transformers model does (normal weights, constant norms, zero biases).
final class ModelInitializer {
    let plan: LoadPlan
    let ledger: MemoryLedger
    /// Seed for the random init: fixed, so repeated runs do identical work.
    static let seed: UInt64 = 0x5EED
    private var sources: [DType: SyntheticSource] = [:]

    init(plan: LoadPlan, ledger: MemoryLedger) {
        self.plan = plan
        self.ledger = ledger
    }

    /// Allocates and initialises one parameter (every byte written).
    func materialize(_ parameter: LoadPlan.Parameter) throws -> Tensor {
        let tensor = try Tensor.empty(dtype: parameter.dtype, shape: parameter.shape, ledger: ledger)
        try initialize(parameter, into: tensor)
        return tensor
    }

    /// Writes a parameter's initial values into `tensor`.
    func initialize(_ parameter: LoadPlan.Parameter, into tensor: Tensor) throws {
        let destination = tensor.storage.mutableBytes
        guard !destination.isEmpty else { return }
        guard parameter.dtype.isConvertible else {
            // Integer / bool / exotic parameters (checkpoint-derived architectures only) start at zero.
            destination.initializeMemory(as: UInt8.self, repeating: 0)
            return
        }
        let spec = TensorSpec(name: parameter.name, dtype: parameter.dtype, shape: parameter.shape)
        try source(for: parameter.dtype).fill(spec, byteOffset: 0, into: destination)
    }

    private func source(for dtype: DType) -> SyntheticSource {
        if let cached = sources[dtype] { return cached }
        let made = SyntheticSource(
            parameters: plan.parameters.map {
                ParameterSpec(name: $0.name, shape: $0.shape, initialization: $0.initialization)
            },
            initializerRange: plan.architecture.initializerRange, dtype: dtype, seed: Self.seed)
        sources[dtype] = made
        return made
    }
}
