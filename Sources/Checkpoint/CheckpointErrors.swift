import TensorEngine

/// A safetensors file broke one of the format's rules.
///
/// The rule names are the reference implementation's error names (`safetensors/src/tensor.rs`), so a message
/// can be looked up there; the few rules this reader adds (duplicate names, depth) have names of their own.
public struct SafetensorsError: ReportableError, Equatable {
    public enum Rule: String, Sendable, CaseIterable {
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
    }

    public let rule: Rule
    /// The file, as the user named it.
    public let file: String
    /// The tensor concerned, when there is one.
    public let tensor: String?
    public let detail: String

    public init(_ rule: Rule, file: String, tensor: String? = nil, _ detail: String) {
        self.rule = rule
        self.file = file
        self.tensor = tensor
        self.detail = detail
    }

    public var description: String {
        let subject = tensor.map { " tensor '\($0)':" } ?? ""
        return "\(file):\(subject) \(rule.rawValue): \(detail)"
    }

    public var exitStatus: ExitStatus { .dataError }
}

/// A checkpoint folder or its index broke a rule (the files themselves may each be valid).
public struct CheckpointError: ReportableError, Equatable {
    public enum Rule: String, Sendable, CaseIterable {
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
        /// The index's `metadata.total_size` differs from the tensor bytes the shards hold.
        case totalSizeMismatch = "TotalSizeMismatch"
    }

    public let rule: Rule
    public let path: String
    public let tensor: String?
    public let detail: String

    public init(_ rule: Rule, path: String, tensor: String? = nil, _ detail: String) {
        self.rule = rule
        self.path = path
        self.tensor = tensor
        self.detail = detail
    }

    public var description: String {
        let subject = tensor.map { " tensor '\($0)':" } ?? ""
        return "\(path):\(subject) \(rule.rawValue): \(detail)"
    }

    public var exitStatus: ExitStatus { .dataError }
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
    public var exitStatus: ExitStatus { isMissing ? .noInput : .ioError }
}
