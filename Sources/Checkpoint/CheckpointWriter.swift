import Dispatch
import Foundation
import OSLayer
import OrderedCollections
import TensorEngine

/// Supplies tensor bytes to a writer, a chunk at a time, so no writer ever holds a whole tensor or
/// checkpoint: `fill` is called with consecutive byte ranges of one tensor, in the order the files store them.
package protocol TensorByteSource {
    /// Called from the writer's producer thread (one call at a time).
    func fill(_ tensor: TensorSpec, byteOffset: Int, into destination: UnsafeMutableRawBufferPointer) throws
}

/// A run was interrupted (Ctrl-C) while writing; everything partial was removed.
package struct WriteInterrupted: ReportableError, Equatable {
    package let path: String
    package init(path: String) { self.path = path }
    package var description: String { "\(path): interrupted; the partial checkpoint was removed" }
    package var category: FailureCategory { .interrupted }
}

/// Writes a checkpoint folder the Hugging Face way (`save_pretrained` + `safe_serialization`): the shard files
/// of a `ShardPlan`, each with `__metadata__ = {"format": "pt"}`, the index when there is more than one, and
/// any extra files (config.json).
///
/// Everything is written into a hidden staging folder beside the destination, which is renamed onto the
/// destination only when complete: a failed or interrupted write leaves nothing behind but the staging
/// folder's removal.
package struct CheckpointWriter {
    package struct Summary: Sendable, Equatable {
        package let folder: String
        package let files: [String]
        package let tensorBytes: Int
        package let fileBytes: Int
        package let seconds: Double
    }

    /// The metadata every shard carries.
    package static let shardMetadata: OrderedDictionary<String, String> = ["format": "pt"]

    package let plan: ShardPlan
    /// Bytes per `fill` call; the writer's only large buffer.
    package var chunkBytes: Int
    /// Call `fsync` on each file before it is renamed into place.
    package var sync: Bool

    package init(plan: ShardPlan, chunkBytes: Int = 32 << 20, sync: Bool = true) {
        self.plan = plan
        self.chunkBytes = chunkBytes
        self.sync = sync
    }

    /// Writes the checkpoint into `folder`, which must not exist or be empty.
    /// `extraFiles` are (name, bytes) written beside the shards. `progress` receives tensor bytes written so far;
    /// `isCancelled` is polled between chunks. Everything is written into a staging folder renamed onto
    /// `folder` only when complete; on every failure (an error, a full disk, `isCancelled`) it is removed.
    @discardableResult
    package func write(
        to folder: String, source: some TensorByteSource, extraFiles: [(name: String, bytes: [UInt8])] = [],
        progress: (Int) -> Void = { _ in }, isCancelled: () -> Bool = { false }
    ) throws -> Summary {
        let start = ContinuousClock.now
        let folder = try Self.destination(folder)
        let staging = try Self.makeStaging(for: folder)
        var committed = false
        defer { if !committed { try? FileManager.default.removeItem(atPath: staging) } }
        var (names, written, fileBytes) = try writeShards(
            into: staging, folder: folder, source: source, progress: progress, isCancelled: isCancelled)
        if let index = plan.index {
            try AtomicFile.write(index.serialized(), to: staging + "/" + ShardIndex.fileName, sync: sync)
            names.append(ShardIndex.fileName)
        }
        for extra in extraFiles {
            try AtomicFile.write(extra.bytes, to: staging + "/" + extra.name, sync: sync)
            names.append(extra.name)
        }
        if isCancelled() { throw WriteInterrupted(path: folder) }
        // Proved empty before.
        if FileManager.default.fileExists(atPath: folder) { try? FileManager.default.removeItem(atPath: folder) }
        guard rename(staging, folder) == 0 else {
            throw FileIOError(path: folder, operation: "rename \(staging)", reason: String(cString: strerror(errno)))
        }
        committed = true
        return Summary(
            folder: folder, files: names, tensorBytes: written, fileBytes: fileBytes,
            seconds: (ContinuousClock.now - start).inSeconds)
    }

    /// The destination as a plain path: no trailing slash, `.`/`..` resolved (the staging folder must be a
    /// sibling of the real destination, not inside it); it must not exist or be an empty folder.
    static func destination(_ given: String) throws -> String {
        var folder = given
        while folder.count > 1, folder.hasSuffix("/") { folder.removeLast() }
        if folder == "." || folder == ".." || folder.hasSuffix("/.") || folder.hasSuffix("/..") {
            folder = Checkpoint.realPath(folder) ?? folder
        }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory) {
            let contents = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? ["?"]
            guard isDirectory.boolValue, contents.isEmpty else {
                throw UsageError(
                    "\(folder) already exists and is not an empty folder; choose another --out or remove it")
            }
        }
        return folder
    }

    /// `.NAME.partial-PID` beside the destination, fresh.
    static func makeStaging(for folder: String) throws -> String {
        let parent = AtomicFile.folder(of: folder)
        let base = folder.split(separator: "/").last.map(String.init) ?? folder
        let staging = (parent.isEmpty ? "" : parent + "/") + ".\(base).partial-\(getpid())"
        try? FileManager.default.removeItem(atPath: staging)
        do {
            try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: true)
        } catch {
            throw FileIOError(path: staging, operation: "mkdir", reason: "\(error.localizedDescription)")
        }
        return staging
    }

    /// Filling (CPU: generating or converting) and writing (I/O) overlap: a producer thread fills one of two
    /// chunk buffers while this thread writes the other. Returns the files written and the byte counts.
    func writeShards(
        into staging: String, folder: String, source: some TensorByteSource, progress: (Int) -> Void,
        isCancelled: () -> Bool
    ) throws -> ([String], Int, Int) {
        let layouts = try plan.shards.map {
            try SafetensorsLayout(tensors: $0.tensors, metadata: Self.shardMetadata, file: $0.fileName)
        }
        var chunks: [ChunkPipeline.Chunk] = []
        for (shardIndex, layout) in layouts.enumerated() {
            for tensor in layout.tensors {
                for offset in stride(from: 0, to: tensor.byteCount, by: max(chunkBytes, 1)) {
                    chunks.append(
                        ChunkPipeline.Chunk(
                            shard: shardIndex, tensor: tensor.spec, offset: offset,
                            length: min(chunkBytes, tensor.byteCount - offset)))
                }
            }
        }
        let pipeline = ChunkPipeline(chunks: chunks, chunkBytes: max(chunkBytes, 1), source: source)
        defer { pipeline.finish() }
        pipeline.start()
        var (written, fileBytes, names, next) = (0, 0, [String](), 0)
        for (shardIndex, layout) in layouts.enumerated() {
            let writer = try SafetensorsWriter(path: staging + "/" + plan.shards[shardIndex].fileName, layout: layout)
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
            names.append(plan.shards[shardIndex].fileName)
        }
        return (names, written, fileBytes)
    }
}

/// Two chunk buffers and a producer thread: the thread fills chunk i + 1 while the caller writes chunk i.
///
/// The hand-off is counted under one `NSCondition` rather than two `DispatchSemaphore`s: libdispatch traps
/// ("semaphore deallocated while in use") when a semaphore is released below its initial value, which an
/// interrupted or failed write reaches; a condition has no such state to trip over at `deinit`.
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
    private let condition = NSCondition()
    /// Chunks filled and not yet taken; chunks taken and released; whether the producer must stop; whether it did.
    private var filled = 0
    private var released = 0
    private var stopped = false
    private var producerDone = false
    private var failure: (any Error)?
    private var consumed = 0
    private var started = false

    init(chunks: [Chunk], chunkBytes: Int, source: any TensorByteSource) {
        self.chunks = chunks
        self.buffers = [
            UnsafeMutableRawBufferPointer.allocate(byteCount: chunkBytes, alignment: 64),
            UnsafeMutableRawBufferPointer.allocate(byteCount: chunkBytes, alignment: 64),
        ]
        self.source = source
    }

    deinit {
        for buffer in buffers { buffer.deallocate() }
    }

    func start() {
        started = true
        let thread = Thread { [self] in
            for (i, chunk) in chunks.enumerated() {
                // Chunk i reuses the buffer of chunk i − 2: wait until that one was released.
                condition.lock()
                while !stopped && i - released >= 2 { condition.wait() }
                let stop = stopped
                condition.unlock()
                if stop { break }
                let slot = UnsafeMutableRawBufferPointer(rebasing: buffers[i % 2][0..<chunk.length])
                var error: (any Error)?
                do { try source.fill(chunk.tensor, byteOffset: chunk.offset, into: slot) } catch let thrown {
                    error = thrown
                }
                condition.lock()
                if let error { failure = error } else { filled += 1 }
                condition.broadcast()
                condition.unlock()
                if error != nil { break }
            }
            condition.lock()
            producerDone = true
            condition.broadcast()
            condition.unlock()
        }
        thread.start()
    }

    /// The next filled chunk, in order; throws what the producer threw.
    func take() throws -> UnsafeRawBufferPointer {
        condition.lock()
        while filled == 0 && failure == nil && !producerDone { condition.wait() }
        let failure = self.failure
        let available = filled > 0
        if available { filled -= 1 }
        condition.unlock()
        if let failure { throw failure }
        guard available else {
            throw FileIOError(
                path: "(generator)", operation: "fill", reason: "the producer stopped before chunk \(consumed)")
        }
        let chunk = chunks[consumed]
        return UnsafeRawBufferPointer(rebasing: buffers[consumed % 2][0..<chunk.length])
    }

    /// The chunk returned by `take` has been written; its buffer may be refilled.
    func release() {
        consumed += 1
        condition.lock()
        released += 1
        condition.broadcast()
        condition.unlock()
    }

    /// Stops the producer (if still running) and waits for it, so the buffers can be freed.
    func finish() {
        guard started else { return }
        condition.lock()
        stopped = true
        condition.broadcast()
        while !producerDone { condition.wait() }
        condition.unlock()
        started = false
    }
}
