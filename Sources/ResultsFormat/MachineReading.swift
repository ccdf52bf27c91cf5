import Foundation
import OSLayer
import Probes

/// A figure of the whole machine while N ranks load, each named for exactly what it is.
package enum MachineFigure: String, CaseIterable, Sendable, Codable, CustomStringConvertible {
    /// Σ over the ranks of `/proc/<pid>/status` RssAnon, VmRSS, RssFile.
    case sumRssAnon = "sum_rss_anon"
    case sumRss = "sum_rss"
    case sumRssFile = "sum_rss_file"
    /// Σ over the ranks of `smaps_rollup` Pss (shared file pages divided among the processes mapping them).
    case sumPss = "sum_pss"
    case sumPssAnon = "sum_pss_anon"
    case sumPssFile = "sum_pss_file"
    /// `/proc/meminfo` MemAvailable and Cached (the page cache), machine-wide.
    case memAvailable = "mem_available"
    case cached
    /// The cgroup's memory usage: v1 `memory.usage_in_bytes`, v2 `memory.current` (page cache included).
    case cgroupUsage = "cgroup_usage"

    package var description: String { rawValue }

    package var title: String {
        switch self {
        case .sumRssAnon: "Σ RssAnon"
        case .sumRss: "Σ VmRSS"
        case .sumRssFile: "Σ RssFile"
        case .sumPss: "Σ Pss"
        case .sumPssAnon: "Σ Pss_Anon"
        case .sumPssFile: "Σ Pss_File"
        case .memAvailable: "MemAvailable"
        case .cached: "Cached"
        case .cgroupUsage: "cgroup usage"
        }
    }
}

extension MachineFigure: ReadingFigure {
    package var index: Int { Self.allCases.firstIndex(of: self) ?? 0 }
    package var name: String { rawValue }
    /// MemAvailable's cost is its drop.
    package var fallsWithUse: Bool { self == .memAvailable }
}

/// One reading of the machine (a figure that could not be read is absent); in JSON `<figure>_bytes`.
package typealias MachineReading = Reading<MachineFigure>

/// The machine's series while N ranks load: each sample carries every rank's VmRSS beside the Σ figures.
package typealias MachineSeries = ReadingSeries<MachineFigure, [Int?]>

/// One sample of the machine: the Σ figures and each rank's VmRSS (nil for a rank whose process is gone).
package typealias MachineSample = MachineSeries.Sample

extension ReadingSeries.Sample where Extra == [Int?] {
    package init(seconds: Double, reading: Reading<Figure>, ranks: [Int?]) {
        self.init(seconds: seconds, reading: reading, extra: ranks)
    }

    /// Each rank's VmRSS, in rank order.
    package var ranks: [Int?] {
        get { extra }
        set { extra = newValue }
    }
}
