import CJemalloc

#if canImport(Glibc)
import Glibc
#endif

/// jemalloc's process-wide statistics, read through `mallctlbymib` after an `epoch` refresh. All in bytes.
package struct JemallocGlobalStats: Sendable, Equatable {
    /// `stats.allocated`: bytes in live allocations (what the program asked for, rounded to size classes).
    package var allocatedBytes: Int
    /// `stats.active`: bytes in active pages (pages holding at least one live allocation); ≥ allocated.
    package var activeBytes: Int
    /// `stats.resident`: bytes in pages jemalloc believes resident (data, metadata, dirty unused pages). An upper
    /// bound that also counts never-touched pages of fresh allocations: not the kernel's RSS.
    package var residentBytes: Int
    /// `stats.mapped`: bytes in extents jemalloc has mapped and in use (active or dirty), not retained ones.
    package var mappedBytes: Int
    /// `stats.retained`: bytes of virtual memory kept for reuse, unmapped from the kernel's view (not resident).
    package var retainedBytes: Int
    /// `stats.metadata`: bytes of jemalloc's own bookkeeping.
    package var metadataBytes: Int

    package init(
        allocatedBytes: Int, activeBytes: Int, residentBytes: Int, mappedBytes: Int, retainedBytes: Int,
        metadataBytes: Int
    ) {
        self.allocatedBytes = allocatedBytes
        self.activeBytes = activeBytes
        self.residentBytes = residentBytes
        self.mappedBytes = mappedBytes
        self.retainedBytes = retainedBytes
        self.metadataBytes = metadataBytes
    }
}

/// One arena's live bytes (after an `epoch` refresh). Nil when the arena does not exist or is uninitialised.
package struct JemallocArenaStats: Sendable, Equatable {
    /// The arena index (`MALLCTL_ARENAS_ALL` = 4096 for the sum over all arenas).
    package var arena: UInt32
    /// `stats.arenas.<i>.small.allocated`: bytes in live small-size-class allocations.
    package var smallAllocatedBytes: Int?
    /// `stats.arenas.<i>.large.allocated`: bytes in live large allocations.
    package var largeAllocatedBytes: Int?
    /// `stats.arenas.<i>.pactive` × `arenas.page`: bytes in the arena's active pages.
    package var activeBytes: Int?

    /// small + large allocated bytes, when both are known.
    package var allocatedBytes: Int? {
        guard let smallAllocatedBytes, let largeAllocatedBytes else { return nil }
        return smallAllocatedBytes + largeAllocatedBytes
    }

    package init(arena: UInt32, smallAllocatedBytes: Int?, largeAllocatedBytes: Int?, activeBytes: Int?) {
        self.arena = arena
        self.smallAllocatedBytes = smallAllocatedBytes
        self.largeAllocatedBytes = largeAllocatedBytes
        self.activeBytes = activeBytes
    }
}

/// How jemalloc is configured in this process (each field nil when its `mallctl` fails).
package struct JemallocConfiguration: Sendable, Equatable {
    /// `version`, e.g. "5.3.0-0-g54eaed1d8b56b1aa528be3bdd1877e59c56fa90c".
    package var version: String?
    /// `opt.dirty_decay_ms`: milliseconds before unused dirty pages are purged (−1: never; 0: at once).
    package var dirtyDecayMilliseconds: Int?
    /// `opt.muzzy_decay_ms`: milliseconds before muzzy pages are released.
    package var muzzyDecayMilliseconds: Int?
    /// `opt.thp`: jemalloc's transparent-huge-page mode ("default", "always", "never").
    package var transparentHugePages: String?
    /// `opt.oversize_threshold`: allocations of at least this many bytes go to a dedicated, eagerly purged arena.
    package var oversizeThresholdBytes: Int?
    /// `opt.narenas`: the number of automatic arenas.
    package var automaticArenaCount: UInt32?
    /// `arenas.narenas`: arenas existing now (automatic plus those made with `arenas.create`).
    package var currentArenaCount: UInt32?
    /// `opt.tcache`: whether thread caches are enabled.
    package var threadCache: Bool?
    /// `config.stats`: whether jemalloc was built with statistics (all `stats.*` figures need it).
    package var statisticsEnabled: Bool?
    /// `config.malloc_conf`: the options compiled into the library ("" when none).
    package var compiledMallocConf: String?
    /// The `MALLOC_CONF` environment variable of this process (`getenv`), nil when unset.
    package var environmentMallocConf: String?
    /// `arenas.page`: jemalloc's page size in bytes.
    package var pageSize: Int?
}

/// The outcome of ``JemallocStats/checkActiveAllocator(probeBytes:)``: whether jemalloc serves this process's
/// plain `malloc`, and the evidence.
package struct AllocatorCheck: Sendable, Equatable {
    /// `mallctl("version")` answered: libjemalloc is loaded.
    package var jemallocLoaded: Bool
    /// The file of the mapping holding the address `dlsym(RTLD_DEFAULT, "malloc")` resolves to (from
    /// `/proc/self/maps`), e.g. ".../libjemalloc.so.2" or ".../libc.so.6".
    package var mallocProvider: String?
    /// The size of the probe allocation made with that `malloc`, bytes.
    package var probeBytes: Int
    /// Rise of `thread.allocated` (this thread's running total of bytes allocated by jemalloc) across the probe
    /// `malloc`; ≥ probeBytes only if jemalloc served it. Immune to other threads.
    package var threadAllocatedDeltaBytes: Int?
    /// Rise of `stats.allocated` (after `epoch`) while the probe was live; other threads can disturb it.
    package var statsAllocatedDeltaBytes: Int?

    /// True when jemalloc demonstrably served the probe `malloc` (`thread.allocated` rose by ≥ probeBytes).
    package var servesMalloc: Bool {
        guard let threadAllocatedDeltaBytes else { return false }
        return threadAllocatedDeltaBytes >= probeBytes
    }
}

/// jemalloc statistics and controls (`mallctl`). The hot statistics are resolved once to MIBs
/// (`mallctlnametomib`) and then read with `mallctlbymib`, which costs a few hundred nanoseconds.
///
/// jemalloc 5.3 from Debian, unprefixed API. Create with ``init()``, which fails (nil) when jemalloc does not
/// answer `mallctl` — the process then is not using jemalloc, and callers report that instead of statistics.
package struct JemallocStats: Sendable {
    /// `MALLCTL_ARENAS_ALL`: the arena index meaning "all arenas" in `arena.<i>.*` and `stats.arenas.<i>.*`.
    package static let allArenas: UInt32 = cjemalloc_arenas_all()

    private let epochMIB: [Int]
    private let allocatedMIB: [Int]
    private let activeMIB: [Int]
    private let residentMIB: [Int]
    private let mappedMIB: [Int]
    private let retainedMIB: [Int]
    private let metadataMIB: [Int]
    private let arenaSmallAllocatedMIB: [Int]
    private let arenaLargeAllocatedMIB: [Int]
    private let arenaPactiveMIB: [Int]
    /// `arenas.page`, bytes.
    package let pageSize: Int

    /// Resolves the MIBs (`mallctlnametomib`). Nil when jemalloc does not answer (not linked, or built
    /// without statistics).
    package init?() {
        guard
            let epoch = Self.mib("epoch"),
            let allocated = Self.mib("stats.allocated"),
            let active = Self.mib("stats.active"),
            let resident = Self.mib("stats.resident"),
            let mapped = Self.mib("stats.mapped"),
            let retained = Self.mib("stats.retained"),
            let metadata = Self.mib("stats.metadata"),
            let small = Self.mib("stats.arenas.0.small.allocated"),
            let large = Self.mib("stats.arenas.0.large.allocated"),
            let pactive = Self.mib("stats.arenas.0.pactive"),
            let page: Int = Self.read("arenas.page")
        else { return nil }
        epochMIB = epoch
        allocatedMIB = allocated
        activeMIB = active
        residentMIB = resident
        mappedMIB = mapped
        retainedMIB = retained
        metadataMIB = metadata
        arenaSmallAllocatedMIB = small
        arenaLargeAllocatedMIB = large
        arenaPactiveMIB = pactive
        pageSize = page
        guard refresh() else { return nil }
    }

    /// Writes `epoch`, making jemalloc recompute the cached `stats.*` values. Returns false on failure.
    @discardableResult
    package func refresh() -> Bool {
        var newEpoch: UInt64 = 1
        let status = epochMIB.withUnsafeBufferPointer {
            mallctlbymib($0.baseAddress, $0.count, nil, nil, &newEpoch, MemoryLayout<UInt64>.size)
        }
        return status == 0
    }

    /// Reads the global statistics; with `refresh` (default) writes `epoch` first. Nil if any read fails.
    package func read(refresh: Bool = true) -> JemallocGlobalStats? {
        if refresh && !self.refresh() { return nil }
        guard
            let allocated = Self.readSize(allocatedMIB),
            let active = Self.readSize(activeMIB),
            let resident = Self.readSize(residentMIB),
            let mapped = Self.readSize(mappedMIB),
            let retained = Self.readSize(retainedMIB),
            let metadata = Self.readSize(metadataMIB)
        else { return nil }
        return JemallocGlobalStats(
            allocatedBytes: allocated, activeBytes: active, residentBytes: resident, mappedBytes: mapped,
            retainedBytes: retained, metadataBytes: metadata
        )
    }

    /// Reads one arena's live bytes (`stats.arenas.<i>.small.allocated`, `.large.allocated`, `.pactive`); pass
    /// ``allArenas`` for the sum. With `refresh` (default) writes `epoch` first.
    package func arenaStats(arena: UInt32, refresh: Bool = true) -> JemallocArenaStats {
        if refresh { self.refresh() }
        func indexed(_ mib: [Int]) -> [Int] {
            var copy = mib
            copy[2] = Int(arena)
            return copy
        }
        let pactive = Self.readSize(indexed(arenaPactiveMIB))
        return JemallocArenaStats(
            arena: arena,
            smallAllocatedBytes: Self.readSize(indexed(arenaSmallAllocatedMIB)),
            largeAllocatedBytes: Self.readSize(indexed(arenaLargeAllocatedMIB)),
            activeBytes: pactive.map { $0 * pageSize }
        )
    }

    /// Every existing arena's statistics (`arenas.narenas` of them), skipping uninitialised arenas.
    package func allArenaStats() -> [JemallocArenaStats] {
        refresh()
        let count: UInt32 = Self.read("arenas.narenas") ?? 0
        var result: [JemallocArenaStats] = []
        for arena in 0..<count {
            let stats = arenaStats(arena: arena, refresh: false)
            if stats.smallAllocatedBytes != nil || stats.largeAllocatedBytes != nil { result.append(stats) }
        }
        return result
    }

    // MARK: Controls

    /// `arena.4096.purge` (`MALLCTL_ARENAS_ALL`): returns every arena's unused dirty and muzzy pages to the
    /// kernel now, instead of after `opt.dirty_decay_ms`. Returns false when jemalloc refused.
    @discardableResult
    package static func purgeAll() -> Bool {
        mallctl("arena.\(allArenas).purge", nil, nil, nil, 0) == 0
    }

    /// Freed pages go back to the kernel at once in every arena, as the measured children run them
    /// (`MALLOC_CONF=dirty_decay_ms:0,muzzy_decay_ms:0`): `arena.<i>.dirty_decay_ms` and `.muzzy_decay_ms`
    /// written 0 for each of `arenas.narenas`, and `arenas.dirty_decay_ms`/`arenas.muzzy_decay_ms` for arenas
    /// made later. For a process that measures loads in itself (`bench load`). False when jemalloc refused one.
    @discardableResult
    package static func returnFreedPagesAtOnce() -> Bool {
        var zero = 0
        var ok = true
        let count: UInt32 = read("arenas.narenas") ?? 0
        let names =
            (0..<count).flatMap { ["arena.\($0).dirty_decay_ms", "arena.\($0).muzzy_decay_ms"] } + [
                "arenas.dirty_decay_ms", "arenas.muzzy_decay_ms",
            ]
        for name in names where mallctl(name, nil, nil, &zero, MemoryLayout<Int>.size) != 0 { ok = false }
        return ok
    }

    /// `thread.tcache.flush`: returns the calling thread's cached small objects to their arenas, so
    /// `stats.allocated` counts them as free. Returns false when jemalloc refused (e.g. tcache disabled).
    @discardableResult
    package static func flushThreadCache() -> Bool {
        mallctl("thread.tcache.flush", nil, nil, nil, 0) == 0
    }

    /// `thread.allocated`: bytes ever allocated by jemalloc on the calling thread (monotonic running total).
    package static func threadAllocatedBytes() -> Int? {
        let value: UInt64? = read("thread.allocated")
        return value.map { Int(truncatingIfNeeded: $0) }
    }

    /// `thread.peak.read`: the calling thread's high-water mark of (allocated − deallocated) bytes since the
    /// last ``resetThreadPeak()``; about 100 KB accurate, and blind to other threads.
    package static func threadPeakBytes() -> Int? {
        let value: UInt64? = read("thread.peak.read")
        return value.map { Int(truncatingIfNeeded: $0) }
    }

    /// `thread.peak.reset`: restarts the calling thread's ``threadPeakBytes()`` high-water mark.
    @discardableResult
    package static func resetThreadPeak() -> Bool {
        mallctl("thread.peak.reset", nil, nil, nil, 0) == 0
    }

    /// `version`; nil when jemalloc does not answer `mallctl`.
    package static var version: String? { readString("version") }

    /// The configuration: options (`opt.*`), build configuration (`config.*`), `arenas.page`, `MALLOC_CONF`.
    package static func configuration() -> JemallocConfiguration {
        JemallocConfiguration(
            version: readString("version"),
            dirtyDecayMilliseconds: read("opt.dirty_decay_ms"),
            muzzyDecayMilliseconds: read("opt.muzzy_decay_ms"),
            transparentHugePages: readString("opt.thp"),
            oversizeThresholdBytes: read("opt.oversize_threshold"),
            automaticArenaCount: read("opt.narenas"),
            currentArenaCount: read("arenas.narenas"),
            threadCache: read("opt.tcache"),
            statisticsEnabled: read("config.stats"),
            compiledMallocConf: readString("config.malloc_conf"),
            environmentMallocConf: getenv("MALLOC_CONF").map { String(cString: $0) },
            pageSize: read("arenas.page")
        )
    }

    /// Proves whether jemalloc serves this process's plain `malloc`: calls the `malloc` that global symbol
    /// resolution gives (`dlsym(RTLD_DEFAULT, "malloc")`) for `probeBytes` (default 64 MiB), writes every byte,
    /// and checks that this thread's `thread.allocated` rose by at least that much; also records the
    /// `stats.allocated` rise and which library file provides `malloc`. Then frees the block and purges.
    ///
    /// When libjemalloc is linked but not first in symbol-resolution order, glibc serves `malloc` and
    /// jemalloc only sees explicit `mallocx` calls: the check then reports `servesMalloc == false`.
    package static func checkActiveAllocator(probeBytes: Int = 64 * 1024 * 1024) -> AllocatorCheck {
        typealias MallocFunction = @convention(c) (Int) -> UnsafeMutableRawPointer?
        typealias FreeFunction = @convention(c) (UnsafeMutableRawPointer?) -> Void
        let loaded = version != nil
        let defaultHandle = UnsafeMutableRawPointer(bitPattern: 0)  // RTLD_DEFAULT
        let mallocSymbol = dlsym(defaultHandle, "malloc")
        var check = AllocatorCheck(
            jemallocLoaded: loaded, mallocProvider: mallocSymbol.flatMap { mappedFile(containing: $0) },
            probeBytes: probeBytes, threadAllocatedDeltaBytes: nil, statsAllocatedDeltaBytes: nil
        )
        guard let mallocSymbol, let freeSymbol = dlsym(defaultHandle, "free") else { return check }
        let mallocFunction = unsafeBitCast(mallocSymbol, to: MallocFunction.self)
        let freeFunction = unsafeBitCast(freeSymbol, to: FreeFunction.self)
        let stats = loaded ? JemallocStats() : nil
        let allocatedBefore = stats?.read()?.allocatedBytes
        let threadBefore = threadAllocatedBytes()
        guard let block = mallocFunction(probeBytes) else { return check }
        memset(block, 0x5A, probeBytes)
        let threadAfter = threadAllocatedBytes()
        let allocatedDuring = stats?.read()?.allocatedBytes
        freeFunction(block)
        if loaded { purgeAll() }
        if let threadBefore, let threadAfter { check.threadAllocatedDeltaBytes = threadAfter - threadBefore }
        if let allocatedBefore, let allocatedDuring {
            check.statsAllocatedDeltaBytes = allocatedDuring - allocatedBefore
        }
        return check
    }

    // MARK: mallctl plumbing

    /// `mallctlnametomib(name)`: the numeric path of a statistic, for `mallctlbymib`.
    static func mib(_ name: String) -> [Int]? {
        var mib = [Int](repeating: 0, count: 8)
        var length = mib.count
        let status = mib.withUnsafeMutableBufferPointer { mallctlnametomib(name, $0.baseAddress, &length) }
        guard status == 0, length > 0, length <= mib.count else { return nil }
        return Array(mib[..<length])
    }

    /// `mallctlbymib` for a `size_t` value.
    @inline(__always)
    static func readSize(_ mib: [Int]) -> Int? {
        var value = 0
        var length = MemoryLayout<Int>.size
        let status = mib.withUnsafeBufferPointer { mallctlbymib($0.baseAddress, $0.count, &value, &length, nil, 0) }
        return status == 0 && length == MemoryLayout<Int>.size ? value : nil
    }

    /// `mallctl(name)` for a fixed-size value (size_t → Int, ssize_t → Int, unsigned → UInt32, bool → Bool,
    /// uint64_t → UInt64); nil on failure or a size mismatch.
    static func read<T: BitwiseCopyable>(_ name: String) -> T? {
        let size = MemoryLayout<T>.size
        let storage = UnsafeMutableRawPointer.allocate(byteCount: max(size, 8), alignment: 8)
        defer { storage.deallocate() }
        memset(storage, 0, max(size, 8))
        var length = size
        guard mallctl(name, storage, &length, nil, 0) == 0, length == size else { return nil }
        return storage.loadUnaligned(as: T.self)
    }

    /// `mallctl(name)` for a `const char *` value.
    static func readString(_ name: String) -> String? {
        var pointer: UnsafePointer<CChar>? = nil
        var length = MemoryLayout<UnsafePointer<CChar>?>.size
        guard mallctl(name, &pointer, &length, nil, 0) == 0, let pointer else { return nil }
        return String(cString: pointer)
    }

    /// The path of the `/proc/self/maps` mapping that contains `address`, if it is a file mapping.
    static func mappedFile(containing address: UnsafeMutableRawPointer) -> String? {
        let target = UInt(bitPattern: address)
        guard let maps = readTextFile("/proc/self/maps") else { return nil }
        for line in maps.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 6 else { continue }
            let range = fields[0].split(separator: "-")
            guard range.count == 2, let start = UInt(range[0], radix: 16), let end = UInt(range[1], radix: 16),
                start <= target, target < end
            else { continue }
            return fields[5...].joined(separator: " ")
        }
        return nil
    }
}
