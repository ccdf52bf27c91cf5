import TensorEngine

/// The rules of the safetensors format a file can break.
///
/// The names are the reference implementation's error names (`safetensors/src/tensor.rs`), so a message can be
/// looked up there; the few rules this reader adds (duplicate names, depth) have names of their own.
public enum SafetensorsRule: String, FailureRule, CaseIterable {
    /// The file is shorter than the 8-byte header length.
    case headerTooSmall = "HeaderTooSmall"
    /// The declared header length exceeds 100,000,000 bytes.
    case headerTooLarge = "HeaderTooLarge"
    /// 8 + header length overflows or runs past the end of the file.
    case invalidHeaderLength = "InvalidHeaderLength"
    /// The header is not valid UTF-8.
    case invalidHeader = "InvalidHeader"
    /// The header is not the JSON the format requires (syntax, types, dtype names, fields).
    case invalidHeaderDeserialization = "InvalidHeaderDeserialization"
    /// Two tensors share a name (the spec forbids it; the reference silently keeps the last).
    case duplicateTensorName = "DuplicateTensorName"
    /// Tensors do not tile the byte buffer contiguously from 0: a gap, an overlap, or end < begin.
    case invalidOffset = "InvalidOffset"
    /// Element or bit count overflows.
    case validationOverflow = "ValidationOverflow"
    /// A sub-byte tensor does not fill a whole number of bytes.
    case misalignedSlice = "MisalignedSlice"
    /// The byte range's length is not element count × dtype size.
    case tensorInvalidInfo = "TensorInvalidInfo"
    /// The tensors do not end exactly at the end of the file (trailing or missing bytes).
    case metadataIncompleteBuffer = "MetadataIncompleteBuffer"
    /// A tensor may not be named `__metadata__` (writer side).
    case reservedTensorName = "ReservedTensorName"

    public var category: FailureCategory { .badData }
    public static var locationKind: String? { "tensor" }
}

/// A safetensors file broke one of the format's rules: `file: tensor 'name': Rule: detail`.
public typealias SafetensorsError = RuleViolation<SafetensorsRule>

extension RuleViolation where Rule == SafetensorsRule {
    public init(_ rule: SafetensorsRule, file: String, tensor: String? = nil, _ detail: String) {
        self.init(rule, source: file, location: tensor, detail)
    }

    /// The file, as the user named it.
    public var file: String { source }
    /// The tensor concerned, when there is one.
    public var tensor: String? { location }
}

/// The rules a checkpoint folder or its index can break (the files themselves may each be valid).
public enum CheckpointRule: String, FailureRule, CaseIterable {
    /// The folder holds neither `model.safetensors.index.json` nor `model.safetensors`.
    case noCheckpoint = "NoCheckpoint"
    /// The index is not the JSON transformers writes (`weight_map` object of string → string, …).
    case invalidIndex = "InvalidIndex"
    /// The index names a shard file that does not exist.
    case missingShard = "MissingShard"
    /// A shard name is absolute, contains `..`, or resolves (through links) outside the folder.
    case shardOutsideFolder = "ShardOutsideFolder"
    /// The index maps a tensor to a shard that does not contain it.
    case tensorNotInShard = "TensorNotInShard"
    /// A shard holds a tensor the index does not map to that shard.
    case tensorNotInIndex = "TensorNotInIndex"
    /// `__metadata__.format` is not one transformers loads (pt, tf, flax, mlx).
    case unsupportedFormat = "UnsupportedFormat"

    public var category: FailureCategory { .badData }
    public static var locationKind: String? { "tensor" }
}

/// A checkpoint folder or its index broke a rule: `path: tensor 'name': Rule: detail`.
public typealias CheckpointError = RuleViolation<CheckpointRule>

extension RuleViolation where Rule == CheckpointRule {
    public init(_ rule: CheckpointRule, path: String, tensor: String? = nil, _ detail: String) {
        self.init(rule, source: path, location: tensor, detail)
    }

    public var path: String { source }
    public var tensor: String? { location }
}

/// Reading or writing a file failed at the operating-system level.
public struct FileIOError: ReportableError, Equatable {
    public let path: String
    public let operation: String
    public let reason: String
    /// True when the path does not exist (exit 66) rather than failing to read or write (exit 74).
    public let isMissing: Bool

    public init(path: String, operation: String, reason: String, isMissing: Bool = false) {
        self.path = path
        self.operation = operation
        self.reason = reason
        self.isMissing = isMissing
    }

    public var description: String { "\(path): \(operation) failed: \(reason)" }
    public var category: FailureCategory { isMissing ? .missingInput : .io }
}
