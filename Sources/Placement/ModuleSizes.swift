import Models
import TensorEngine

/// The size of every module and tensor of a model at a target dtype, as accelerate's `compute_module_sizes`
/// counts them — the numbers every placement decision compares against budgets.
///
/// - Every tensor `named_module_tensors(model, recurse=True)` yields: all parameters (`named_parameters()`, so a
///   tied alias such as Gemma's `lm_head.weight` is skipped: the shared weight is counted once, under the name
///   registered first), then all buffers, persistent or not (`model.rotary_emb.inv_freq` and
///   `original_inv_freq`, Gemma's `embed_scale`).
/// - A floating tensor counts `numel × min(dtype size, its own size)`: parameters are built in the target dtype,
///   so they count at it; float32 buffers such as `inv_freq` count at the smaller of the two. Integer and bool
///   tensors keep their own size (they are never converted).
/// - Each tensor's bytes are added to its own name and to every prefix of it, `""` (the whole model) included.
package struct ModuleSizes: Sendable, Equatable {
    /// Bytes by module or tensor name; absent names are 0 (accelerate's `defaultdict(int)`).
    package let bytes: [String: Int]
    /// The names in the order accelerate's dictionary first sees them (`""`, `model`, `model.embed_tokens`,
    /// `model.embed_tokens.weight`, …): `get_balanced_memory` scans in this order.
    package let order: [String]
    /// Names of the tensors that were counted (tied aliases excluded), parameters then buffers.
    package let countedTensors: [String]
    /// Bytes of buffers only, by the same prefix rule (`compute_module_total_buffer_size`).
    package let bufferBytes: [String: Int]

    package subscript(name: String) -> Int { bytes[name] ?? 0 }

    /// The whole model (`compute_module_sizes(model, dtype)[""]`).
    package var total: Int { self[""] }

    /// Sizes of `root`'s tensors at `dtype`. `ownDType` gives a tensor's dtype in the model as built (default:
    /// its fixed dtype, else `dtype` — the model is built in the target dtype); `tiedAliases` maps each alias
    /// parameter to the parameter it shares storage with.
    package init(
        root: ModuleNode, dtype: DType, tiedAliases: [String: String] = [:], ownDType: ((ModuleTensor) -> DType)? = nil
    ) {
        let own = ownDType ?? { $0.fixedDType ?? dtype }
        var bytes: [String: Int] = [:]
        var buffers: [String: Int] = [:]
        var order: [String] = []
        var counted: [String] = []
        let skipped = TiedParameters.duplicateNames(root: root, tiedAliases: tiedAliases)
        func add(_ tensor: ModuleTensor, isBuffer: Bool) {
            let size = ModuleSizes.size(of: tensor, ownDType: own(tensor), target: dtype)
            counted.append(tensor.name)
            var prefix = ""
            var first = true
            for component in tensor.name.split(separator: ".", omittingEmptySubsequences: false) {
                if first {
                    ModuleSizes.bump(&bytes, &order, "", size)
                    if isBuffer { buffers["", default: 0] += size }
                    prefix = String(component)
                    first = false
                } else {
                    prefix += "." + component
                }
                ModuleSizes.bump(&bytes, &order, prefix, size)
                if isBuffer { buffers[prefix, default: 0] += size }
            }
        }
        for parameter in root.allParameters where !skipped.contains(parameter.name) { add(parameter, isBuffer: false) }
        for buffer in root.allBuffers { add(buffer, isBuffer: true) }
        self.bytes = bytes
        self.order = order
        self.countedTensors = counted
        self.bufferBytes = buffers
    }

    private static func bump(_ bytes: inout [String: Int], _ order: inout [String], _ name: String, _ size: Int) {
        if let current = bytes[name] {
            bytes[name] = current + size
        } else {
            bytes[name] = size
            order.append(name)
        }
    }

    /// One tensor's bytes as accelerate counts it at `target`.
    package static func size(of tensor: ModuleTensor, ownDType: DType, target: DType) -> Int {
        let bits = ownDType.isIntegerOrBool ? ownDType.bitWidth : min(ownDType.bitWidth, target.bitWidth)
        return tensor.elementCount * bits / 8
    }
}

extension DType {
    /// Integer and bool types, which accelerate never converts and sizes at their own width.
    var isIntegerOrBool: Bool {
        switch self {
        case .bool, .u8, .i8, .i16, .u16, .i32, .u32, .i64, .u64: return true
        default: return false
        }
    }
}

/// Tied parameters as accelerate's `find_tied_parameters` reports them: groups of names sharing one weight.
package enum TiedParameters {
    /// The groups, each sorted by name (`[["lm_head.weight", "model.embed_tokens.weight"]]`), ordered by where
    /// the group's first-registered name appears in the model.
    package static func groups(root: ModuleNode, tiedAliases: [String: String]) -> [[String]] {
        guard !tiedAliases.isEmpty else { return [] }
        var members: [String: Set<String>] = [:]
        for (alias, target) in tiedAliases {
            members[target, default: [target]].insert(alias)
        }
        let position = Dictionary(
            root.allParameters.enumerated().map { ($0.element.name, $0.offset) },
            uniquingKeysWith: { first, _ in first })
        func rank(_ group: Set<String>) -> Int { group.compactMap { position[$0] }.min() ?? Int.max }
        return members.values.sorted { rank($0) < rank($1) }.map { group in
            group.sorted { $0.unicodeScalars.lexicographicallyPrecedes($1.unicodeScalars) }
        }
    }

    /// The names `named_parameters()` skips because an earlier-registered name holds the same weight.
    static func duplicateNames(root: ModuleNode, tiedAliases: [String: String]) -> Set<String> {
        guard !tiedAliases.isEmpty else { return [] }
        let position = Dictionary(
            root.allParameters.enumerated().map { ($0.element.name, $0.offset) },
            uniquingKeysWith: { first, _ in first })
        var skipped: Set<String> = []
        for group in groups(root: root, tiedAliases: tiedAliases) {
            let kept = group.min { (position[$0] ?? Int.max) < (position[$1] ?? Int.max) }
            for name in group where name != kept { skipped.insert(name) }
        }
        return skipped
    }
}
