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

/// One reading of the machine (a figure that could not be read is absent); in JSON `<figure>_bytes`.
package struct MachineReading: Codable, Sendable, Equatable {
    package var values: [MachineFigure: Int] = [:]

    package init(_ values: [MachineFigure: Int] = [:]) { self.values = values }

    package subscript(figure: MachineFigure) -> Int? {
        get { values[figure] }
        set { values[figure] = newValue }
    }

    struct Key: CodingKey {
        let stringValue: String
        init(stringValue: String) { self.stringValue = stringValue }
        var intValue: Int? { nil }
        init?(intValue: Int) { nil }
    }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Key.self)
        for figure in MachineFigure.allCases {
            let name = figure.rawValue + "_bytes"
            if let key = container.allKeys.first(where: { MemoryReading.snake($0.stringValue) == name }) {
                values[figure] = try container.decode(Int.self, forKey: key)
            }
        }
    }

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        for figure in MachineFigure.allCases {
            if let value = values[figure] {
                try container.encode(value, forKey: Key(stringValue: MemoryReading.camel(figure.rawValue + "_bytes")))
            }
        }
    }
}
