import Checkpoint
import OrderedCollections
import TensorEngine

/// How a freshly built model initialises a parameter (transformers' `_init_weights` for these families).
package enum ParameterInit: Sendable, Hashable {
    /// `normal_(0, std)`; `zeroRow` is the embedding's `padding_idx`, zeroed afterwards.
    case normal(std: Double, zeroRow: Int?)
    /// `fill_(value)`: RMSNorm weights (1.0, or 0.0 for Gemma, which stores weight − 1).
    case constant(Double)
    /// Linear biases.
    case zeros
}

/// One entry of the state dict a model registers.
package struct ParameterSpec: Sendable, Hashable {
    package let name: String
    package let shape: [Int]
    package let initialization: ParameterInit

    package var elementCount: Int { TensorEngine.elementCount(of: shape) ?? 0 }

    package init(name: String, shape: [Int], initialization: ParameterInit) {
        self.name = name
        self.shape = shape
        self.initialization = initialization
    }
}

/// The parameter table and module tree of a model, as transformers registers them.
///
/// `parameters` is the state dict `save_pretrained` writes, in registration order and without tied aliases
/// (Gemma's `lm_head.weight` is `model.embed_tokens.weight`, stored once); `tiedAliases` maps each alias to
/// the stored name it shares storage with.
package struct ModelArchitecture: Sendable {
    /// `model_type` ("llama", "mistral", "gemma", "qwen2"), or "checkpoint" for a table read from the files.
    package let modelType: String
    /// The top-level class (`LlamaForCausalLM`).
    package let className: String
    package let parameters: [ParameterSpec]
    package let tiedAliases: OrderedDictionary<String, String>
    package let root: ModuleNode
    /// Classes accelerate must not split across devices (`_no_split_modules`).
    package let noSplitClasses: [String]
    /// The initializer's standard deviation (`initializer_range`).
    package let initializerRange: Double

    /// The families whose parameter table this tool knows.
    package static let knownModelTypes = ["llama", "mistral", "gemma", "qwen2"]

    package init(
        modelType: String, className: String, parameters: [ParameterSpec],
        tiedAliases: OrderedDictionary<String, String>,
        root: ModuleNode, noSplitClasses: [String], initializerRange: Double
    ) {
        self.modelType = modelType
        self.className = className
        self.parameters = parameters
        self.tiedAliases = tiedAliases
        self.root = root
        self.noSplitClasses = noSplitClasses
        self.initializerRange = initializerRange
    }

    /// Builds the architecture a config describes; nil when its `model_type` is not a known family
    /// (callers then fall back to `fromCheckpoint`). A known family with a missing or bad field throws,
    /// naming the field.
    package static func fromConfig(_ config: ModelConfig) throws -> ModelArchitecture? {
        guard let type = config.modelType, knownModelTypes.contains(type) else { return nil }
        let architecture = try LlamaFamily.build(config: config, modelType: type)
        try architecture.checkSize(config: config)
        return architecture
    }

    /// The most bytes a model may have at float64: every size derived from it (bytes at any dtype, bits for
    /// accelerate's module sizes, sums over shards and ranks) then stays far inside `Int`.
    package static let maximumFloat64Bytes = Int.max >> 8

    /// Refuses a config whose sizes overflow: each tensor's elements, and all of them at float64, must fit
    /// under ``maximumFloat64Bytes`` (a `hidden_size` of 2^32 gives a 2^64-element embedding). Checked once here,
    /// so that every later size is plain arithmetic that cannot trap.
    func checkSize(config: ModelConfig) throws(ModelConfigError) {
        var total = 0
        for parameter in parameters {
            guard let elements = TensorEngine.elementCount(of: parameter.shape),
                elements <= Self.maximumFloat64Bytes / 8
            else {
                throw ModelConfigError(
                    path: config.path, field: nil,
                    "tensor \(parameter.name) of shape \(parameter.shape) has more elements than this tool can size (the config's dimensions are too large)"
                )
            }
            let (sum, overflow) = total.addingReportingOverflow(elements * 8)
            guard !overflow, sum <= Self.maximumFloat64Bytes else {
                throw ModelConfigError(
                    path: config.path, field: nil,
                    "the model's tensors total more than \(Self.maximumFloat64Bytes) bytes at float64 (the config's dimensions are too large)"
                )
            }
            total = sum
        }
    }

    /// A table made of the tensors a checkpoint lists, in checkpoint order: the fallback for unknown
    /// architectures. Every tensor is a parameter; the module tree follows the dotted names.
    package static func fromCheckpoint(_ checkpoint: Checkpoint, initializerRange: Double = 0.02) -> ModelArchitecture {
        let parameters = checkpoint.specs.map { spec in
            ParameterSpec(
                name: spec.name, shape: spec.shape, initialization: .normal(std: initializerRange, zeroRow: nil))
        }
        return ModelArchitecture(
            modelType: "checkpoint", className: "Module", parameters: parameters, tiedAliases: [:],
            root: ModuleTreeBuilder.tree(fromNames: checkpoint.specs.map { ($0.name, $0.shape) }), noSplitClasses: [],
            initializerRange: initializerRange)
    }

    /// The same model shrunk by `factor` (0 < factor ≤ 1): every tensor's first dimension becomes
    /// max(1, round(d₀ · factor)) — Python's `round`, half to even — keeping every name, the layer count and
    /// the tying. Tied aliases follow the tensor they alias.
    package func scaled(by factor: Double) -> ModelArchitecture {
        precondition(factor > 0 && factor <= 1)
        guard factor < 1 else { return self }
        func scale(_ shape: [Int]) -> [Int] {
            guard let first = shape.first else { return shape }
            return [Self.scaledDimension(first, by: factor)] + shape.dropFirst()
        }
        let scaledParameters = parameters.map { p -> ParameterSpec in
            var initialization = p.initialization
            if case .normal(let std, let row?) = p.initialization {
                let rows = Self.scaledDimension(p.shape.first ?? 1, by: factor)
                initialization = .normal(std: std, zeroRow: row < rows ? row : nil)
            }
            return ParameterSpec(name: p.name, shape: scale(p.shape), initialization: initialization)
        }
        let root = self.root.mapShapes { tensor in tensor.persistent ? scale(tensor.shape) : tensor.shape }
        return ModelArchitecture(
            modelType: modelType, className: className, parameters: scaledParameters, tiedAliases: tiedAliases,
            root: root,
            noSplitClasses: noSplitClasses, initializerRange: initializerRange)
    }

    /// max(1, round(d · factor)), rounding half to even as Python's `round` does.
    package static func scaledDimension(_ dimension: Int, by factor: Double) -> Int {
        max(1, Int((Double(dimension) * factor).rounded(.toNearestOrEven)))
    }

    /// The stored tensors at `dtype`, in registration order (what `save_pretrained` writes, in its order).
    package func tensorSpecs(dtype: DType) -> [TensorSpec] {
        parameters.map { TensorSpec(name: $0.name, dtype: dtype, shape: $0.shape) }
    }

    /// Parameters counted once: `model.num_parameters()` and the index's `total_parameters`.
    package var parameterCount: Int { parameters.reduce(0) { $0 + $1.elementCount } }

    /// Model bytes at `dtype`: every stored parameter once.
    package func byteCount(dtype: DType) -> Int {
        parameters.reduce(0) { $0 + (dtype.byteCount(elements: $1.elementCount) ?? 0) }
    }

    /// Every name the model's state dict has, aliases included.
    package var stateDictNames: [String] { parameters.map(\.name) + tiedAliases.keys }
}

/// Rebuilds a module tree from dotted tensor names (for checkpoints of unknown architectures).
enum ModuleTreeBuilder {
    static func tree(fromNames names: [(String, [Int])]) -> ModuleNode {
        final class Builder {
            var name: String
            var children = OrderedDictionary<String, Builder>()
            var parameters: [ModuleTensor] = []
            init(name: String) { self.name = name }
            func node() -> ModuleNode {
                ModuleNode(
                    name: name, className: "Module", children: children.values.map { $0.node() }, parameters: parameters
                )
            }
        }
        let root = Builder(name: "")
        for (name, shape) in names {
            var node = root
            let parts = name.split(separator: ".").map(String.init)
            for part in parts.dropLast() {
                let childName = node.name.isEmpty ? part : node.name + "." + part
                if let existing = node.children[part] {
                    node = existing
                } else {
                    let child = Builder(name: childName)
                    node.children[part] = child
                    node = child
                }
            }
            node.parameters.append(ModuleTensor(name: name, shape: shape))
        }
        return root.node()
    }
}
