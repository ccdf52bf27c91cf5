import Foundation
import Probes

/// The ways `bench load` reads the checkpoint's files into fresh memory with nothing else to do: the floors a
/// loader is measured against. A warm page cache is served fastest by one `pread` per core; a cold device needs
/// more reads in flight, and `O_DIRECT` skips the page cache's copy and readahead altogether. Which cold floor
/// wins depends on the device, so all three are timed and the report says which was fastest.
struct ReadFloorCase: Sendable {
    var name: String
    var description: String
    var chunk: Int
    var threads: Int
    var direct: Bool

    func measure(paths: [String]) throws -> ReadFloorResult {
        try ReadFloor.measure(paths: paths, chunk: chunk, threads: threads, direct: direct)
    }

    /// The queue depth of Run:ai's streamer (16 reader threads, 2 MiB chunks): what a cold device needs to be
    /// kept busy, where a warm cache is served as fast by one pread per core.
    static let deepQueue = 16

    /// The floors a run is compared with: O_DIRECT only when the runs read cold (it never reads the page cache,
    /// so beside a warm run it would measure the device, not the floor).
    static func forRuns(cold: Bool) -> [ReadFloorCase] {
        cold ? all : all.filter { !$0.direct }
    }

    static let all: [ReadFloorCase] = [
        ReadFloorCase(
            name: "floor",
            description:
                "8 MiB preads on 2 MiB boundaries, one per core at once, into fresh madvise(MADV_HUGEPAGE) buffers, one file after another, all kept until the last is read",
            chunk: 8 << 20, threads: ProcessInfo.processInfo.activeProcessorCount, direct: false),
        ReadFloorCase(
            name: "floor, 16 in flight",
            description:
                "2 MiB preads, 16 at once on their own threads, into fresh madvise(MADV_HUGEPAGE) buffers, one file after another, all kept until the last is read",
            chunk: 2 << 20, threads: deepQueue, direct: false),
        ReadFloorCase(
            name: "floor, O_DIRECT, 16 in flight",
            description:
                "2 MiB O_DIRECT preads (around the page cache), 16 at once on their own threads, into fresh madvise(MADV_HUGEPAGE) buffers, one file after another, all kept until the last is read",
            chunk: 2 << 20, threads: deepQueue, direct: true),
    ]
}
