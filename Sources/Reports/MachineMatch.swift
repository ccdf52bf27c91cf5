import ResultsFormat

/// Whether two results files were measured on machines whose memory figures can be compared, and why not.
///
/// Memory figures depend on what the kernel and the allocator do with pages, so these must match for a memory
/// regression to mean anything: the architecture, the kernel series (major.minor: page accounting changes
/// between series), CPU model, logical CPUs, MemTotal within 3% (a VM given a few MiB more or less by its host
/// is the same machine kind), page size, the transparent-huge-page mode and its defrag mode, the allocator and its
/// options (`MALLOC_CONF`), and the scenario's cache mode. The kernel's build string within a series, the
/// hostname and swap are notes: CI machines of one kind are rebuilt with new build strings, and a gate that stops
/// gating whenever that happens gates nothing.
package struct MachineMatch: Sendable {
    /// Differences that stop memory and time figures from gating (unless forced).
    package let differences: [Comparison.Difference]
    /// Differences worth knowing that change no verdict.
    package let notes: [String]

    /// MemTotal may differ by this fraction of the baseline's.
    package static let memTotalTolerance = 0.03

    package init(baseline: ScenarioResults, current: ScenarioResults) {
        let b = baseline.environment
        let c = current.environment
        var differences: [Comparison.Difference] = []
        var notes: [String] = []
        func differ(_ field: String, _ x: String, _ y: String) {
            if x != y { differences.append(Comparison.Difference(field: field, baseline: x, current: y)) }
        }
        func note(_ field: String, _ x: String, _ y: String) {
            if x != y { notes.append("\(field): \(x) (baseline) vs \(y) (current)") }
        }
        let bk = Kernel(b.kernel)
        let ck = Kernel(c.kernel)
        differ("architecture", bk.architecture, ck.architecture)
        differ("kernel series", bk.series, ck.series)
        note("kernel build", b.kernel, c.kernel)
        differ("CPU model", b.cpuModel, c.cpuModel)
        differ("logical CPUs", String(b.logicalCpus), String(c.logicalCpus))
        if Double(abs(b.memTotalBytes - c.memTotalBytes)) > Self.memTotalTolerance * Double(b.memTotalBytes) {
            differences.append(
                Comparison.Difference(
                    field: "memory (MemTotal)", baseline: Format.size(b.memTotalBytes),
                    current: Format.size(c.memTotalBytes)))
        } else if b.memTotalBytes != c.memTotalBytes {
            notes.append(
                "MemTotal: \(Format.size(b.memTotalBytes)) (baseline) vs \(Format.size(c.memTotalBytes)) (current), within \(Format.trimmed(Self.memTotalTolerance * 100))%"
            )
        }
        differ("page size", String(b.pageSizeBytes), String(c.pageSizeBytes))
        differ("transparent huge pages", b.transparentHugePages, c.transparentHugePages)
        differ("transparent huge pages defrag", b.transparentHugePagesDefrag, c.transparentHugePagesDefrag)
        differ("allocator", b.allocator, c.allocator)
        differ("MALLOC_CONF", b.mallocConf, c.mallocConf)
        differ("cache mode", baseline.scenario.cache.rawValue, current.scenario.cache.rawValue)
        note("hostname", b.hostname, c.hostname)
        note("swap", Format.size(b.swapTotalBytes), Format.size(c.swapTotalBytes))
        self.differences = differences
        self.notes = notes
    }

    /// The parts of `EnvironmentInfo.kernel` ("Linux 6.18.44-fc-v669 x86_64": name, release, machine).
    struct Kernel {
        let architecture: String
        /// "Linux 6.18": the name and the release's first two numbers.
        let series: String

        init(_ text: String) {
            let words = text.split(separator: " ")
            architecture = words.count >= 3 ? String(words[words.count - 1]) : "unknown"
            let name = words.first.map(String.init) ?? "unknown"
            let release = words.count >= 2 ? words[1] : ""
            let numbers = release.split(whereSeparator: { !$0.isNumber }).prefix(2)
            series = numbers.count == 2 ? "\(name) \(numbers.joined(separator: "."))" : "\(name) \(release)"
        }
    }
}
