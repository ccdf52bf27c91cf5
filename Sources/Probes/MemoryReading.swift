/// Every memory figure this tool reads, each named for exactly what it is and where it comes from: the one
/// list that samples, snapshots, peaks, deltas, timelines and reports are all made of.
package enum MemoryFigure: Int, ReadingFigure, Comparable, CustomStringConvertible {
    /// `VmRSS` of `/proc/<pid>/status`: resident set size (anon + file + shmem).
    case rss
    /// `RssAnon` of `/proc/<pid>/status`: resident anonymous memory (heap, malloc'd tensors).
    case rssAnon
    /// `RssFile` of `/proc/<pid>/status`: resident file-backed pages the process maps (mmapped shards, code).
    case rssFile
    /// `VmHWM` of `/proc/<pid>/status`: the kernel's high-water mark of VmRSS since the last `clear_refs` reset.
    case vmhwm
    /// `Pss` of `/proc/<pid>/smaps_rollup`: shared pages divided among the processes mapping them.
    case pss
    /// `Pss_Anon` of `smaps_rollup`.
    case pssAnon
    /// `Pss_File` of `smaps_rollup`.
    case pssFile
    /// jemalloc `stats.allocated` (after `epoch`): bytes in live allocations, at size classes.
    case jemallocAllocated
    /// jemalloc `stats.active`: pages holding live allocations.
    case jemallocActive
    /// jemalloc `stats.resident`: pages jemalloc believes resident (an upper bound).
    case jemallocResident
    /// jemalloc `stats.mapped`.
    case jemallocMapped
    /// jemalloc `stats.retained`: virtual memory kept for reuse, not resident.
    case jemallocRetained
    /// The engine's ledger: live owned tensor bytes, exact.
    case ledgerLive
    /// The ledger with every allocation at its jemalloc size class (`nallocx`): what `stats.allocated` should show.
    case ledgerSizeClass
    /// Σ `Rss` of the process's mappings of the checkpoint's files (`/proc/<pid>/smaps`): the part of RssFile
    /// that is the checkpoint, not the loader's code and libraries.
    case rssFileCheckpoint

    /// The name in JSON keys and timeline columns: `rss_anon`, `jemalloc_allocated`.
    package var name: String {
        switch self {
        case .rss: "rss"
        case .rssAnon: "rss_anon"
        case .rssFile: "rss_file"
        case .vmhwm: "vmhwm"
        case .pss: "pss"
        case .pssAnon: "pss_anon"
        case .pssFile: "pss_file"
        case .jemallocAllocated: "jemalloc_allocated"
        case .jemallocActive: "jemalloc_active"
        case .jemallocResident: "jemalloc_resident"
        case .jemallocMapped: "jemalloc_mapped"
        case .jemallocRetained: "jemalloc_retained"
        case .ledgerLive: "ledger_live"
        case .ledgerSizeClass: "ledger_size_class"
        case .rssFileCheckpoint: "rss_file_checkpoint"
        }
    }

    /// How people name it in tables: the kernel's or jemalloc's own name.
    package var title: String {
        switch self {
        case .rss: "VmRSS"
        case .rssAnon: "RssAnon"
        case .rssFile: "RssFile"
        case .vmhwm: "VmHWM"
        case .pss: "Pss"
        case .pssAnon: "Pss_Anon"
        case .pssFile: "Pss_File"
        case .jemallocAllocated: "jemalloc allocated"
        case .jemallocActive: "jemalloc active"
        case .jemallocResident: "jemalloc resident"
        case .jemallocMapped: "jemalloc mapped"
        case .jemallocRetained: "jemalloc retained"
        case .ledgerLive: "ledger live"
        case .ledgerSizeClass: "ledger at size classes"
        case .rssFileCheckpoint: "RssFile of the checkpoint (smaps)"
        }
    }

    package init?(name: String) {
        guard let figure = Self.allCases.first(where: { $0.name == name }) else { return nil }
        self = figure
    }

    package var description: String { name }

    package static func < (lhs: MemoryFigure, rhs: MemoryFigure) -> Bool { lhs.rawValue < rhs.rawValue }
}

extension MemoryFigure {
    package var index: Int { rawValue }
}

/// One reading of a process: any subset of the ``MemoryFigure``s, in bytes.
package typealias MemoryReading = Reading<MemoryFigure>

extension Reading where Figure == MemoryFigure {
    /// The kernel's figures of a `/proc/<pid>/status` read (and, when given, of `smaps_rollup`).
    package init(status: ProcessMemory, rollup: SmapsRollup? = nil) {
        self.init()
        self[.rss] = status.vmRSSBytes
        self[.rssAnon] = status.rssAnonBytes
        self[.rssFile] = status.rssFileBytes
        self[.vmhwm] = status.vmHWMBytes
        self[.pss] = rollup?.pssBytes
        self[.pssAnon] = rollup?.pssAnonBytes
        self[.pssFile] = rollup?.pssFileBytes
    }

    /// Adds jemalloc's process-wide figures.
    package mutating func add(jemalloc stats: JemallocGlobalStats) {
        self[.jemallocAllocated] = stats.allocatedBytes
        self[.jemallocActive] = stats.activeBytes
        self[.jemallocResident] = stats.residentBytes
        self[.jemallocMapped] = stats.mappedBytes
        self[.jemallocRetained] = stats.retainedBytes
    }
}
