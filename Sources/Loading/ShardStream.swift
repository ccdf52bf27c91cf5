import Checkpoint
import Foundation
import OSLayer
import Synchronization
import TensorEngine

/// One shard's tensors read into place as a single stream of pieces that every core takes from, in data
/// order — the read floor's method (8 MiB `pread`s on 2 MiB boundaries, one per core at a time).
///
/// Reading tensor by tensor leaves a core idle on every tensor too small to split (a 10 MB attention
/// projection) and pays a thread hand-off per tensor; one stream of pieces over the whole shard keeps both
/// cores reading. A tensor stored in its target dtype is read straight into its bytes. One that converts is
/// read a small piece at a time into the worker's own slice of the staging buffer and converted from there
/// while the piece is still in the core's cache (``conversionPieceBytes``), so the conversion costs no second
/// pass over memory.
struct ShardStream {
    /// A tensor to fill and where its bytes are stored.
    struct Item {
        let stored: StoredTensor
        let tensor: Tensor
    }

    /// A piece of one item: a byte range of its stored bytes.
    private struct Piece {
        let item: Int
        let range: Range<Int>
    }

    /// Same-dtype pieces: ``SafetensorsFile/parallelChunkBytes`` (8 MiB), on 2 MiB boundaries from the tensor's
    /// start (2 MiB-aligned for tensors of 2 MiB or more, so each piece faults whole huge pages).
    static let readPieceBytes = SafetensorsFile.parallelChunkBytes
    /// Converting pieces: 256 KiB of source, which with its converted bytes stays in a core's 512 KiB–1 MiB L2.
    static let conversionPieceBytes = 256 << 10
    static let workers = ProcessInfo.processInfo.activeProcessorCount

    /// Reads every item from `file`; converting ones go through `staging` (required when any converts),
    /// which is split into one slice per worker.
    ///
    /// A cold shard is read around the page cache: one that does not convert by ``DirectShardRead``; one that
    /// does, 16 workers at once, each converting piece read `O_DIRECT` as the whole 4 KiB blocks around it into
    /// the worker's slice (4 KiB-aligned, two blocks larger than a piece) and converted from there.
    static func load(
        _ items: [Item], from file: SafetensorsFile, staging: UnsafeMutableRawBufferPointer?, allowDirect: Bool = true
    ) throws {
        let converts = items.contains { $0.stored.dtype != $0.tensor.dtype }
        // Checked once (mincore over the items' bytes): it decides the direct paths and the read-ahead.
        let cold = DirectShardRead.isCold(items, in: file)
        if !converts, allowDirect, cold, try DirectShardRead.load(items, from: file) { return }
        let direct = converts && allowDirect && cold ? directReader(file, staging: staging) : nil
        let workerCount =
            direct != nil
            ? min(DirectShardRead.inFlight, (staging?.count ?? 0) / directMinimumSliceBytes)
            : converts ? max(1, min(workers, (staging?.count ?? 0) / minimumSliceBytes)) : workers
        let slice =
            direct != nil
            ? (staging?.count ?? 0) / workerCount / DirectIO.alignment * DirectIO.alignment
            : converts ? (staging?.count ?? 0) / workerCount : 0
        let pieces = Self.pieces(items, sliceBytes: direct != nil ? slice - 2 * DirectIO.alignment : slice)
        guard !pieces.isEmpty else { return }
        do {
            try read(
                pieces, of: items, from: file, staging: staging, slice: slice, workers: workerCount, direct: direct,
                readAhead: cold && direct == nil)
        } catch is DirectFileReader.Refused {
            try load(items, from: file, staging: staging, allowDirect: false)
        }
    }

    /// A direct reader for a cold shard that converts, when staging has room for a slice per read in flight.
    private static func directReader(_ file: SafetensorsFile, staging: UnsafeMutableRawBufferPointer?)
        -> DirectFileReader?
    {
        guard let staging, let base = staging.baseAddress, Int(bitPattern: base) % DirectIO.alignment == 0,
            staging.count / directMinimumSliceBytes >= DirectShardRead.inFlight
        else { return nil }
        return DirectFileReader(path: file.path)
    }

    /// A direct worker's slice: room for a 64 KiB piece and the two partial blocks around it.
    static let directMinimumSliceBytes = minimumSliceBytes + 2 * DirectIO.alignment

    private static func read(
        _ pieces: [Piece], of items: [Item], from file: SafetensorsFile, staging: UnsafeMutableRawBufferPointer?,
        slice: Int, workers workerCount: Int, direct: DirectFileReader?, readAhead wantsReadAhead: Bool
    ) throws {
        let cursor = Cursor()
        let readAhead = wantsReadAhead ? Self.readAhead(pieces, of: items, in: file, cursor: cursor) : nil
        defer { readAhead?.stop() }
        let failure = Mutex<(any Error)?>(nil)
        let shared = DisjointAccess((items, staging))
        let run: @Sendable (Int) -> Void = { worker in
            let (items, staging) = shared.value
            let own = staging.map {
                UnsafeMutableRawBufferPointer(rebasing: $0[(worker * slice)..<((worker + 1) * slice)])
            }
            while true {
                let index = cursor.next.wrappingAdd(1, ordering: .relaxed).oldValue
                guard index < pieces.count, failure.withLock({ $0 == nil }) else { return }
                do {
                    try fill(pieces[index], of: items[pieces[index].item], from: file, staging: own, direct: direct)
                } catch {
                    failure.withLock { if $0 == nil { $0 = error } }
                }
            }
        }
        if workerCount == 1 || pieces.count == 1 {
            run(0)
        } else if direct != nil {
            DirectShardRead.onThreads(workerCount, run)
        } else {
            DispatchQueue.concurrentPerform(iterations: workerCount, execute: run)
        }
        if let error = failure.withLock({ $0 }) { throw error }
    }

    /// The index of the next piece a worker takes, shared with the read-ahead thread.
    private final class Cursor: Sendable {
        let next = Atomic<Int>(0)
    }

    /// A read-ahead over the pieces' bytes, in data order, when they span more than one advice
    /// (``ShardReadAhead``; asked for only where the shard is cold and not read directly); nil otherwise.
    private static func readAhead(_ pieces: [Piece], of items: [Item], in file: SafetensorsFile, cursor: Cursor)
        -> ShardReadAhead?
    {
        let offsets = pieces.map { file.header.dataStart + items[$0.item].stored.begin + $0.range.lowerBound }
        // Callers pass items in data order; min and max keep the range well-formed should one not.
        let ends = pieces.map { file.header.dataStart + items[$0.item].stored.begin + $0.range.upperBound }
        guard let first = offsets.min(), let end = ends.max(), end - first > ShardReadAhead.stepBytes else {
            return nil
        }
        return ShardReadAhead(file: file, range: first..<end) {
            offsets[min(cursor.next.load(ordering: .relaxed), offsets.count - 1)]
        }
    }

    /// One tensor, converted through `staging` (the device-map path, which places tensors one at a time).
    static func convert(
        _ stored: StoredTensor, from file: SafetensorsFile, through staging: UnsafeMutableRawBufferPointer,
        into tensor: Tensor
    ) throws {
        try load([Item(stored: stored, tensor: tensor)], from: file, staging: staging)
    }

    /// A converting piece's stored bytes in the worker's slice: read through the page cache to the slice's
    /// start, or directly as the 4 KiB blocks around them (the slice is 4 KiB-aligned and two blocks larger).
    private static func readSource(
        _ piece: Piece, of item: Item, from file: SafetensorsFile, staging: UnsafeMutableRawBufferPointer,
        direct: DirectFileReader?
    ) throws -> UnsafeMutableRawBufferPointer {
        guard let direct else {
            let source = UnsafeMutableRawBufferPointer(rebasing: staging[0..<piece.range.count])
            try file.read(item.stored, range: piece.range, into: source, parallel: false)
            return source
        }
        let offset = file.header.dataStart + item.stored.begin + piece.range.lowerBound
        let first = offset / DirectIO.alignment * DirectIO.alignment
        let end = DirectIO.roundedUp(offset + piece.range.count)
        try direct.read(
            absoluteOffset: first, into: UnsafeMutableRawBufferPointer(rebasing: staging[0..<(end - first)]),
            required: offset + piece.range.count - first)
        return UnsafeMutableRawBufferPointer(rebasing: staging[(offset - first)..<(offset - first + piece.range.count)])
    }

    /// A worker's staging slice is at least 64 KiB (a converting tensor smaller than that uses one worker).
    static let minimumSliceBytes = 64 << 10

    private static func pieces(_ items: [Item], sliceBytes: Int) -> [Piece] {
        var pieces: [Piece] = []
        for (index, item) in items.enumerated() {
            let total = item.stored.byteCount
            var size = readPieceBytes
            if item.stored.dtype != item.tensor.dtype, let width = item.stored.dtype.byteWidth {
                size = max(width, min(conversionPieceBytes, sliceBytes) / width * width)
            }
            for start in stride(from: 0, to: total, by: size) {
                pieces.append(Piece(item: index, range: start..<min(total, start + size)))
            }
        }
        return pieces
    }

    private static func fill(
        _ piece: Piece, of item: Item, from file: SafetensorsFile, staging: UnsafeMutableRawBufferPointer?,
        direct: DirectFileReader? = nil
    ) throws {
        let destination = item.tensor.storage.mutableBytes
        if item.stored.dtype == item.tensor.dtype {
            try file.read(
                item.stored, range: piece.range,
                into: UnsafeMutableRawBufferPointer(rebasing: destination[piece.range]), parallel: false)
            return
        }
        guard let staging, let sourceWidth = item.stored.dtype.byteWidth, let targetWidth = item.tensor.dtype.byteWidth
        else {
            preconditionFailure("a converting tensor needs staging and whole-byte dtypes")
        }
        let source = try readSource(piece, of: item, from: file, staging: staging, direct: direct)
        let first = piece.range.lowerBound / sourceWidth * targetWidth
        let count = piece.range.count / sourceWidth * targetWidth
        DTypeConversion.convert(
            UnsafeRawBufferPointer(source), from: item.stored.dtype,
            into: UnsafeMutableRawBufferPointer(rebasing: destination[first..<(first + count)]), to: item.tensor.dtype,
            threads: 1)
    }
}
