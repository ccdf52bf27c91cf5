import Foundation
import OSLayer
import OrderedCollections
import TensorEngine

/// A safetensors checkpoint as transformers reads one: a single file, a folder with `model.safetensors`,
/// or a folder whose `model.safetensors.index.json` maps every tensor to a shard.
///
/// Opening validates every file's header and the index against the shards (each mapped tensor is in its
/// shard, each shard tensor is mapped to that shard, no shard name escapes the folder); it reads no tensor
/// bytes. `verify()` then reads every byte.
package final class Checkpoint: Sendable {
    package enum Format: String, Sendable {
        case single
        case sharded
    }

    /// Where one tensor lives.
    package struct Location: Sendable, Equatable {
        /// Index into `files`.
        package let fileIndex: Int
        package let tensor: StoredTensor
    }

    /// The path as the user gave it.
    package let path: String
    /// The folder holding the files (config.json is looked for here).
    package let folder: String
    package let format: Format
    /// The index, for sharded checkpoints.
    package let index: ShardIndex?
    /// The files in shard order.
    package let files: [SafetensorsFile]
    /// Each file's name relative to `folder`.
    package let fileNames: [String]
    /// Every tensor, in shard order and within a shard in data order.
    package let tensors: OrderedDictionary<String, Location>
    /// Oddities that do not stop a load (e.g. an index `total_size` that disagrees with the shards).
    /// What transformers tolerates in this folder but a checkpoint that is exactly what it claims does not have:
    /// `inspect` and `load` print each as a warning, `verify` refuses the folder with the first (exit 65).
    package let inconsistencies: [CheckpointError]

    /// The inconsistencies as warning lines.
    package var warnings: [String] { inconsistencies.map(\.description) }

    /// The formats transformers accepts in `__metadata__.format`.
    package static let acceptedFormats: Set<String> = ["pt", "tf", "flax", "mlx"]

    /// Opens a `.safetensors` file, an index file, or a checkpoint folder.
    package init(path: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw FileIOError(path: path, operation: "open", reason: "no such file or directory", isMissing: true)
        }
        self.path = path
        var inconsistencies: [CheckpointError] = []
        if isDirectory.boolValue {
            folder = path
            // transformers looks for model.safetensors before the index; so does this reader.
            let indexPath = Checkpoint.join(path, ShardIndex.fileName)
            if FileManager.default.fileExists(atPath: Checkpoint.join(path, "model.safetensors")) {
                index = nil
                fileNames = ["model.safetensors"]
                files = [try SafetensorsFile(path: Checkpoint.join(path, "model.safetensors"))]
                format = .single
                if FileManager.default.fileExists(atPath: indexPath) {
                    inconsistencies.append(Checkpoint.indexBesideSingleFile(indexPath))
                }
            } else if FileManager.default.fileExists(atPath: indexPath) {
                (index, fileNames, files) = try Checkpoint.openSharded(folder: path, indexPath: indexPath)
                format = .sharded
            } else {
                throw CheckpointError(
                    .noCheckpoint, source: path, "the folder holds neither \(ShardIndex.fileName) nor model.safetensors"
                )
            }
        } else if path.hasSuffix(".index.json") {
            folder = AtomicFile.folder(of: path).isEmpty ? "." : AtomicFile.folder(of: path)
            (index, fileNames, files) = try Checkpoint.openSharded(folder: folder, indexPath: path)
            format = .sharded
        } else {
            folder = AtomicFile.folder(of: path).isEmpty ? "." : AtomicFile.folder(of: path)
            index = nil
            fileNames = [path.split(separator: "/").last.map(String.init) ?? path]
            files = [try SafetensorsFile(path: path)]
            format = .single
        }

        for file in files {
            if let format = file.header.metadata?["format"], !Checkpoint.acceptedFormats.contains(format) {
                throw CheckpointError(
                    .unsupportedFormat, source: file.path,
                    "__metadata__.format is '\(format)'; transformers loads only \(Checkpoint.acceptedFormats.sorted().joined(separator: ", "))"
                )
            }
        }

        var tensors = OrderedDictionary<String, Location>()
        for (fileIndex, file) in files.enumerated() {
            for tensor in file.header.tensors {
                if let index {
                    guard index.weightMap[tensor.name] == fileNames[fileIndex] else {
                        let mapped = index.weightMap[tensor.name].map { "maps it to \($0)" } ?? "does not list it"
                        throw CheckpointError(
                            .tensorNotInIndex, source: file.path, location: tensor.name,
                            "the shard holds this tensor but the index \(mapped)")
                    }
                }
                tensors[tensor.name] = Location(fileIndex: fileIndex, tensor: tensor)
            }
        }
        if let index {
            for (name, file) in index.weightMap where tensors[name] == nil {
                throw CheckpointError(
                    .tensorNotInShard, source: Checkpoint.join(folder, file), location: name,
                    "the index maps this tensor to \(file), which does not hold it")
            }
            let dataBytes = tensors.values.reduce(0) { $0 + $1.tensor.byteCount }
            if let declared = index.totalSize, declared != dataBytes {
                inconsistencies.append(
                    CheckpointError(
                        .totalSizeMismatch, source: ShardIndex.fileName,
                        "metadata.total_size is \(declared) but the shards hold \(dataBytes) tensor bytes"))
            }
            inconsistencies += Checkpoint.unlistedShards(folder: folder, named: Set(fileNames))
        }
        self.tensors = tensors
        self.inconsistencies = inconsistencies
    }

    private static func openSharded(folder: String, indexPath: String) throws -> (
        ShardIndex, [String], [SafetensorsFile]
    ) {
        let bytes: [UInt8]
        do {
            bytes = try readSmallFile(indexPath, limit: ShardIndex.maximumFileBytes)
        }
        let index = try ShardIndex.parse(bytes, path: indexPath)
        let names = index.shardFileNames
        let folderReal = realPath(folder) ?? folder
        var files: [SafetensorsFile] = []
        for name in names {
            let shardPath = join(folder, name)
            let components = name.split(separator: "/", omittingEmptySubsequences: false)
            if name.hasPrefix("/") || components.contains("..") || name.isEmpty {
                throw CheckpointError(
                    .shardOutsideFolder, source: indexPath, "shard name '\(name)' is absolute, empty or contains '..'")
            }
            guard FileManager.default.fileExists(atPath: shardPath) else {
                let tensor = index.weightMap.first { $0.value == name }?.key
                throw CheckpointError(
                    .missingShard, source: indexPath, location: tensor, "shard file '\(name)' does not exist")
            }
            if let real = realPath(shardPath),
                !real.hasPrefix(folderReal.hasSuffix("/") ? folderReal : folderReal + "/")
            {
                if real == folderReal {
                    throw CheckpointError(
                        .shardOutsideFolder, source: indexPath,
                        "shard '\(name)' names the checkpoint folder itself, not a file in it")
                }
                throw CheckpointError(
                    .shardOutsideFolder, source: indexPath, "shard '\(name)' resolves to \(real), outside \(folderReal)"
                )
            }
            files.append(try SafetensorsFile(path: shardPath))
        }
        return (index, names, files)
    }

    /// `model.safetensors` and an index in one folder: the index is never read by transformers; say whether it
    /// would even parse.
    private static func indexBesideSingleFile(_ indexPath: String) -> CheckpointError {
        let parsed = Result {
            try ShardIndex.parse(try readSmallFile(indexPath, limit: ShardIndex.maximumFileBytes), path: indexPath)
        }
        let state: String
        switch parsed {
        case .success(let index): state = "names \(index.shardFileNames.count) shard file(s)"
        case .failure(let error): state = "does not parse (\(error))"
        }
        return CheckpointError(
            .indexBesideSingleFile, source: indexPath,
            "model.safetensors is beside it, so transformers loads model.safetensors and never reads this index, which \(state)"
        )
    }

    /// Files named as transformers names shards (`model-00002-of-00004.safetensors`) that the index does not name.
    private static func unlistedShards(folder: String, named: Set<String>) -> [CheckpointError] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        return entries.sorted().filter { isShardName($0) && !named.contains($0) }.map {
            CheckpointError(
                .unlistedShard, source: join(folder, $0),
                "a shard file by its name that \(ShardIndex.fileName) does not name: no load reads it")
        }
    }

    /// `model-<5 digits>-of-<5 digits>.safetensors`, as `save_pretrained` names shards.
    static func isShardName(_ name: String) -> Bool {
        let pattern = name.split(separator: "-")
        guard pattern.count == 4, pattern[0] == "model", pattern[2] == "of", name.hasSuffix(".safetensors") else {
            return false
        }
        let last = pattern[3].dropLast(".safetensors".count)
        return [pattern[1], last].allSatisfy { $0.count == 5 && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }
    }

    /// `realpath(3)`: the canonical absolute path with links resolved, or nil.
    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    static func join(_ folder: String, _ name: String) -> String {
        folder.hasSuffix("/") ? folder + name : folder + "/" + name
    }

    /// Reads a small metadata file whole, refusing anything larger than `limit` bytes.
    package static func readSmallFile(_ path: String, limit: Int) throws -> [UInt8] {
        try UntrustedFile.readSmall(path, limit: limit)
    }

    // MARK: - Totals

    /// Tensor data bytes over all files (the index's `total_size`).
    package var totalSize: Int { files.reduce(0) { $0 + $1.header.dataByteCount } }
    /// Elements over all tensors (the index's `total_parameters`).
    package var totalParameters: Int { tensors.values.reduce(0) { $0 + $1.tensor.spec.elementCount } }
    /// Tensor bytes of the largest file: S in the sharded strategy's bound.
    package var largestShardBytes: Int { files.map(\.header.dataByteCount).max() ?? 0 }
    /// The largest single tensor's bytes.
    package var largestTensorBytes: Int { tensors.values.map(\.tensor.byteCount).max() ?? 0 }

    /// `config.json` beside the weights, when present.
    package var configPath: String? {
        let candidate = Checkpoint.join(folder, "config.json")
        return FileManager.default.fileExists(atPath: candidate) ? candidate : nil
    }

    /// The specs of every tensor, in checkpoint order.
    package var specs: [TensorSpec] { tensors.values.map(\.tensor.spec) }

    /// The file holding a tensor.
    package func file(of location: Location) -> SafetensorsFile { files[location.fileIndex] }

    /// Reads a tensor's bytes (or a range of them) into `destination`.
    package func read(_ name: String, range: Range<Int>? = nil, into destination: UnsafeMutableRawBufferPointer) throws
    {
        guard let location = tensors[name] else { preconditionFailure("no tensor \(name)") }
        try files[location.fileIndex].read(location.tensor, range: range, into: destination)
    }

    /// Reads every tensor byte of every file (through one bounded buffer), proving the data is readable;
    /// with `digests`, returns each tensor's SHA-256. Returns the bytes read.
    @discardableResult
    package func verify(
        digests: Bool = false, bufferBytes: Int = 16 << 20, onDigest: (String, String) -> Void = { _, _ in }
    ) throws -> Int {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bufferBytes, alignment: 64)
        defer { buffer.deallocate() }
        var total = 0
        for (name, location) in tensors {
            var hasher = Digest.Hasher()
            var offset = 0
            let count = location.tensor.byteCount
            while offset < count {
                let length = min(bufferBytes, count - offset)
                let chunk = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<length])
                try files[location.fileIndex].read(location.tensor, range: offset..<(offset + length), into: chunk)
                if digests { hasher.update(UnsafeRawBufferPointer(chunk)) }
                offset += length
            }
            total += count
            if digests { onDigest(name, hasher.finalizeHex()) }
        }
        return total
    }
}
