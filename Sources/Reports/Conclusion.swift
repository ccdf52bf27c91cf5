import Loading
import ResultsFormat
import TensorEngine

/// The report's opening: whether the claims held (and which failed, by how much), the cheapest path in memory
/// and in time among the runs that passed, and which paths fit this machine at full size with their predicted
/// peaks (``FitEstimate``'s rules). A reader who stops after it knows the answer.
enum Conclusion {
    static func render(_ r: ScenarioResults) -> String {
        var md = "## Conclusion\n\n"
        md += claims(r) + "\n\n"
        if let lines = lines(r) { md += lines + "\n\n" }
        // A sweep's cheapest path is said at its largest size.
        if let cheapest = cheapest(MarkdownReport.largestSize(r)) { md += cheapest + "\n\n" }
        md += fit(r)
        return md
    }

    /// "All 7 claims held …" or "2 of 7 claims failed: …", counting every run (and machine run) once.
    static func claims(_ r: ScenarioResults) -> String {
        let machines = r.machineRuns ?? []
        let total = r.runs.count + machines.count
        let failed =
            r.runs.filter { $0.verdict != .pass }.map {
                (
                    Format.runLabel($0, repeatCount: r.scenario.repeatCount) + ($0.rank.map { " rank \($0)" } ?? ""),
                    $0.verdict, $0.verdictDetail
                )
            }
            + machines.filter { $0.verdict != .pass }.map {
                ("\($0.id) × \($0.ranks) ranks on \($0.node)", $0.verdict, $0.verdictDetail)
            }
        let incomplete =
            r.complete
            ? ""
            : " (the scenario stopped early: \(r.stoppedReason?.rawValue ?? "incomplete"); only the runs measured are counted)"
        if total == 0 { return "**Nothing was measured**\(incomplete)." }
        if failed.isEmpty {
            return
                "**All \(total) claim\(total == 1 ? "" : "s") held**\(incomplete): every run's measured peaks were within its predicted bounds, both ways, and the probes agreed."
        }
        let list = failed.map { "**\($0.0)** \($0.1.rawValue) — \(firstClause($0.2))" }.joined(separator: "; ")
        return "**\(failed.count) of \(total) claim\(total == 1 ? "" : "s") did not hold**\(incomplete): \(list)."
    }

    /// A sweep's judged lines: "All 14 lines held …" or "2 of 14 lines did not hold: …" with each one's cost.
    static func lines(_ r: ScenarioResults) -> String? {
        let judged = (r.fits ?? []).filter { $0.verdict == .pass || $0.verdict == .fail }
        guard !judged.isEmpty else { return nil }
        let failed = judged.filter { $0.verdict == .fail }
        if failed.isEmpty {
            return
                "**All \(judged.count) lines held**: each run's cost in copies of the model matched its claim, its held-out size was where the smaller sizes put it, and every size lay on its line."
        }
        let list = failed.map { "**\($0.run)** \($0.figure.label) \(firstClause($0.verdictDetail))" }
        return
            "**\(failed.count) of \(judged.count) lines did not hold**: \(list.joined(separator: "; ")) (see \"Cost as copies of the model\")."
    }

    /// The detail's first clause (up to the first "; "): the bound that failed and by how much.
    static func firstClause(_ detail: String) -> String {
        let line = detail.replacingOccurrences(of: "\n", with: " ")
        return line.components(separatedBy: "; ").first ?? line
    }

    /// The lowest VmHWM Δ and the shortest load among passing runs that hold the whole model in memory;
    /// device-map is said apart (what it leaves on accelerators and disk is not loaded into this memory).
    static func cheapest(_ r: ScenarioResults) -> String? {
        let passed = r.runs.filter { $0.verdict == .pass }
        func peak(_ run: RunResult) -> Int? { run.measurement?.peaks[.vmhwm] ?? run.measurement?.peaks[.rss] }
        let holding = passed.filter { $0.strategy != .deviceMap }
        guard
            let (lowest, lowestPeak) = holding.compactMap({ run in peak(run).map { (run, $0) } }).min(by: {
                $0.1 < $1.1
            })
        else { return nil }
        var text = "Lowest peak holding the whole model: **\(lowest.id)** (VmHWM Δ \(Format.size(lowestPeak)))"
        let timed = holding.compactMap { run in run.seconds.map { (run, $0) } }
        if let (fastest, seconds) = timed.min(by: { $0.1 < $1.1 }) {
            text += "; fastest: **\(fastest.id)** (\(Format.seconds(seconds, digits: 2)) s"
            text +=
                (fastest.floorMultiple.map { ", \(ByteSize.fixed($0, digits: 1))× the read floor's time" } ?? "") + ")"
        }
        text += ", among the runs that passed."
        if let map = passed.first(where: { $0.strategy == .deviceMap }), let mapPeak = peak(map) {
            text += " \(map.id) kept \(Format.size(mapPeak)) in RAM by placing the rest on its accelerators and disk."
        }
        return text
    }

    /// Which paths fit this machine at full size, from the full-size predictions (or, for an existing checkpoint,
    /// the measured size's), with ranks multiplied in.
    static func fit(_ r: ScenarioResults) -> String {
        let memory = r.environment.memAvailableBytes
        let estimates = Self.estimates(r, memory: memory)
        guard !estimates.isEmpty else { return "" }
        let modelBytes = r.fullSizePredictions.first?.figures.modelBytes ?? r.runs.first?.figures?.modelBytes
        let weights = modelBytes.map { ": \(Format.size($0)) of weights" } ?? ""
        let size =
            r.fullSizePredictions.isEmpty ? "the checkpoint as measured\(weights)" : "full size (scale 1\(weights))"
        var md =
            "At \(size), with \(Format.size(memory)) available (MemAvailable at the start; MemTotal \(Format.size(r.environment.memTotalBytes))):\n\n"
        for status in [FitEstimate.Status.fits, .tight, .doesNotFit] {
            let group = estimates.filter { $0.status == status }.sorted { $0.needBytes < $1.needBytes }
            guard !group.isEmpty else { continue }
            let label =
                status == .fits ? "fit" : status == .tight ? "tight (fits, but not with the tolerance)" : "do not fit"
            md +=
                "- \(label): "
                + group.map { "\($0.run) \(Format.size($0.needBytes))\($0.ranks > 1 ? " (\($0.ranks) ranks)" : "")" }
                .joined(separator: ", ") + "\n"
        }
        if let pick = FitEstimate.pick(estimates) {
            md +=
                "\nPick: **\(pick.run)**, \(Format.size(pick.needBytes)) predicted, \(Format.size(pick.headroomBytes)) to spare.\n\n"
        } else {
            md += "\nNo path fits this machine at this size.\n\n"
        }
        return md
    }

    static func estimates(_ r: ScenarioResults, memory: Int) -> [FitEstimate] {
        let ranks = Dictionary((r.machineRuns ?? []).map { ($0.id, $0.ranks) }, uniquingKeysWith: max)
        let predictions: [(String, StrategyName, Int, MemoryFigures?)] =
            r.fullSizePredictions.isEmpty
            ? r.runs.filter { $0.repeatIndex == 0 && ($0.rank ?? 0) == 0 }.compactMap { run in
                run.predictedPeakBytes.map { (run.id, run.strategy, $0, run.figures) }
            }
            : r.fullSizePredictions.map { ($0.run, $0.strategy, $0.predictedPeakBytes, $0.figures) }
        return predictions.map { run, strategy, peak, figures in
            FitEstimate(
                run: run, strategy: strategy, processPeakBytes: peak, mappedBytes: figures?.mappedBytes,
                ranks: ranks[run] ?? 1,
                tolerance: ClaimTolerance(
                    relative: r.scenario.toleranceRelative, absoluteBytes: r.scenario.toleranceAbsoluteBytes),
                memoryBytes: memory)
        }
    }
}
