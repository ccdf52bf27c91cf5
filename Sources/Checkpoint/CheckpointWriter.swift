import Foundation
import OrderedCollections
import TensorEngine

/// Supplies tensor bytes to a writer, a chunk at a time, so no writer ever holds a whole tensor or
/// checkpoint: `fill` is called with consecutive byte ranges of one tensor, in the order the files store them.
public protocol TensorByteSource {
    func fill(_ tensor: TensorSpec, byteOffset: Int, into destination: UnsafeMutableRawBufferPointer) throws
}

/// A run was interrupted (Ctrl-C) while writing; everything partial was removed.
public struct WriteInterrupted: ReportableError, Equatable {
    public let path: String
    public var description: String { "\(path): interrupted; the partial checkpoint was removed" }
    public var exitStatus: ExitStatus { .ioError }
}

/// Writes a checkpoint folder the Hugging Face way (`save_pretrained` + `safe_serialization`): the shard files
/// of a `ShardPlan`, each with `__metadata__ = {"format": "pt"}`, the index when there is more than one, and
/// any extra files (config.json).
///
/// Everything is written into a hidden staging folder beside the destination, which is renamed onto the
/// destination only when complete: a failed or interrupted write leaves nothing behind but the staging
/// folder's removal.
public struct CheckpointWriter {
    public struct Summary: Sendable, Equatable {
        public let folder: String
        public let files: [String]
        public let tensorBytes: Int
        public let fileBytes: Int
        public let seconds: Double
    }

    /// The metadata every shard carries.
    public static let shardMetadata: OrderedDictionary<String, String> = ["format": "pt"]

    public let plan: ShardPlan
    /// Bytes per `fill` call; the writer's only large buffer.
    public var chunkBytes: Int
    /// Call `fsync` on each file before it is renamed into place.
    public var sync: Bool

    public init(plan: ShardPlan, chunkBytes: Int = 32 << 20, sync: Bool = true) {
        self.plan = plan
        self.chunkBytes = chunkBytes
        self.sync = sync
    }

    /// Writes the checkpoint into `folder`, which must not exist or be empty.
    /// `extraFiles` are (name, bytes) written beside the shards. `progress` receives tensor bytes written so far;
    /// `isCancelled` is polled between chunks.
    @discardableResult
    public func write(
        to folder: String, source: some TensorByteSource, extraFiles: [(name: String, bytes: [UInt8])] = [],
        progress: (Int) -> Void = { _ in }, isCancelled: () -> Bool = { false }
    ) throws -> Summary {
        let start = ContinuousClock.now
        let fm = FileManager.default
        // "out/" must name the folder "out": with the slash kept, the staging folder below would be placed
        // inside the destination and then removed with it ("proved empty"), losing the whole write.
        var folder = folder
        while folder.count > 1, folder.hasSuffix("/") { folder.removeLast() }
        // Likewise "." or "dir/..": the staging folder must be a sibling of the real destination, not inside it.
        if folder == "." || folder == ".." || folder.hasSuffix("/.") || folder.hasSuffix("/..") {
            folder = Checkpoint.realPath(folder) ?? folder
        }
        var isDirectory: ObjCBool = false
        if fm.fileExists(atPath: folder, isDirectory: &isDirectory) {
            let contents = (try? fm.contentsOfDirectory(atPath: folder)) ?? ["?"]
            guard isDirectory.boolValue, contents.isEmpty else {
                throw UsageError("\(folder) already exists and is not an empty folder; choose another --out or remove it")
            }
        }
        let parent = AtomicFile.folder(of: folder)
        let base = folder.split(separator: "/").last.map(String.init) ?? folder
        let staging = (parent.isEmpty ? "" : parent + "/") + ".\(base).partial-\(getpid())"
        try? fm.removeItem(atPath: staging)
        do {
            try fm.createDirectory(atPath: staging, withIntermediateDirectories: true)
        } catch {
            throw FileIOError(path: staging, operation: "mkdir", reason: "\(error.localizedDescription)")
        }
        var committed = false
        defer { if !committed { try? fm.removeItem(atPath: staging) } }

        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(chunkBytes, 1), alignment: 64)
        defer { buffer.deallocate() }
        var written = 0
        var fileBytes = 0
        var names: [String] = []
        for shard in plan.shards {
            let layout = try SafetensorsLayout(tensors: shard.tensors, metadata: Self.shardMetadata, file: shard.fileName)
            let writer = try SafetensorsWriter(path: staging + "/" + shard.fileName, layout: layout)
            for tensor in layout.tensors {
                var offset = 0
                while offset < tensor.byteCount {
                    if isCancelled() {
                        writer.abort()
                        throw WriteInterrupted(path: folder)
                    }
                    let length = min(chunkBytes, tensor.byteCount - offset)
                    let chunk = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<length])
                    try source.fill(tensor.spec, byteOffset: offset, into: chunk)
                    try writer.append(UnsafeRawBufferPointer(chunk))
                    offset += length
                    written += length
                    progress(written)
                }
            }
            try writer.commit(sync: sync)
            fileBytes += layout.fileByteCount
            names.append(shard.fileName)
        }
        if let index = plan.index {
            try AtomicFile.write(index.serialized(), to: staging + "/" + ShardIndex.fileName, sync: sync)
            names.append(ShardIndex.fileName)
        }
        for extra in extraFiles {
            try AtomicFile.write(extra.bytes, to: staging + "/" + extra.name, sync: sync)
            names.append(extra.name)
        }
        if fm.fileExists(atPath: folder) { try? fm.removeItem(atPath: folder) }  // proved empty above
        guard rename(staging, folder) == 0 else {
            throw FileIOError(path: folder, operation: "rename \(staging)", reason: String(cString: strerror(errno)))
        }
        committed = true
        let elapsed = ContinuousClock.now - start
        return Summary(
            folder: folder, files: names, tensorBytes: written, fileBytes: fileBytes,
            seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }
}
