import OSLayer
import TensorEngine

/// The rules of the safetensors format a file can break, named as the reference implementation names its errors
/// (`safetensors/src/tensor.rs`, the name printed is the case's, capitalised), so a message can be looked up
/// there; the few rules this reader adds (duplicate names, depth) have names of their own:
///
/// - `HeaderTooSmall`: the file is shorter than the 8-byte header length;
/// - `HeaderTooLarge`: the declared header length exceeds 100,000,000 bytes;
/// - `InvalidHeaderLength`: 8 + header length overflows or runs past the end of the file;
/// - `InvalidHeader`: the header is not valid UTF-8;
/// - `InvalidHeaderDeserialization`: the header is not the JSON the format requires (syntax, types, dtype
///   names, fields);
/// - `DuplicateTensorName`: two tensors share a name (the spec forbids it; the reference silently keeps the last);
/// - `InvalidOffset`: tensors do not tile the byte buffer contiguously from 0 (a gap, an overlap, end < begin);
/// - `ValidationOverflow`: an element or bit count overflows;
/// - `MisalignedSlice`: a sub-byte tensor does not fill a whole number of bytes;
/// - `TensorInvalidInfo`: a byte range's length is not element count × dtype size;
/// - `MetadataIncompleteBuffer`: the tensors do not end exactly at the end of the file (trailing or missing bytes);
/// - `ReservedTensorName`: a tensor may not be named `__metadata__` (writer side).
package enum SafetensorsRule: FailureRule, CaseIterable {
    case headerTooSmall, headerTooLarge, invalidHeaderLength, invalidHeader, invalidHeaderDeserialization
    case duplicateTensorName, invalidOffset, validationOverflow, misalignedSlice, tensorInvalidInfo
    case metadataIncompleteBuffer, reservedTensorName

    package var category: FailureCategory { .badData }
    package static var locationKind: String? { "tensor" }
}

/// A safetensors file broke one of the format's rules: `file: tensor 'name': Rule: detail` (source: the file as the
/// user named it; location: the tensor).
package typealias SafetensorsError = RuleViolation<SafetensorsRule>

/// The rules a checkpoint folder or its index can break (the files themselves may each be valid):
///
/// - `NoCheckpoint`: the folder holds neither `model.safetensors.index.json` nor `model.safetensors`;
/// - `InvalidIndex`: the index is not the JSON transformers writes (`weight_map` object of string → string, …);
/// - `MissingShard`: the index names a shard file that does not exist;
/// - `ShardOutsideFolder`: a shard name is absolute, contains `..`, or resolves (through links) outside the folder;
/// - `TensorNotInShard`: the index maps a tensor to a shard that does not contain it;
/// - `TensorNotInIndex`: a shard holds a tensor the index does not map to that shard;
/// - `UnsupportedFormat`: `__metadata__.format` is not one transformers loads (pt, tf, flax, mlx);
///
/// and what transformers tolerates but a checkpoint that is exactly what it claims does not have (`inspect` and
/// `load` warn, `verify` refuses, exit 65 — ``Checkpoint/inconsistencies``):
///
/// - `IndexBesideSingleFile`: `model.safetensors` and an index in one folder (transformers loads the file and
///   never reads the index, which may not even parse);
/// - `TotalSizeMismatch`: the index's `metadata.total_size` is not the shards' tensor bytes;
/// - `UnlistedShard`: a `model-0000i-of-0000N.safetensors` file the index does not name.
package enum CheckpointRule: FailureRule, CaseIterable {
    case noCheckpoint, invalidIndex, missingShard, shardOutsideFolder, tensorNotInShard, tensorNotInIndex,
        unsupportedFormat
    case indexBesideSingleFile, totalSizeMismatch, unlistedShard

    package var category: FailureCategory { .badData }
    package static var locationKind: String? { "tensor" }
}

/// A checkpoint folder or its index broke a rule: `path: tensor 'name': Rule: detail` (location: the tensor).
package typealias CheckpointError = RuleViolation<CheckpointRule>
