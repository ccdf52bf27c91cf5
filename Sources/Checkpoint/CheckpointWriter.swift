import Dispatch
import Foundation
import OrderedCollections
import TensorEngine

/// Supplies tensor bytes to a writer, a chunk at a time, so no writer ever holds a whole tensor or
/// checkpoint: `fill` is called with consecutive byte ranges of one tensor, in the order the files store them.
public protocol TensorByteSource {
    /// Called from the writer's producer thread (one call at a time).
    func fill(_ tensor: TensorSpec, byteOffset: Int, into destination: UnsafeMutableRawBufferPointer) throws
}

/// A run was interrupted (Ctrl-C) while writing; everything partial was removed.
public struct WriteInterrupted: ReportableError, Equatable {
    public let path: String
    public var description: String { "\(path): interrupted; the partial checkpoint was removed" }
    public var category: FailureCategory { .interrupted }
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

        // Filling (CPU: generating or converting) and writing (I/O) overlap: a producer thread fills one of two
        // chunk buffers while this thread writes the other.
        let layouts = try plan.shards.map { try SafetensorsLayout(tensors: $0.tensors, metadata: Self.shardMetadata, file: $0.fileName) }
        var chunks: [ChunkPipeline.Chunk] = []
        for (shardIndex, layout) in layouts.enumerated() {
            for tensor in layout.tensors {
                var offset = 0
                while offset < tensor.byteCount {
                    let length = min(chunkBytes, tensor.byteCount - offset)
                    chunks.append(ChunkPipeline.Chunk(shard: shardIndex, tensor: tensor.spec, offset: offset, length: length))
                    offset += length
                }
            }
        }
        let pipeline = ChunkPipeline(chunks: chunks, chunkBytes: max(chunkBytes, 1), source: source)
        defer { pipeline.finish() }
        pipeline.start()
        var written = 0
        var fileBytes = 0
        var names: [String] = []
        var next = 0
        for (shardIndex, layout) in layouts.enumerated() {
            let shard = plan.shards[shardIndex]
            let writer = try SafetensorsWriter(path: staging + "/" + shard.fileName, layout: layout)
            while next < chunks.count && chunks[next].shard == shardIndex {
                if isCancelled() {
                    writer.abort()
                    throw WriteInterrupted(path: folder)
                }
                let filled = try pipeline.take()
                try writer.append(filled)
                pipeline.release()
                written += filled.count
                next += 1
                progress(written)
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
            seconds: elapsed.inSeconds)
    }
}

/// Two chunk buffers and a producer thread: the thread fills chunk i + 1 while the caller writes chunk i.
final class ChunkPipeline: @unchecked Sendable {
    struct Chunk {
        let shard: Int
        let tensor: TensorSpec
        let offset: Int
        let length: Int
    }

    private let chunks: [Chunk]
    private let buffers: [UnsafeMutableRawBufferPointer]
    private let source: any TensorByteSource
    private let freeSlots = DispatchSemaphore(value: 2)
    private let filledSlots = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var failure: (any Error)?
    private var stopped = false
    private var consumed = 0
    private let done = DispatchSemaphore(value: 0)
    private var thread: Thread?

    init(chunks: [Chunk], chunkBytes: Int, source: any TensorByteSource) {
        self.chunks = chunks
        self.buffers = [
            UnsafeMutableRawBufferPointer.allocate(byteCount: chunkBytes, alignment: 64),
            UnsafeMutableRawBufferPointer.allocate(byteCount: chunkBytes, alignment: 64),
        ]
        self.source = source
    }

    deinit {
        buffers.forEach { $0.deallocate() }
    }

    func start() {
        let thread = Thread { [self] in
            defer { done.signal() }
            for (i, chunk) in chunks.enumerated() {
                freeSlots.wait()
                if lock.withLock({ stopped }) { return }
                let slot = UnsafeMutableRawBufferPointer(rebasing: buffers[i % 2][0..<chunk.length])
                do {
                    try source.fill(chunk.tensor, byteOffset: chunk.offset, into: slot)
                } catch {
                    lock.withLock { failure = error }
                    filledSlots.signal()
                    return
                }
                filledSlots.signal()
            }
        }
        self.thread = thread
        thread.start()
    }

    /// The next filled chunk, in order; throws what the producer threw.
    func take() throws -> UnsafeRawBufferPointer {
        filledSlots.wait()
        if let failure = lock.withLock({ failure }) { throw failure }
        let chunk = chunks[consumed]
        return UnsafeRawBufferPointer(rebasing: buffers[consumed % 2][0..<chunk.length])
    }

    /// The chunk returned by `take` has been written; its buffer may be refilled.
    func release() {
        consumed += 1
        freeSlots.signal()
    }

    /// Stops the producer (if still running) and waits for it, so the buffers can be freed.
    func finish() {
        guard thread != nil else { return }
        lock.withLock { stopped = true }
        freeSlots.signal()
        freeSlots.signal()
        done.wait()
        thread = nil
    }
}
