import OSLayer
import TensorEngine

/// Why a checkpoint cannot be loaded into the model:
///
/// - `KeyMismatch`: `--strict` and the checkpoint lacks some of the model's parameters or has extra tensors;
/// - `ShapeMismatch`: the checkpoint's tensor does not have the model parameter's shape;
/// - `DTypeMismatch`: the checkpoint's tensor is not a floating type the engine converts, but the parameter is;
/// - `InvalidTargetDType`: the requested target dtype is not a floating type;
/// - `NoDType`: the checkpoint holds no floating tensor and no config names a dtype, so `auto` has nothing to follow;
/// - `UnplacedParameter`: the placement leaves a parameter without a device;
/// - `ArenaUnavailable`: jemalloc would not create an arena for a simulated accelerator;
/// - `UnsafeOffloadName`: a disk-placed tensor's name cannot be a file name in the offload folder.
package enum LoadRule: FailureRule {
    case keyMismatch, shapeMismatch, dtypeMismatch, invalidTargetDType, noDType, unplacedParameter, arenaUnavailable,
        unsafeOffloadName

    /// The case's name, capitalised, as torch spells the word: `DTypeMismatch`.
    package var ruleName: String? {
        let name = String(describing: self)
        return self == .dtypeMismatch ? "DTypeMismatch" : name.prefix(1).uppercased() + name.dropFirst()
    }

    package var category: FailureCategory {
        switch self {
        case .invalidTargetDType: return .usage
        case .arenaUnavailable: return .io
        default: return .badData
        }
    }
}

/// A checkpoint cannot be loaded into the model: `path: Rule: detail`.
package typealias LoadError = RuleViolation<LoadRule>

extension RuleViolation where Rule == LoadRule {
    package init(_ rule: LoadRule, path: String, _ detail: String) {
        self.init(rule, source: path, detail)
    }

    package var path: String { source }
}
