import Checkpoint
import Foundation
import OSLayer
import Probes
import Synchronization
import TensorEngine

/// A cold shard read around the page cache (`O_DIRECT`), each large tensor straight into its own memory.
///
/// Why: through the page cache a cold read fills memory twice — the cache's pages, then the tensor's — and on a
/// VM whose host takes freed memory back both are paid at the host's first-touch rate; `O_DIRECT` with 16 reads
/// in flight was the fastest cold floor here (`bench load --cache cold`, 6.66 GB: 3.03 s, against 5.73 s for one
/// pread per core through the cache). The catch: a direct read needs its file offset and its memory address
/// both on 4 KiB boundaries, and a safetensors tensor starts wherever the header's length puts it, while its
/// memory (2 MiB-aligned) starts on a boundary. So for a tensor at file offset F of n bytes: the aligned range
/// [Y, Y + L) — Y the first 4 KiB boundary at or after F, L the whole 4 KiB blocks that fit — is read to the
/// start of the tensor's own memory, in 2 MiB pieces, 16 in flight; once the last piece is in, the bytes are
/// moved up by Y − F within the tensor (`memmove`), and the few bytes before Y and after Y + L are read directly
/// through a buffer of a few KiB. No memory beyond the tensors' own is held, so the ledger and every figure are
/// the page-cache path's; the page cache is left as it was (nothing of these tensors is cached afterwards).
///
/// Used only when the shard is cold (less than half of it cached: a warm shard is served faster from memory),
/// nothing converts, and the file system takes `O_DIRECT`; tensors under 2 MiB are read directly in small pieces
/// (through the page cache, each small read would set off the kernel's readahead of megabytes nothing uses).
enum DirectShardRead {
    static let pieceBytes = 2 << 20
    /// The reads in flight: Run:ai's streamer's depth, and the cold floor's.
    static let inFlight = 16
    static let minimumTensorBytes = HostAllocator.hugePageSize
    /// A smaller tensor (a norm's weights), or a large one not 4 KiB-aligned in memory, is read in pieces of
    /// this much through a buffer of its own, freed at once: at most 16 × 72 KiB of memory outside the ledger
    /// for a moment.
    static let smallPieceBytes = 64 << 10

    /// Whether the items' bytes are cold enough to read around the page cache: less than half of them resident.
    /// Only their range is checked (`mincore`), so a caller reading one tensor at a time (device-map) pays for
    /// that tensor's pages, not the shard's.
    static func isCold(_ items: [ShardStream.Item], in file: SafetensorsFile) -> Bool {
        let starts = items.map { file.header.dataStart + $0.stored.begin }
        let ends = items.map { file.header.dataStart + $0.stored.begin + $0.stored.byteCount }
        guard let first = starts.min(), let end = ends.max(), end > first,
            let resident = try? PageCache.residentBytes(path: file.path, range: first..<end)
        else { return false }
        return resident < (end - first) / 2
    }

    /// Reads every item (none converting) from `file`; false, with nothing to trust in the tensors, when
    /// the file system or the device refuses direct reads (the caller then reads the shard the usual way).
    /// Reads nothing and returns false as well when no tensor is large enough. The caller has found the items
    /// cold (``isCold(_:in:)``).
    static func load(_ items: [ShardStream.Item], from file: SafetensorsFile) throws -> Bool {
        let plan = DirectPlan(items, dataStart: file.header.dataStart)
        guard !plan.tensors.isEmpty, let direct = DirectFileReader(path: file.path) else {
            return false
        }
        let outcome = Mutex<DirectOutcome>(.read)
        let next = Atomic<Int>(0)
        let shared = DisjointAccess(items)
        let work: @Sendable (Int) -> Void = { _ in
            while case let index = next.wrappingAdd(1, ordering: .relaxed).oldValue, index < plan.work.count {
                guard outcome.withLock({ $0.isRead }) else { return }
                do {
                    try perform(plan.work[index], plan: plan, items: shared.value, file: file, direct: direct)
                } catch let error as DirectFileReader.Refused {
                    outcome.withLock { if $0.isRead { $0 = .refused(error) } }
                } catch {
                    outcome.withLock { if $0.isRead { $0 = .failed(error) } }
                }
            }
        }
        onThreads(min(inFlight, plan.work.count), work)
        switch outcome.withLock({ $0 }) {
        case .read: return true
        case .refused: return false
        case .failed(let error): throw error
        }
    }

    private static func perform(
        _ work: DirectPlan.Work, plan: DirectPlan, items: [ShardStream.Item], file: SafetensorsFile,
        direct: DirectFileReader
    ) throws {
        switch work {
        case .small(let item, let range):
            let destination = items[item].tensor.storage.mutableBytes
            try direct.readUnaligned(
                absoluteOffset: file.header.dataStart + items[item].stored.begin + range.lowerBound,
                into: UnsafeMutableRawBufferPointer(rebasing: destination[range]))
        case .direct(let tensor, let piece):
            let layout = plan.tensors[tensor]
            let memory = items[layout.item].tensor.storage.mutableBytes
            let range = piece * pieceBytes..<min(layout.alignedCount, (piece + 1) * pieceBytes)
            try direct.read(
                absoluteOffset: layout.alignedOffset + range.lowerBound,
                into: UnsafeMutableRawBufferPointer(rebasing: memory[range]))
            if layout.remaining.wrappingSubtract(1, ordering: .acquiringAndReleasing).newValue == 0 {
                try settle(layout, item: items[layout.item], direct: direct, dataStart: file.header.dataStart)
            }
        }
    }

    /// The tensor's aligned bytes are at the start of its memory: moves them up into place and reads the head
    /// and tail around them, also directly.
    private static func settle(
        _ layout: DirectPlan.Tensor, item: ShardStream.Item, direct: DirectFileReader, dataStart: Int
    ) throws {
        let memory = item.tensor.storage.mutableBytes
        guard let base = memory.baseAddress else { return }
        let shift = layout.shift
        if shift > 0 { memmove(base + shift, base, layout.alignedCount) }
        let start = dataStart + item.stored.begin
        for range in [0..<shift, (shift + layout.alignedCount)..<memory.count] where !range.isEmpty {
            try direct.readUnaligned(
                absoluteOffset: start + range.lowerBound, into: UnsafeMutableRawBufferPointer(rebasing: memory[range]))
        }
    }

    /// Runs `work` on `count` threads of their own (most of them wait on the device) and waits for all.
    static func onThreads(_ count: Int, _ work: @escaping @Sendable (Int) -> Void) {
        let group = DispatchGroup()
        for index in 0..<count {
            group.enter()
            Thread {
                work(index)
                group.leave()
            }.start()
        }
        group.wait()
    }

    private enum DirectOutcome {
        case read
        case refused(DirectFileReader.Refused)
        case failed(any Error)

        var isRead: Bool { if case .read = self { true } else { false } }
    }
}

/// What ``DirectShardRead`` reads, and where: each large tensor's aligned range in pieces, the rest whole.
struct DirectPlan: Sendable {
    enum Work: Sendable {
        /// Piece `piece` of the aligned range of `tensors[tensor]`.
        case direct(tensor: Int, piece: Int)
        /// Bytes `range` (at most ``DirectShardRead/smallPieceBytes``) of item `item`, through a small buffer.
        case small(item: Int, range: Range<Int>)
    }

    /// A tensor read directly: its aligned file range, the shift that puts it in place, and the pieces left.
    final class Tensor: Sendable {
        let item: Int
        let alignedOffset: Int
        let alignedCount: Int
        let shift: Int
        let remaining: Atomic<Int>

        init(item: Int, alignedOffset: Int, alignedCount: Int, shift: Int, pieces: Int) {
            self.item = item
            self.alignedOffset = alignedOffset
            self.alignedCount = alignedCount
            self.shift = shift
            remaining = Atomic(pieces)
        }
    }

    var tensors: [Tensor] = []
    var work: [Work] = []

    init(_ items: [ShardStream.Item], dataStart: Int) {
        let alignment = DirectIO.alignment
        for (index, item) in items.enumerated() {
            let count = item.stored.byteCount
            let start = dataStart + item.stored.begin
            let aligned = DirectIO.roundedUp(start)
            let alignedCount = max(0, count - (aligned - start)) / alignment * alignment
            let address = Int(bitPattern: item.tensor.storage.mutableBytes.baseAddress)
            guard count >= DirectShardRead.minimumTensorBytes, address % alignment == 0, alignedCount > 0 else {
                let piece = DirectShardRead.smallPieceBytes
                for begin in stride(from: 0, to: count, by: piece) {
                    work.append(.small(item: index, range: begin..<min(count, begin + piece)))
                }
                continue
            }
            let pieces = (alignedCount + DirectShardRead.pieceBytes - 1) / DirectShardRead.pieceBytes
            work += (0..<pieces).map { .direct(tensor: tensors.count, piece: $0) }
            tensors.append(
                Tensor(
                    item: index, alignedOffset: aligned, alignedCount: alignedCount, shift: aligned - start,
                    pieces: pieces))
        }
    }
}
