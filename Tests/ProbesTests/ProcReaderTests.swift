import Foundation
import TestSupport
import Testing

@testable import OSLayer
@testable import Probes

#if canImport(Glibc)
import Glibc
#endif

extension MemoryMeasuringTests {
    /// The /proc readers: status, statm and smaps_rollup parsed in bytes, fresh readings, and the deltas an allocation moves. Serialized with every other suite that reads this process's memory (see `MemoryMeasuringTests`).
    @Suite(.serialized)
    struct ProcReaderTests: ProbeTestHelpers {
        // MARK: /proc parsing

        @Test func statusParsingIsInBytesAndTolerant() {
            let text = """
                Name:\tswift
                VmPeak:\t 1000 kB
                VmSize:\t  900 kB
                VmHWM:\t    40 kB
                VmRSS:\t    30 kB
                RssAnon:\t   20 kB
                RssFile:\t   10 kB
                RssShmem:\t garbage kB
                Threads:\t4
                """
            let memory = ProcessMemory.parse(status: text)
            #expect(memory.vmPeakBytes == 1000 * 1024)
            #expect(memory.vmSizeBytes == 900 * 1024)
            #expect(memory.vmHWMBytes == 40 * 1024)
            #expect(memory.vmRSSBytes == 30 * 1024)
            #expect(memory.rssAnonBytes == 20 * 1024)
            #expect(memory.rssFileBytes == 10 * 1024)
            #expect(memory.rssShmemBytes == nil)  // malformed → nil
            // A zombie's status has no Vm*/Rss* lines; odd content never traps.
            #expect(ProcessMemory.parse(status: "Name:\tx\nState:\tZ (zombie)\n") == ProcessMemory())
            #expect(
                ProcessMemory.parse(status: "VmRSS:\n:\n\n::::\nVmRSS 12 kB\nVmHWM:\t99999999999999999999 kB")
                    == ProcessMemory())
            #expect(ProcessMemory.parse(status: "") == ProcessMemory())
            #expect(ProcessMemory.parse(status: "VmRSS:\t7").vmRSSBytes == 7)  // no unit: taken as is
            #expect(ProcessMemory.parse(status: "VmRSS:\t7 MB").vmRSSBytes == nil)  // unknown unit
        }

        /// statm is pages: "size resident shared text lib data dt"; RssAnon = resident − shared; no VmHWM.
        @Test func statmParsing() {
            func parse(_ text: String) -> ProcessMemory {
                Array(text.utf8).withUnsafeBytes { ProcessMemory.parse(statm: $0) }
            }
            let page = Int(getpagesize())
            let memory = parse("100 50 20 1 0 30 0\n")
            #expect(memory.vmSizeBytes == 100 * page)
            #expect(memory.vmRSSBytes == 50 * page)
            #expect(memory.rssFileBytes == 20 * page)
            #expect(memory.rssAnonBytes == 30 * page)
            #expect(memory.vmHWMBytes == nil)
            // Too few fields, shared above resident, or a number past Int: nothing, never a trap.
            #expect(parse("100 50") == ProcessMemory())
            #expect(parse("100 20 50 1 0 0 0") == ProcessMemory())
            #expect(parse("1 99999999999999999999 1") == ProcessMemory())
            #expect(parse("") == ProcessMemory())
        }

        @Test func smapsRollupParsing() throws {
            let text = """
                55c72af2a000-7ffc80a41000 ---p 00000000 00:00 0                          [rollup]
                Rss:                1764 kB
                Pss:                 521 kB
                Pss_Dirty:           112 kB
                Pss_Anon:            112 kB
                Pss_File:            409 kB
                Pss_Shmem:             0 kB
                Anonymous:           112 kB
                AnonHugePages:      2048 kB
                """
            let rollup = SmapsRollup.parse(text: text)
            let read: [Int?] = [
                rollup.rssBytes, rollup.pssBytes, rollup.pssAnonBytes, rollup.pssFileBytes, rollup.pssShmemBytes,
                rollup.anonymousBytes, rollup.anonHugePagesBytes,
            ]
            let expected: [Int?] = [1_806_336, 533_504, 114_688, 418_816, 0, 114_688, 2_097_152]
            #expect(read == expected)
            let live = try ProcessMemory.smapsRollup()
            #expect((live.rssBytes ?? 0) > 0)
            #expect((live.pssBytes ?? 0) > 0)
            #expect(live.pssAnonBytes != nil)  // Linux ≥ 5.9 here
        }

        @Test func statusReaderIsFreshAndConsistent() throws {
            let reader = try ProcessMemoryReader()
            let first = try reader.read()
            let rss = try #require(first.vmRSSBytes)
            let anon = try #require(first.rssAnonBytes)
            let file = try #require(first.rssFileBytes)
            let shmem = try #require(first.rssShmemBytes)
            #expect(rss == anon + file + shmem)  // the kernel prints VmRSS as exactly this sum
            #expect(try #require(first.vmHWMBytes) >= rss)
            #expect(try #require(first.vmSizeBytes) >= rss)
            #expect(try #require(first.vmPeakBytes) >= first.vmSizeBytes ?? 0)
            // A reader whose buffer starts too small grows it and still returns the whole file.
            let small = try ProcFileReader(path: "/proc/self/status", initialCapacity: 256)
            let smallCount = try small.read { $0.count }
            let whole = try readWholeFile("/proc/self/status")
            #expect(smallCount > 256)
            #expect(abs(smallCount - whole.count) <= 16)  // same text; a figure's digit count may change between reads
            #expect(throws: SystemCallError.self) { try ProcessMemoryReader(pid: 0x7fff_fff0) }
            // The same open descriptor sees new figures after 64 MiB is touched (pread at 0 regenerates the file).
            let ok = try withRetries {
                let before = try #require(try reader.read().rssAnonBytes)
                let block = try allocateTouched(64 * mebibyte)
                let during = try #require(try reader.read().rssAnonBytes)
                free(block, 64 * mebibyte)
                return during - before >= 60 * mebibyte
            }
            #expect(ok)
        }

        // MARK: Memory deltas

        /// 256 MiB through jemalloc: RssAnon +256 MiB ± 8 MiB and stats.allocated ≥ +256 MiB while live; after
        /// free + purge RssAnon is back within 8 MiB.
        @Test func jemallocAllocationMovesRssAnonAndStats() throws {
            let stats = try #require(JemallocStats())
            let size = 256 * mebibyte
            let tolerance = 8 * mebibyte
            var report = ""
            var attempts = 0
            let ok = try withRetries {
                attempts += 1
                let before = try #require(try status().rssAnonBytes)
                let allocatedBefore = try #require(stats.read()).allocatedBytes
                let threadBefore = try #require(JemallocStats.threadAllocatedBytes())
                let block = try allocateTouched(size)
                let during = try #require(try status().rssAnonBytes)
                let allocatedDuring = try #require(stats.read()).allocatedBytes
                let threadDuring = try #require(JemallocStats.threadAllocatedBytes())
                free(block, size)
                let after = try #require(try status().rssAnonBytes)
                report =
                    "attempt \(attempts): RssAnon \(before) → \(during) → \(after); stats.allocated +\(allocatedDuring - allocatedBefore)"
                return abs((during - before) - size) <= tolerance
                    // stats.allocated is the whole process's: a suite running beside this one may free a little meanwhile.
                    && allocatedDuring - allocatedBefore >= size - tolerance
                    && threadDuring - threadBefore >= size
                    && abs(after - before) <= tolerance
            }
            #expect(ok, "\(report)")
            print("[probes] 256 MiB: \(report)")
        }

        /// After resetPeakRSS, VmHWM ≤ VmRSS + 2 MiB; after touching 128 MiB, VmHWM ≥ reset-time VmRSS + 128 MiB.
        @Test func peakResetAndRise() throws {
            var report = ""
            let ok = try withRetries {
                #expect(ProcessMemory.resetPeakRSS())
                let reset = try status()
                let rss = try #require(reset.vmRSSBytes)
                let hwm = try #require(reset.vmHWMBytes)
                let block = try allocateTouched(128 * mebibyte)
                let raised = try #require(try status().vmHWMBytes)
                free(block, 128 * mebibyte)
                let afterFree = try status()
                report =
                    "after reset VmRSS \(rss) VmHWM \(hwm); after 128 MiB VmHWM \(raised); after free VmHWM \(afterFree.vmHWMBytes ?? -1)"
                return hwm <= rss + 2 * mebibyte
                    && raised >= rss + 128 * mebibyte - 1 * mebibyte  // ≤ 1 MiB of lazily-counted pages
                    // The peak survives the free (to within the kernel's per-CPU counter slack: hiwater_rss is
                    // folded from an approximate RSS read at unmap time).
                    && (afterFree.vmHWMBytes ?? 0) >= raised - 1 * mebibyte
            }
            #expect(ok, "\(report)")
        }
    }
}
