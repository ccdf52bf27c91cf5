import Loading
import ResultsFormat
import TensorEngine

/// The section that sets the loaders side by side: per strategy (and dtype), the engine's exact ideal and
/// each real loader measured under the same claim, with one sentence each.
extension MarkdownReport {
    /// The runs grouped by claim (strategy and dtype), in the order they first appear, each group's runs in
    /// order; only groups measured by more than one loader, or by a loader other than the engine.
    static func loaderGroups(_ r: ScenarioResults) -> [[RunResult]] {
        var order: [String] = []
        var groups: [String: [RunResult]] = [:]
        for run in r.runs {
            let key = "\(run.strategy.rawValue)|\(run.id.split(separator: "@").first ?? "")|\(run.repeatIndex)"
            if groups[key] == nil { order.append(key) }
            groups[key, default: []].append(run)
        }
        return order.compactMap { groups[$0] }.filter { $0.contains { !$0.loader.isEngine } }
    }

    static func loaderComparison(_ r: ScenarioResults) -> String {
        let groups = loaderGroups(r)
        guard !groups.isEmpty else { return "" }
        var md = "## Loaders side by side\n\n"
        md +=
            "Each claim measured on the engine (bigmodel-bench's exact implementation of the path, with a ledger) and on the real loader "
        md +=
            "(measured from outside through `/proc`: it has no ledger and no jemalloc figures). VmHWM Δ for a loader is the kernel's peak "
        md +=
            "less its own code pages paged in during the load (from `smaps`); RSS anon / file are sampled peaks above its baseline, taken after its imports.\n\n"
        var rows = [["claim", "loader", "predicted", "VmHWM Δ", "RSS anon / file Δ", "seconds", "verdict"]]
        var sentences: [String] = []
        for group in groups {
            for run in group {
                let m = run.measurement
                let hwm = m.map { $0.judgedPeaks[.vmhwm] } ?? nil
                rows.append([
                    "\(run.strategy.rawValue) → \(run.dtype)", run.loader.name, Format.size(run.predictedPeakBytes),
                    Format.size(hwm),
                    "\(Format.size(m?.peaks[.rssAnon])) / \(Format.size(m?.peaks[.rssFile]))",
                    run.seconds.map { Format.seconds($0, digits: 2) } ?? "-",
                    "**\(run.verdict.rawValue)**",
                ])
                sentences.append("- **\(run.id)**: " + loaderSentence(run))
            }
        }
        md += Format.markdownTable(rows, rightAligned: [2, 3, 4, 5]) + "\n"
        md += sentences.joined(separator: "\n") + "\n\n"
        return md
    }

    /// Held, failed by how much, or held only as file pages — in one sentence.
    static func loaderSentence(_ run: RunResult) -> String {
        guard let m = run.measurement else { return "\(run.verdict.rawValue): \(run.verdictDetail)" }
        let versions =
            m.outside?.subjectVersions.map { v in
                ["transformers", "torch", "safetensors"].compactMap { name in v[name].map { "\(name) \($0)" } }.joined(
                    separator: ", ")
            }.map { $0.isEmpty ? "" : " (\($0))" } ?? ""
        switch run.verdict {
        case .pass:
            let held = m.outside?.residency.map { residencyPhrase($0) } ?? "held"
            return "the claim \(held)\(versions)."
        case .fail:
            let failed = run.checks.filter { !$0.passed }.map(\.failureDescription).joined(separator: "; ")
            return "the claim failed\(versions): \(failed)."
        case .oom, .error:
            return "\(run.verdict.rawValue)\(versions): \(run.verdictDetail)"
        }
    }

    static func residencyPhrase(_ residency: Residency) -> String {
        switch residency {
        case .anonymous: "held, as the loader's own memory"
        case .filePages: "held only as file pages (the mapped checkpoint, shared by every process mapping it)"
        case .mixed: "held, partly as file pages"
        case .notResident: "held: the weights were never all resident at once"
        }
    }
}
