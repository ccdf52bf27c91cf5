import ResultsFormat
import TensorEngine

/// The section on runs of several ranks: what they cost the machine together, per strategy, with the
/// machine-level claim and its verdict, and the predictions for a node of 8 ranks at full size.
extension MarkdownReport {
    static let nodeRanks = 8

    static func machineSection(_ r: ScenarioResults, charts: [String]) -> String {
        guard let machines = r.machineRuns, !machines.isEmpty else { return "" }
        var md = "## The machine: ranks loading at once\n\n"
        md +=
            "Each run below was loaded by N processes at once, started together behind a barrier with torchrun's variables (`RANK`, "
        md +=
            "`LOCAL_RANK`, `WORLD_SIZE`, `LOCAL_WORLD_SIZE`), each holding its model until every rank had loaded. Σ figures add the ranks' "
        md +=
            "`/proc/<pid>/status` and `smaps_rollup`; Pss divides a shared page among the processes mapping it, so N ranks mapping one "
        md +=
            "checkpoint count it once in Σ Pss and N times in Σ VmRSS. Σ Pss held is read at the moment every rank held its model, "
        md +=
            "the one moment the ranks' mappings stand still (rollups read one after another while pages are being mapped can count a "
        md += "shared page twice).\n\n"
        var rows = [
            [
                "run", "ranks", "per-rank peak (VmHWM Δ)", "Σ VmRSS Δ", "Σ Pss Δ", "Σ Pss Δ held", "Σ RssAnon Δ",
                "MemAvailable drop", "verdict",
            ]
        ]
        for m in machines {
            let peaks = m.rankPeakBytes.compactMap { $0 }
            let perRank = peaks.isEmpty ? "-" : "\(Format.size(peaks.min())) – \(Format.size(peaks.max()))"
            rows.append([
                m.id, String(m.ranks), perRank, Format.size(m.peaks[.sumRss]), Format.size(m.peaks[.sumPss]),
                Format.size(m.held?[.sumPss]),
                Format.size(m.peaks[.sumRssAnon]), Format.size(m.peaks[.memAvailable]), "**\(m.verdict.rawValue)**",
            ])
        }
        md += Format.markdownTable(rows, rightAligned: [1, 2, 3, 4, 5, 6, 7]) + "\n"
        for (index, m) in machines.enumerated() {
            md += "- **\(m.id) × \(m.ranks)** (\(m.verdict.rawValue)): \(m.verdictDetail). Claims: "
            md += m.checks.map {
                "\($0.name) \(Format.size($0.measuredBytes)) \($0.relation.rawValue) \(Format.size($0.boundBytes)) \($0.passed ? "✓" : "✗")"
            }.joined(separator: "; ")
            md += ". Σ \(m.method).\n"
            if index < charts.count {
                md += "\n![\(m.id) × \(m.ranks) ranks: the machine over time](\(linkTarget(charts[index])))\n"
            }
        }
        md += "\n" + nodePredictions(r)
        return md
    }

    /// Full-size predictions for a node of `nodeRanks` ranks: each run's machine-level upper bound.
    static func nodePredictions(_ r: ScenarioResults) -> String {
        guard !r.fullSizePredictions.isEmpty else { return "" }
        var rows = [["run", "per rank (formula)", "node of \(nodeRanks) ranks"]]
        for p in r.fullSizePredictions {
            let node =
                p.strategy == .mmap
                ? (p.figures.mappedBytes ?? 0) + nodeRanks * p.predictedPeakBytes : nodeRanks * p.predictedPeakBytes
            rows.append([p.run, "\(Format.sizeBoth(p.predictedPeakBytes)) (\(p.formula))", Format.sizeBoth(node)])
        }
        var md =
            "At full size, a node of \(nodeRanks) ranks would need (each rank's formula × \(nodeRanks); mmap: the mapped checkpoint once, shared, plus each rank's owned bytes):\n\n"
        md += Format.markdownTable(rows, rightAligned: [1, 2]) + "\n"
        return md
    }
}
