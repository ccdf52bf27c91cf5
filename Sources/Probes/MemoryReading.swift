/// Every memory figure this tool reads, each named for exactly what it is and where it comes from: the one
/// list that samples, snapshots, peaks, deltas, timelines and reports are all made of.
package enum MemoryFigure: Int, CaseIterable, Sendable, Comparable, CustomStringConvertible {
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

    /// True for the figures the kernel reports (they exist for any process, whoever loads).
    package var isKernelFigure: Bool { self <= .pssFile }

    package init?(name: String) {
        guard let figure = Self.allCases.first(where: { $0.name == name }) else { return nil }
        self = figure
    }

    package var description: String { name }

    package static func < (lhs: MemoryFigure, rhs: MemoryFigure) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// One reading of any subset of the ``MemoryFigure``s, in bytes. A figure that was not read (no jemalloc in a
/// Python subject, no ledger, no `smaps_rollup` in a sample) is absent — nil — never 0.
///
/// Fixed-size and allocation-free (the sampler stores one per millisecond): the figures sit in one SIMD
/// vector indexed by ``MemoryFigure/rawValue``, absent ones holding a sentinel.
package struct MemoryReading: Sendable, Equatable {
    private static let absent = Int64.min
    private var values = SIMD16<Int64>(repeating: MemoryReading.absent)

    package init() {}

    package init(_ figures: [MemoryFigure: Int]) {
        for (figure, bytes) in figures { self[figure] = bytes }
    }

    package subscript(figure: MemoryFigure) -> Int? {
        get {
            let value = values[figure.rawValue]
            return value == Self.absent ? nil : Int(value)
        }
        set { values[figure.rawValue] = newValue.map { Int64($0) } ?? Self.absent }
    }

    /// The figures present, in list order.
    package var figures: [MemoryFigure] { MemoryFigure.allCases.filter { self[$0] != nil } }

    /// Each figure's maximum of the two readings (a figure absent from one is the other's).
    package func maximum(_ other: MemoryReading) -> MemoryReading {
        var result = MemoryReading()
        result.values = pointwiseMax(values, other.values)
        return result
    }

    /// Each figure minus `baseline`'s, for the figures present in both.
    package func delta(over baseline: MemoryReading) -> MemoryReading {
        var result = MemoryReading()
        for figure in MemoryFigure.allCases {
            if let value = self[figure], let base = baseline[figure] { result[figure] = value - base }
        }
        return result
    }

    /// This reading with `other`'s figures filled in where this one lacks them.
    package func merging(_ other: MemoryReading) -> MemoryReading {
        var result = self
        for figure in MemoryFigure.allCases where result[figure] == nil { result[figure] = other[figure] }
        return result
    }

    /// The kernel's figures of a `/proc/<pid>/status` read (and, when given, of `smaps_rollup`).
    package init(status: ProcessMemory, rollup: SmapsRollup? = nil) {
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

extension MemoryReading: Codable {
    /// Keys `<figure>_bytes` (`rss_anon_bytes`); absent figures are left out.
    struct Key: CodingKey {
        let stringValue: String
        init(stringValue: String) { self.stringValue = stringValue }
        var intValue: Int? { nil }
        init?(intValue: Int) { nil }
    }

    package init(from decoder: any Decoder) throws {
        try self.init(from: decoder, key: { $0.name + "_bytes" })
    }

    package func encode(to encoder: any Encoder) throws {
        try encode(to: encoder, key: { $0.name + "_bytes" })
    }

    /// Decodes the figures found under `key(figure)`. Whatever key strategy the decoder uses, keys are matched
    /// in snake case, as the results files write them.
    package init(from decoder: any Decoder, key: (MemoryFigure) -> String) throws {
        self.init()
        let container = try decoder.container(keyedBy: Key.self)
        for figure in MemoryFigure.allCases {
            let name = key(figure)
            guard let match = container.allKeys.first(where: { Self.snake($0.stringValue) == name }) else { continue }
            self[figure] = try container.decodeIfPresent(Int.self, forKey: match)
        }
    }

    package func encode(to encoder: any Encoder, key: (MemoryFigure) -> String) throws {
        var container = encoder.container(keyedBy: Key.self)
        for figure in figures { try container.encode(self[figure], forKey: Key(stringValue: Self.camel(key(figure)))) }
    }

    /// The encoders of this tool convert camelCase keys to snake_case: keys go out camel-cased so they come
    /// out exactly as named, and come back (converted from snake case or not) matched in snake case.
    package static func camel(_ snake: String) -> String {
        let parts = snake.split(separator: "_")
        return parts.enumerated().map {
            $0.offset == 0 ? String($0.element) : $0.element.prefix(1).uppercased() + $0.element.dropFirst()
        }.joined()
    }

    package static func snake(_ key: String) -> String {
        var out = ""
        for character in key {
            if character.isUppercase { out += "_" + character.lowercased() } else { out.append(character) }
        }
        return out
    }
}
