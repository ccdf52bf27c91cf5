import Foundation
import OSLayer
import OrderedCollections
import StrictJSON
import TensorEngine

/// Rewrites a checkpoint with another shard size and/or another floating dtype, streaming: each tensor is
/// read and converted chunk by chunk, so memory stays at two fixed buffers whatever the checkpoint's size.
package struct Resharder {
    /// Files in a checkpoint folder that are weights (never copied verbatim) rather than companions.
    static let weightSuffixes = [
        ".safetensors", ".safetensors.index.json", ".bin", ".bin.index.json", ".pt", ".pth", ".h5", ".msgpack", ".ckpt",
    ]

    package let source: Checkpoint
    package let maxShardSize: Int
    /// nil keeps every dtype; otherwise floating tensors are converted (integer and bool tensors never).
    package let dtype: DType?
    /// The tensor order for splitting; defaults to the source's order (shard order, then data order).
    package let order: [String]

    package init(source: Checkpoint, maxShardSize: Int, dtype: DType?, order: [String]? = nil) throws {
        if let dtype, !dtype.isConvertible {
            throw UsageError(
                "--dtype \(dtype.torchName) is not a floating dtype to convert to; use one of \(DType.convertibleTorchNames)"
            )
        }
        self.source = source
        self.maxShardSize = maxShardSize
        self.dtype = dtype
        let order = order ?? Array(source.tensors.keys)
        precondition(
            Set(order) == Set(source.tensors.keys) && order.count == source.tensors.count,
            "order must list every tensor once")
        self.order = order
    }

    /// The dtype a stored tensor is written as.
    package func targetDType(of stored: DType) -> DType {
        guard let dtype, stored.isConvertible else { return stored }
        return dtype
    }

    package var plan: ShardPlan {
        let specs = order.compactMap { name in
            source.tensors[name].map {
                TensorSpec(name: name, dtype: targetDType(of: $0.tensor.dtype), shape: $0.tensor.shape)
            }
        }
        return ShardPlan(tensors: specs, maxShardSize: maxShardSize)
    }

    /// Companion files to copy: config.json with its dtype updated, and every other non-weight regular file.
    package func companionFiles() throws -> [(name: String, bytes: [UInt8])] {
        guard source.format == .sharded || source.path == source.folder || source.configPath != nil else { return [] }
        let fm = FileManager.default
        let names = (try? fm.contentsOfDirectory(atPath: source.folder)) ?? []
        var out: [(name: String, bytes: [UInt8])] = []
        for name in names.sorted()
        where !name.hasPrefix(".") && !Self.weightSuffixes.contains(where: { name.hasSuffix($0) }) {
            let path = Checkpoint.join(source.folder, name)
            var isDirectory: ObjCBool = false
            guard fm.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
            var bytes = try Checkpoint.readSmallFile(path, limit: 512 << 20)
            if name == "config.json", let dtype {
                bytes = try Self.configWithDType(bytes, dtype: dtype, path: path)
            }
            out.append((name, bytes))
        }
        return out
    }

    /// config.json with `torch_dtype` and/or `dtype` (whichever it has; `dtype` when neither) set, written as
    /// transformers writes configs.
    package static func configWithDType(_ bytes: [UInt8], dtype: DType, path: String) throws -> [UInt8] {
        let document: JSONValue
        do {
            document = try JSONParser().parse(bytes)
        } catch {
            throw CheckpointError(.invalidIndex, source: path, "config.json is not valid JSON: \(error)")
        }
        guard case .object(var object) = document else {
            throw CheckpointError(.invalidIndex, source: path, "config.json is \(document.typeName), not an object")
        }
        setDType(&object, to: dtype)
        return JSONWriter.pythonSorted.bytes(.object(object)) + [0x0A]
    }

    /// Sets a config's `torch_dtype` and/or `dtype` (whichever it has; `dtype` when it has neither).
    package static func setDType(_ object: inout OrderedDictionary<String, JSONValue>, to dtype: DType) {
        var touched = false
        for key in ["torch_dtype", "dtype"] where object[key] != nil {
            object[key] = .string(dtype.torchName)
            touched = true
        }
        if !touched { object["dtype"] = .string(dtype.torchName) }
    }

    /// Writes the new checkpoint into `folder`.
    @discardableResult
    package func write(to folder: String, progress: (Int) -> Void = { _ in }, isCancelled: () -> Bool = { false })
        throws -> CheckpointWriter.Summary
    {
        let converter = ConvertingSource(checkpoint: source)
        return try CheckpointWriter(plan: plan).write(
            to: folder, source: converter, extraFiles: try companionFiles(), progress: progress,
            isCancelled: isCancelled)
    }
}

/// Reads tensors from a checkpoint, converting to the requested spec's dtype on the fly.
final class ConvertingSource: TensorByteSource, @unchecked Sendable {
    let checkpoint: Checkpoint
    /// Source bytes of one conversion step. Any size works (`fill` converts a chunk in as many steps as it
    /// takes); 16 MiB keeps memory fixed whatever the dtypes.
    static let stagingBytes = 16 << 20
    let staging: UnsafeMutableRawBufferPointer

    init(checkpoint: Checkpoint) {
        self.checkpoint = checkpoint
        self.staging = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.stagingBytes, alignment: 64)
    }

    deinit { staging.deallocate() }

    func fill(_ tensor: TensorSpec, byteOffset: Int, into destination: UnsafeMutableRawBufferPointer) throws {
        guard let location = checkpoint.tensors[tensor.name] else {
            preconditionFailure("unknown tensor \(tensor.name)")
        }
        let stored = location.tensor
        if stored.dtype == tensor.dtype {
            try checkpoint.files[location.fileIndex].read(
                stored, range: byteOffset..<(byteOffset + destination.count), into: destination)
            return
        }
        // Byte-sized floating types only reach here (Resharder converts F16/BF16/F32/F64 only).
        guard let dstWidth = tensor.dtype.byteWidth, let srcWidth = stored.dtype.byteWidth else {
            preconditionFailure("sub-byte conversion")
        }
        var done = 0
        while done < destination.count {
            let maxElements = staging.count / srcWidth
            let elements = min(maxElements, (destination.count - done) / dstWidth)
            let firstElement = (byteOffset + done) / dstWidth
            let source = UnsafeMutableRawBufferPointer(rebasing: staging[0..<(elements * srcWidth)])
            try checkpoint.files[location.fileIndex].read(
                stored, range: (firstElement * srcWidth)..<((firstElement + elements) * srcWidth), into: source)
            DTypeConversion.convert(
                UnsafeRawBufferPointer(source), from: stored.dtype,
                into: UnsafeMutableRawBufferPointer(rebasing: destination[done..<(done + elements * dstWidth)]),
                to: tensor.dtype)
            done += elements * dstWidth
        }
    }
}
