import CJemalloc
import Foundation
import TestSupport
import Testing

@testable import OSLayer
@testable import Probes

#if canImport(Glibc)
import Glibc
#endif

extension MemoryMeasuringTests {
    /// jemalloc is the allocator, and its configuration and arenas read back. Serialized with every other suite that reads this process's memory (see `MemoryMeasuringTests`).
    @Suite(.serialized)
    struct JemallocTests: ProbeTestHelpers {
        // MARK: jemalloc

        @Test func jemallocIsTheActiveAllocator() throws {
            let check = JemallocStats.checkActiveAllocator()
            #expect(check.jemallocLoaded)
            #expect(
                check.servesMalloc, "thread.allocated rose by \(String(describing: check.threadAllocatedDeltaBytes))")
            #expect(
                check.mallocProvider?.contains("libjemalloc") == true, "malloc is in \(check.mallocProvider ?? "?")")
            #expect((check.statsAllocatedDeltaBytes ?? 0) >= check.probeBytes - 4 * mebibyte)
            print("[probes] allocator check: \(check)")
        }

        @Test func jemallocConfigurationAndArenas() throws {
            let configuration = JemallocStats.configuration()
            #expect(configuration.version?.hasPrefix("5.") == true)
            #expect(configuration.pageSize == 4096)
            #expect(configuration.statisticsEnabled == true)
            #expect((configuration.automaticArenaCount ?? 0) >= 1)
            #expect(configuration.oversizeThresholdBytes == 8 * mebibyte)
            #expect(configuration.dirtyDecayMilliseconds != nil)
            #expect(configuration.transparentHugePages != nil)
            #expect(configuration.threadCache != nil)
            #expect(configuration.compiledMallocConf != nil)
            #expect(configuration.environmentMallocConf == ProcessInfo.processInfo.environment["MALLOC_CONF"])

            // A private arena accounts exactly for what is allocated in it.
            let stats = try #require(JemallocStats())
            var arena: UInt32 = 0
            var length = MemoryLayout<UInt32>.size
            #expect(mallctl("arenas.create", &arena, &length, nil, 0) == 0)
            let flags = cjemalloc_flags_arena(arena)
            let block = try #require(mallocx(4 * mebibyte, flags))
            let live = stats.arenaStats(arena: arena)
            #expect(live.largeAllocatedBytes == 4 * mebibyte)
            #expect(live.smallAllocatedBytes == 0)
            #expect(live.allocatedBytes == 4 * mebibyte)
            #expect((live.activeBytes ?? 0) >= 4 * mebibyte)
            #expect(stats.allArenaStats().contains { $0.arena == arena && $0.largeAllocatedBytes == 4 * mebibyte })
            sdallocx(block, 4 * mebibyte, flags)
            #expect(stats.arenaStats(arena: arena).allocatedBytes == 0)
            #expect(JemallocStats.purgeAll())
            #expect(JemallocStats.flushThreadCache())

            // The thread's high-water mark sees a 32 MiB block that is already gone.
            #expect(JemallocStats.resetThreadPeak())
            let peakBlock = try #require(mallocx(32 * mebibyte, tcacheNone))
            sdallocx(peakBlock, 32 * mebibyte, tcacheNone)
            #expect((JemallocStats.threadPeakBytes() ?? 0) >= 32 * mebibyte)

            let global = try #require(stats.read())
            #expect(global.activeBytes >= global.allocatedBytes)
            #expect(global.residentBytes >= global.activeBytes)
            #expect(global.mappedBytes >= global.activeBytes)
            #expect(global.metadataBytes > 0)
        }
    }
}
