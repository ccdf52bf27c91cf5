import TensorEngine

/// Why a checkpoint cannot be loaded into the model.
public enum LoadRule: String, FailureRule {
    /// `--strict` and the checkpoint lacks some of the model's parameters or has extra tensors.
    case keyMismatch = "KeyMismatch"
    /// The checkpoint's tensor does not have the model parameter's shape.
    case shapeMismatch = "ShapeMismatch"
    /// The checkpoint's tensor is not a floating type the engine converts, but the parameter is floating.
    case dtypeMismatch = "DTypeMismatch"
    /// The requested target dtype is not a floating type.
    case invalidTargetDType = "InvalidTargetDType"
    /// The checkpoint holds no floating tensor and no config names a dtype, so `auto` has nothing to follow.
    case noDType = "NoDType"
    /// The placement leaves a parameter without a device.
    case unplacedParameter = "UnplacedParameter"
    /// jemalloc would not create an arena for a simulated accelerator.
    case arenaUnavailable = "ArenaUnavailable"
    /// A disk-placed tensor's name cannot be a file name in the offload folder.
    case unsafeOffloadName = "UnsafeOffloadName"

    public var category: FailureCategory {
        switch self {
        case .invalidTargetDType: return .usage
        case .arenaUnavailable: return .io
        default: return .badData
        }
    }
}

/// A checkpoint cannot be loaded into the model: `path: Rule: detail`.
public typealias LoadError = RuleViolation<LoadRule>

extension RuleViolation where Rule == LoadRule {
    public init(_ rule: LoadRule, path: String, _ detail: String) {
        self.init(rule, source: path, detail)
    }

    public var path: String { source }
}
