import CJemalloc
import Foundation
import Synchronization
import Testing

@testable import Harness
@testable import OSLayer
@testable import Probes
@testable import ResultsFormat

#if canImport(Glibc)
import Glibc
#endif

private let mebibyte = 1024 * 1024
/// `MALLOCX_TCACHE_NONE` (= `MALLOCX_TCACHE(-1)` = 1 << 8; the macro does not import into Swift).
private let tcacheNone: Int32 = 1 << 8

/// Probes tests. Serialized: several measure process-wide memory deltas (RssAnon, VmHWM, stats.allocated), so
/// they must not overlap each other. Tests from other suites may still run in parallel in a full `swift test`;
/// the RSS-delta checks therefore allow a few MiB and retry a disturbed measurement (at most 3 attempts, each
/// with the same exact expectation).
extension MemoryMeasuringTests {
    @Suite(.serialized)
    struct ProbesTests {

        // MARK: Helpers

        /// `mallocx` + write every byte, through jemalloc's automatic arenas (no tcache).
        private func allocateTouched(_ bytes: Int) throws -> UnsafeMutableRawPointer {
            let pointer = try #require(mallocx(bytes, tcacheNone))
            memset(pointer, 0x11, bytes)
            return pointer
        }

        private func free(_ pointer: UnsafeMutableRawPointer, _ bytes: Int) {
            sdallocx(pointer, bytes, tcacheNone)
            JemallocStats.purgeAll()
        }

        private func status() throws -> ProcessMemory { try ProcessMemory.read() }

        /// Runs `attempt` up to 3 times until it returns true (a measurement disturbed by another suite's
        /// allocation is retried); returns whether one attempt succeeded.
        private func withRetries(_ attempt: () throws -> Bool) rethrows -> Bool {
            for _ in 0..<3 where try attempt() { return true }
            return false
        }

        private func temporaryFile(_ name: String) -> String {
            FileManager.default.temporaryDirectory
                .appendingPathComponent("probes-\(getpid())-\(UInt32.random(in: 0...UInt32.max))-\(name)").path
        }

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

        // MARK: Sampler

        /// At 1 ms over ≥ 200 ms: ≥ 100 samples, and a 64 MiB spike lasting 50 ms shows in the RssAnon peak.
        @Test func samplerSeesShortSpike() throws {
            #expect(throws: RSSSampler.ConfigurationError.self) { try RSSSampler(interval: .milliseconds(51)) }
            #expect(throws: RSSSampler.ConfigurationError.self) { try RSSSampler(interval: .zero) }

            let phase = Atomic<Int>(0)
            var last: RSSSamplerResult?
            let ok = try withRetries {
                phase.store(0, ordering: .relaxed)
                let sampler = try RSSSampler(interval: .milliseconds(1)) {
                    (ledgerLiveBytes: 12345, phase: phase.load(ordering: .relaxed))
                }
                let beforeStart = RSSSampler.monotonicSeconds()
                try sampler.start()
                #expect(sampler.startSeconds >= beforeStart && sampler.startSeconds <= RSSSampler.monotonicSeconds())
                MonotonicClock.sleep(seconds: 0.05)
                phase.store(1, ordering: .relaxed)
                let block = try allocateTouched(64 * mebibyte)
                sampler.mark()  // jemalloc is refreshed every 250 ms by the thread: its peak comes from the mark
                MonotonicClock.sleep(seconds: 0.05)
                free(block, 64 * mebibyte)
                phase.store(2, ordering: .relaxed)
                MonotonicClock.sleep(seconds: 0.11)
                let result = sampler.stop()
                last = result
                let baseline = result.samples.prefix(20).compactMap { $0.reading[.rssAnon] }.min() ?? 0
                let peaks = result.peaks
                return result.samples.count >= 100
                    && (peaks[.rssAnon] ?? 0) - baseline >= 64 * mebibyte - 4 * mebibyte
                    && (peaks[.jemallocAllocated] ?? 0) >= 64 * mebibyte
                    && peaks[.ledgerLive] == 12345
                    && peaks[.pss] == nil  // not sampled: absent, never 0
                    && Set(result.samples.map(\.phase)) == [0, 1, 2]
            }
            let result = try #require(last)
            #expect(ok, "samples \(result.samples.count), peaks \(result.peaks)")
            #expect(result.jemallocAvailable)
            #expect(result.statusReadFailures == 0)
            #expect(result.droppedSamples == 0)
            #expect(result.samples.first.map { $0.seconds >= 0 && $0.seconds < 0.01 } == true)
            let overhead = result.overhead
            #expect(overhead.meanIntervalSeconds > 0.0009 && overhead.meanIntervalSeconds < 0.002)
            #expect(overhead.meanSecondsPerSample > 0 && overhead.meanSecondsPerSample < 0.0005)
            #expect(overhead.maxSecondsPerSample >= overhead.meanSecondsPerSample)
            #expect(overhead.threadCPUSeconds > 0 && overhead.threadCPUSeconds < overhead.wallSeconds)
            #expect(overhead.markCount == 1 && overhead.markSeconds > 0 && overhead.markSeconds < 0.01)
            #expect(overhead.sampleCount + overhead.markCount == result.samples.count + result.droppedSamples)
            #expect(zip(result.samples, result.samples.dropFirst()).allSatisfy { $0.seconds <= $1.seconds })
            print("[probes] sampler at 1 ms: \(overhead)")
        }

        /// At 50 ms a 64 MiB block held for 2 ms falls between samples; a mark while it is held puts it in the peaks
        /// (RssAnon and a fresh jemalloc reading), with the caller's ledger bytes and phase. A mark before start
        /// stores nothing.
        @Test func markCatchesWhatThePeriodMisses() throws {
            let phase = Atomic<Int>(0)
            let sampler = try RSSSampler(interval: .milliseconds(50)) {
                (ledgerLiveBytes: 777, phase: phase.load(ordering: .relaxed))
            }
            sampler.mark()
            try sampler.start()
            MonotonicClock.sleep(seconds: 0.06)
            let block = try allocateTouched(64 * mebibyte)
            phase.store(3, ordering: .relaxed)
            sampler.mark()
            MonotonicClock.sleep(seconds: 0.002)
            free(block, 64 * mebibyte)
            phase.store(4, ordering: .relaxed)
            MonotonicClock.sleep(seconds: 0.06)
            let result = sampler.stop()
            sampler.mark()
            #expect(result.overhead.markCount == 1)
            #expect(result.samples.count == result.overhead.sampleCount + 1)
            let marked = try #require(result.samples.first { $0.phase == 3 })
            let baseline = try #require(result.samples.first?.reading[.rssAnon])
            #expect(try #require(marked.reading[.rssAnon]) - baseline >= 64 * mebibyte - 4 * mebibyte)
            #expect(try #require(marked.reading[.jemallocAllocated]) >= 64 * mebibyte)
            #expect(marked.reading[.ledgerLive] == 777)
        }

        @Test func samplerCapsStoredSamples() throws {
            let sampler = try RSSSampler(interval: .milliseconds(1), capacity: 10)
            try sampler.start()
            MonotonicClock.sleep(seconds: 0.05)
            let result = sampler.stop()
            #expect(result.samples.count == 10)
            #expect(result.droppedSamples == result.overhead.sampleCount - 10)
            #expect(result.droppedSamples > 10)
            #expect(sampler.stop().samples.count == 10)  // stop is idempotent
        }

        @Test func downsamplingKeepsEveryColumnMaximum() {
            var generator = SystemRandomNumberGenerator()
            var samples: [MemorySample] = []
            let sampled: [MemoryFigure] = [
                .rss, .rssAnon, .rssFile, .jemallocAllocated, .jemallocActive, .jemallocResident, .ledgerLive,
            ]
            for index in 0..<10_000 {
                let values = Dictionary(
                    uniqueKeysWithValues: sampled.map { ($0, Int.random(in: 0..<1_000_000, using: &generator)) })
                samples.append(
                    MemorySample(seconds: Double(index) * 0.001, reading: MemoryReading(values), phase: index / 1000))
            }
            let spike = Int.random(in: 0..<10_000, using: &generator)
            samples[spike].reading[.rssAnon] = 5_000_000
            let reduced = RSSSampler.downsample(samples, toAtMost: 2000)
            #expect(reduced.count == 2000)
            #expect(RSSSampler.peaks(reduced) == RSSSampler.peaks(samples))
            #expect(RSSSampler.peaks(reduced)[.rssAnon] == 5_000_000)
            #expect(RSSSampler.peaks(reduced)[.pss] == nil)
            #expect(reduced.first?.seconds == 0)
            #expect(reduced.map(\.phase).max() == 9)
            // Uneven counts: 10,001 → buckets of 6 → 1,667 points, still ≤ 2,000, still the same maxima.
            samples.append(samples[0])
            let uneven = RSSSampler.downsample(samples, toAtMost: 2000)
            #expect(uneven.count <= 2000)
            #expect(RSSSampler.peaks(uneven)[.rssAnon] == 5_000_000)
            #expect(RSSSampler.downsample(Array(samples.prefix(50)), toAtMost: 2000).count == 50)
        }

        /// A reading codes each present figure as `<name>_bytes` and leaves absent ones out; deltas and maxima
        /// keep absent figures absent.
        @Test func memoryReadingCodingAndArithmetic() throws {
            let reading = MemoryReading([.rss: 3 << 20, .rssAnon: 2 << 20, .ledgerLive: 7])
            let json = String(decoding: try ResultsCodec.encoder.encode(reading), as: UTF8.self)
            #expect(
                json == "{\n  \"ledger_live_bytes\" : 7,\n  \"rss_anon_bytes\" : 2097152,\n  \"rss_bytes\" : 3145728\n}"
            )
            #expect(try ResultsCodec.decoder.decode(MemoryReading.self, from: Data(json.utf8)) == reading)
            let baseline = MemoryReading([.rss: 1 << 20, .rssAnon: 1 << 20, .jemallocAllocated: 5])
            let delta = reading.delta(over: baseline)
            #expect(delta.figures == [.rss, .rssAnon])
            #expect(delta[.rss] == 2 << 20)
            #expect(reading.maximum(baseline)[.jemallocAllocated] == 5)
            #expect(reading.maximum(baseline)[.rss] == 3 << 20)
            #expect(PeakDeltas(delta).reading[.rssAnon] == 1 << 20)
            let peaks = String(
                decoding: try ResultsCodec.encoder.encode(PeakDeltas(MemoryReading([.ledgerLive: 1, .rssAnon: 2]))),
                as: UTF8.self)
            #expect(peaks == "{\n  \"ledger_delta_bytes\" : 1,\n  \"rss_anon_delta_bytes\" : 2\n}")
        }

        // MARK: System, cgroup

        @Test func systemInfo() throws {
            let info = SystemInfo.current(diskPath: FileManager.default.temporaryDirectory.path)
            #expect(info.kernelName == "Linux")
            #expect(!info.kernelRelease.isEmpty)
            #expect(!info.hostname.isEmpty)
            #expect(info.logicalCores == sysconf(Int32(_SC_NPROCESSORS_ONLN)))
            #expect(info.pageSize == 4096)
            #expect(info.memTotalBytes == sysconf(Int32(_SC_PHYS_PAGES)) * sysconf(Int32(_SC_PAGESIZE)))
            let available = try #require(info.memAvailableBytes)
            #expect(available > 0 && available <= info.memTotalBytes ?? 0)
            #expect(info.swapTotalBytes != nil)
            #expect(["always", "madvise", "never"].contains(info.transparentHugePagesEnabled ?? "?"))
            #expect(info.transparentHugePagesDefrag != nil)
            #expect(info.cpuModel?.isEmpty == false)
            let disk = try #require(info.disk)
            #expect(disk.totalBytes > 0 && disk.freeBytes <= disk.totalBytes && disk.availableBytes <= disk.freeBytes)
            #expect(SystemInfo.bracketedWord("always defer defer+madvise [madvise] never") == "madvise")
            #expect(SystemInfo.bracketedWord("nothing") == nil)
            #expect(
                SystemInfo.parseMeminfo("MemTotal:  10 kB\nHugePages_Total:  0\nbad line\n")
                    == ["MemTotal": 10240, "HugePages_Total": 0])
        }

        @Test func cgroupMemory() throws {
            let membership = CgroupMemory.parseProcCgroup(
                """
                9:name=systemd:/
                4:memory:/process_api/abc
                1:cpu:/
                0::/
                """)
            #expect(membership == .init(v1MemoryPath: "/process_api/abc", v2Path: "/"))
            #expect(
                CgroupMemory.parseProcCgroup("0::/user.slice/x\n") == .init(v1MemoryPath: nil, v2Path: "/user.slice/x"))
            let mounts = CgroupMemory.parseMountinfo(
                """
                35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
                41 31 0:38 /ctr /sys/fs/cgroup/unified rw,relatime shared:9 - cgroup2 cgroup2 rw
                20 1 0:1 / / rw - ext4 /dev/vda rw
                """)
            #expect(mounts.count == 2)
            #expect(mounts.first?.superOptions == ["rw", "memory"])
            #expect(mounts.last?.root == "/ctr")
            #expect(CgroupMemory.parseLimit("max\n") == .unlimited)
            #expect(CgroupMemory.parseLimit("9223372036854771712\n") == .unlimited)
            #expect(CgroupMemory.parseLimit("1073741824\n") == .bytes(1 << 30))
            #expect(CgroupMemory.parseLimit("junk") == nil)
            #expect(CgroupMemory.keyedValue("oom_kill_disable 0\nunder_oom 0\noom_kill 7\n", key: "oom_kill") == 7)

            // Own folder when it exists under the mount (after stripping the mount's root), else the mount root.
            let root = temporaryFile("cgroup")
            try FileManager.default.createDirectory(atPath: root + "/a/b", withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: root) }
            #expect(FileManager.default.createFile(atPath: root + "/a/b/memory.current", contents: Data()))
            let mount = CgroupMemory.CgroupMount(
                root: "/ctr", mountPoint: root, fileSystemType: "cgroup2", superOptions: [])
            #expect(
                CgroupMemory.resolve(path: "/ctr/a/b", mount: mount, probeFile: "memory.current") == (
                    root + "/a/b", .ownCgroup
                ))
            #expect(
                CgroupMemory.resolve(path: "/ctr/missing", mount: mount, probeFile: "memory.current") == (
                    root, .mountRoot
                ))

            // This machine: the memory controller is on cgroup v1.
            let current = try #require(CgroupMemory.current())
            #expect(current.limit != nil)
            #expect((current.usageBytes ?? 0) > 0)
            #expect(current.oomKillCount != nil)
            if let peak = current.peakBytes, let usage = current.usageBytes { #expect(peak >= usage) }
            print("[probes] cgroup: \(current)")
        }

        // MARK: Page cache, huge pages, read floor

        @Test func pageCacheEvictAndWarm() throws {
            let path = temporaryFile("pagecache.bin")
            let size = 32 * mebibyte
            var bytes = [UInt8](repeating: 0, count: size)
            for index in stride(from: 0, to: size, by: 4096) { bytes[index] = UInt8(truncatingIfNeeded: index >> 12) }
            #expect(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
            defer { try? FileManager.default.removeItem(atPath: path) }
            let handle = try #require(FileHandle(forWritingAtPath: path))
            try handle.synchronize()
            try handle.close()

            try PageCache.evict(path: path)
            #expect(try PageCache.residentBytes(path: path) == 0)
            #expect(try PageCache.warm(path: path) == size)
            #expect(try PageCache.residentBytes(path: path) == size)
            try PageCache.evict(path: path)
            #expect(try PageCache.residentBytes(path: path) == 0)

            // The floor reads the file into fresh huge-page memory: all bytes, and it fills the cache again.
            let floor = try ReadFloor.measure(paths: [path, path], chunk: 8 * mebibyte)
            #expect(floor.bytes == 2 * size)
            #expect(floor.fileCount == 2)
            #expect(floor.seconds > 0 && floor.bytesPerSecond > 0)
            #expect(try PageCache.residentBytes(path: path) == size)
            print("[probes] read floor: \(floor.bytes) bytes in \(floor.seconds) s")

            // An odd size: the partial last page counts only the file's bytes.
            let odd = temporaryFile("odd.bin")
            #expect(FileManager.default.createFile(atPath: odd, contents: Data(repeating: 7, count: 10_000)))
            defer { try? FileManager.default.removeItem(atPath: odd) }
            #expect(try PageCache.warm(path: odd) == 10_000)
            #expect(try PageCache.residentBytes(path: odd) == 10_000)
            #expect(throws: SystemCallError.self) { try PageCache.evict(path: "/nonexistent/probes") }
        }

        @Test func hugePageBuffer() throws {
            #expect(try HugePageBuffer(byteCount: 0).mappedByteCount == 2 * mebibyte)
            let buffer = try HugePageBuffer(byteCount: 3 * mebibyte)
            #expect(buffer.mappedByteCount == 4 * mebibyte)
            #expect(buffer.byteCount == 3 * mebibyte)
            #expect(UInt(bitPattern: buffer.baseAddress) % UInt(2 * mebibyte) == 0)
            #expect(buffer.hugePagesAdvised)

            let big = try HugePageBuffer(byteCount: 64 * mebibyte)
            let before = try ProcessMemory.smapsRollup().anonHugePagesBytes ?? 0
            memset(big.baseAddress, 1, big.byteCount)
            let after = try ProcessMemory.smapsRollup().anonHugePagesBytes ?? 0
            if SystemInfo.current().transparentHugePagesEnabled != "never" {
                // With THP in madvise (or always) mode, the advised buffer is backed by 2 MiB pages.
                #expect(after - before >= 32 * mebibyte, "AnonHugePages \(before) → \(after)")
            }
            #expect(
                stride(from: 0, to: big.byteCount, by: 4096).allSatisfy {
                    big.baseAddress.load(fromByteOffset: $0, as: UInt8.self) == 1
                })
        }

        @Test func firstTouchFloorWritesEveryPageOfEachPass() throws {
            let result = try FirstTouchFloor.measure(
                bytes: 5 * mebibyte + 3, passes: 3, chunk: 2 * mebibyte, threads: 2)
            #expect(result.bytes == 5 * mebibyte + 3)
            #expect(result.seconds.count == 3)
            #expect(result.seconds.allSatisfy { $0 > 0 })
            #expect(result.bytesPerSecond(pass: 0) == Double(5 * mebibyte + 3) / result.seconds[0])
            #expect(result.bytesPerSecond(pass: 3) == nil)
            let buffer = try HugePageBuffer(byteCount: 3 * mebibyte + 1)
            FirstTouchFloor.write(buffer, chunk: 2 * mebibyte, threads: 2)
            #expect(buffer.bytes.allSatisfy { $0 == 0x5A })
            #expect(try FirstTouchFloor.measure(bytes: 1, passes: 0).seconds == [])
        }

        @Test func freePageReportingReadsTheBalloonsFeatureBits() {
            // Bit 5 is VIRTIO_BALLOON_F_REPORTING; the kernel writes bit 0 first.
            #expect(FreePageReporting.reportingBit(features: "0110010100000000"))
            #expect(!FreePageReporting.reportingBit(features: "0110000100000000"))
            #expect(!FreePageReporting.reportingBit(features: "01100"))
            #expect(!FreePageReporting.reportingBit(features: ""))
        }

        // MARK: Children

        private let plainEnvironment = ["PATH": "/usr/bin:/bin", "LC_ALL": "C"]

        @Test func childKilledBySIGKILL() throws {
            let child = try ChildProcess.spawn(
                executable: "/bin/sh", arguments: ["-c", "kill -9 $$"], environment: plainEnvironment)
            let exit = try child.wait()
            #expect(exit.termination == .signaled(signal: SIGKILL, coreDumped: false))
            #expect(exit.termination.signalName == "SIGKILL")
            #expect(exit.termination.isKill)
            #expect(try child.wait() == exit)  // reaped once, remembered
            #expect(child.hasExited)
        }

        @Test func childExitStatus() throws {
            let child = try ChildProcess.spawn(
                executable: "/bin/sh", arguments: ["-c", "exit 3"], environment: plainEnvironment)
            let exit = try child.wait()
            #expect(exit.termination == .exited(code: 3))
            #expect(exit.termination.signalName == nil)
            #expect(exit.resourceUsage.userCPUSeconds >= 0)
            // A failed exec is reported by the fork path, not silently exit 127.
            #expect(throws: SystemCallError.self) {
                try ChildProcess.spawn(executable: "/nonexistent/program", environment: [:])
            }
        }

        /// The child's parent-death signal is set before exec (`/proc/self/status` has no field for it, so a child
        /// shell reads its own `PDeathSig`-free view: the test is the end-to-end SIGKILL test in RunCommandTests);
        /// here: extra descriptors arrive at the numbers asked, standard input comes from a file.
        @Test func childGetsDescriptorsAndInputFile() throws {
            let input = temporaryFile("stdin.txt")
            defer { try? FileManager.default.removeItem(atPath: input) }
            #expect(FileManager.default.createFile(atPath: input, contents: Data("from the file\n".utf8)))
            let pipe = try ProcessPipe.make()
            defer { Descriptor.close(pipe.readEnd) }
            let child = try ChildProcess.spawn(
                executable: "/bin/sh", arguments: ["-c", "read line; echo \"$line via 5\" >&5"],
                environment: plainEnvironment,
                options: .init(standardInput: .file(input), descriptors: [5: pipe.writeEnd]))
            Descriptor.close(pipe.writeEnd)
            #expect(try child.wait().termination == .exited(code: 0))
            var bytes: [UInt8] = []
            while case .data = Descriptor.read(pipe.readEnd, appendingTo: &bytes) {}
            #expect(String(decoding: bytes, as: UTF8.self) == "from the file via 5\n")
            #expect(throws: SystemCallError.self) {
                try ChildProcess.spawn(
                    executable: "/bin/true", environment: [:], options: .init(descriptors: [1: pipe.readEnd]))
            }
        }

        /// A stopped child reads as stopped; SIGKILL ends it anyway.
        @Test func stoppedChildState() throws {
            let child = try ChildProcess.spawn(
                executable: "/bin/sleep", arguments: ["30"], environment: plainEnvironment)
            try child.signal(SIGSTOP)
            var state = ProcessState.read(pid: child.pid)
            let deadline = MonotonicClock.monotonicSeconds() + 2
            while state?.isStopped != true && MonotonicClock.monotonicSeconds() < deadline {
                MonotonicClock.sleep(seconds: 0.01)
                state = ProcessState.read(pid: child.pid)
            }
            #expect(state?.isStopped == true)
            #expect(state?.description == "stopped (SIGSTOP?)")
            #expect(try child.kill().termination == .signaled(signal: SIGKILL, coreDumped: false))
            #expect(ProcessState.parse(stat: "123 (a) b) c) S 1 2 3") == ProcessState(code: "S"))
            #expect(ProcessState.parse(stat: "9 (x) R 1 9 9 0 -1 4194304 100 0 0 0 250 17 0 0")?.cpuTicks == 267)
        }

        @Test func childEnvironmentIsExactlyWhatWasPassed() throws {
            let output = temporaryFile("env.txt")
            defer { try? FileManager.default.removeItem(atPath: output) }
            let environment = ["ZED": "last", "A": "1", "WITH_SPACES": "two words", "EMPTY": "", "EQUALS": "a=b"]
            let child = try ChildProcess.spawn(
                executable: "/usr/bin/env", environment: environment,
                options: .init(standardInput: .null, standardOutput: .file(output), standardError: .file(output)))
            #expect(try child.wait().termination == .exited(code: 0))
            let lines = try String(contentsOfFile: output, encoding: .utf8).split(separator: "\n").map(String.init)
            #expect(lines == ["A=1", "EMPTY=", "EQUALS=a=b", "WITH_SPACES=two words", "ZED=last"])
            #expect(throws: SystemCallError.self) {
                try ChildProcess.spawn(executable: "/usr/bin/env", environment: ["BAD=KEY": "x"])
            }
        }

        /// The exec pitfall, measured: a forked /bin/true reports in ru_maxrss the parent's anonymous pages it
        /// mapped (copy-on-write) until exec — far above the 2 MiB or so /bin/true itself touches.
        @Test func childMaxRSSCarriesParentPages() throws {
            let block = try allocateTouched(64 * mebibyte)
            defer { free(block, 64 * mebibyte) }
            let parentAnon = try #require(try status().rssAnonBytes)
            let child = try ChildProcess.spawn(executable: "/bin/true", environment: [:])
            let exit = try child.wait()
            #expect(exit.termination == .exited(code: 0))
            #expect(
                exit.resourceUsage.maxRSSBytes >= 64 * mebibyte,
                "ru_maxrss \(exit.resourceUsage.maxRSSBytes), parent RssAnon \(parentAnon)")
            print("[probes] /bin/true ru_maxrss \(exit.resourceUsage.maxRSSBytes) B; parent RssAnon \(parentAnon) B")
        }

        @Test func childTerminate() throws {
            let polite = try ChildProcess.spawn(
                executable: "/bin/sleep", arguments: ["30"], environment: plainEnvironment)
            #expect(try polite.poll() == nil)
            let politeExit = try polite.terminate(grace: .seconds(2))
            #expect(politeExit.termination == .signaled(signal: SIGTERM, coreDumped: false))

            // Ignores SIGTERM (the ignore is inherited by sleep): killed after the grace period.
            let stubborn = try ChildProcess.spawn(
                executable: "/bin/sh", arguments: ["-c", "trap '' TERM; sleep 30"], environment: plainEnvironment)
            MonotonicClock.sleep(seconds: 0.1)
            let start = MonotonicClock.monotonicSeconds()
            let stubbornExit = try stubborn.terminate(grace: .milliseconds(300))
            #expect(stubbornExit.termination == .signaled(signal: SIGKILL, coreDumped: false))
            #expect(MonotonicClock.monotonicSeconds() - start >= 0.3)
            #expect(ChildTermination.signalName(__libc_current_sigrtmin() + 2) == "SIGRTMIN+2")
        }

        @Test func childOwnProcessGroupAndExecutablePath() throws {
            let output = temporaryFile("pgid.txt")
            defer { try? FileManager.default.removeItem(atPath: output) }
            // $$ is the shell's pid; `ps` may be absent, so read the pgid (field 5) from /proc/self/stat.
            let child = try ChildProcess.spawn(
                executable: "/bin/sh", arguments: ["-c", "read -r line < /proc/$$/stat; echo $line"],
                environment: plainEnvironment, options: .init(standardOutput: .file(output)))
            #expect(try child.wait().termination == .exited(code: 0))
            let stat = try String(contentsOfFile: output, encoding: .utf8)
            let fields = stat.split(separator: ")").last?.split(separator: " ") ?? []
            // After "comm)": state ppid pgrp …
            #expect(fields.count > 3 && fields[2] == "\(child.pid)")

            let path = try ChildProcess.currentExecutablePath()
            #expect(path.hasPrefix("/"))
            #expect(FileManager.default.isExecutableFile(atPath: path))
            #expect(ChildProcess.currentEnvironment()["PATH"] == ProcessInfo.processInfo.environment["PATH"])
        }

        // MARK: Signals

        @Test func signalTrapSetsFlag() throws {
            try SignalTrap.install(signals: [SIGUSR2, SIGTERM])
            defer { SignalTrap.uninstall(signals: [SIGUSR2, SIGTERM]) }
            SignalTrap.reset()
            #expect(!SignalTrap.interrupted)
            #expect(SignalTrap.lastSignal == nil)
            // Process-directed (kill, not raise): test threads are pool threads that block signals, so the kernel
            // delivers it to a thread that does not (the main thread), asynchronously: poll up to 2 s.
            func waitForCount(_ count: Int) -> Bool {
                let deadline = MonotonicClock.monotonicSeconds() + 2
                while SignalTrap.signalCount < count && MonotonicClock.monotonicSeconds() < deadline {
                    MonotonicClock.sleep(seconds: 0.001)
                }
                return SignalTrap.signalCount == count
            }
            kill(getpid(), SIGUSR2)
            #expect(waitForCount(1))
            #expect(SignalTrap.interrupted)
            #expect(SignalTrap.lastSignal == SIGUSR2)
            kill(getpid(), SIGTERM)
            #expect(waitForCount(2))
            #expect(SignalTrap.lastSignal == SIGTERM)
            SignalTrap.reset()
            #expect(!SignalTrap.interrupted)
        }
    }
}
