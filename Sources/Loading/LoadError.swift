import TensorEngine

/// A checkpoint cannot be loaded into the model: keys missing or unexpected under `--strict`, a tensor of
/// the wrong shape, or a dtype that cannot become the parameter's.
public struct LoadError: ReportableError, Equatable {
    public enum Rule: String, Sendable {
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
    }

    public let rule: Rule
    public let path: String
    public let detail: String

    public init(_ rule: Rule, path: String, _ detail: String) {
        self.rule = rule
        self.path = path
        self.detail = detail
    }

    public var description: String { "\(path): \(rule.rawValue): \(detail)" }

    public var exitStatus: ExitStatus { rule == .invalidTargetDType ? .usage : .dataError }
}
