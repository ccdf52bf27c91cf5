import Checkpoint
import Foundation
import Synchronization

/// A thread that keeps the device busy ahead of a shard's readers: it advises the kernel
/// (`posix_fadvise(WILLNEED)`) to read the next few MiB into the page cache, then the next, staying at most
/// ``windowBytes`` ahead of where the readers are, so that a cold shard has many reads in flight while the
/// readers (one per core) copy out what has arrived. Started only for a cold shard that is not read around the
/// page cache (``DirectShardRead``, ``ShardStream``'s direct converting pieces): the file system refused
/// `O_DIRECT`, or the staging buffer has no room for 16 slices. A warm shard's reads wait on nothing.
///
/// Why advice and not more reader threads: a reader thread waiting on the device holds nothing but a stack,
/// yet 16 of them slowed a cold 5.45 GB load here (3.12 s against 2.67 s); one thread of advice keeps as
/// much in flight without taking the cores from the copies. The ledger and the memory the process owns are
/// unchanged: the pages it brings in are the page cache's, as any read's are.
final class ShardReadAhead: Sendable {
    /// How far ahead of the readers the advice may run. Enough to cover the device's latency at its rate
    /// many times over; small beside any machine that can hold the model.
    static let windowBytes = 128 << 20
    /// One advice: Linux reads at most about this much per `posix_fadvise` call (`max_sectors_kb` is 4 MiB here).
    static let stepBytes = 4 << 20

    private let stopped = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)

    /// Starts advising `range` (absolute file offsets) of `file`; `position` says where the readers are.
    init(file: SafetensorsFile, range: Range<Int>, position: @escaping @Sendable () -> Int) {
        let thread = Thread { [self] in
            var ahead = range.lowerBound
            while ahead < range.upperBound && !stopped.load(ordering: .relaxed) {
                if ahead - position() >= Self.windowBytes {
                    usleep(500)
                    continue
                }
                let count = min(Self.stepBytes, range.upperBound - ahead)
                file.adviseWillNeed(absoluteOffset: ahead, count: count)
                ahead += count
            }
            finished.signal()
        }
        thread.start()
    }

    /// Stops the advice and waits for the thread to end (it must not outlive the file it advises on).
    func stop() {
        stopped.store(true, ordering: .relaxed)
        finished.wait()
    }
}
