import ResultsFormat
import TensorEngine

extension MarkdownReport {
    /// The results with only the runs of a sweep's largest size (the results as they are without a sweep).
    static func largestSize(_ results: ScenarioResults) -> ScenarioResults {
        guard let largest = results.sweep?.points.last?.scale else { return results }
        var focus = results
        focus.runs = results.runs.filter { $0.scale == largest }
        focus.machineRuns = results.machineRuns?.filter { $0.scale == largest }
        return focus
    }

    /// One chart per loader and figure that has a fit, loaders in the order their runs appear.
    static func sweepChartKeys(_ results: ScenarioResults) -> [(Subject, FitFigure)] {
        var loaders: [Subject] = []
        for fit in results.fits ?? [] where !loaders.contains(fit.loader) { loaders.append(fit.loader) }
        return loaders.flatMap { loader in FitFigure.allCases.map { (loader, $0) } }
    }

    /// "Cost as copies of the model": each run's line per figure, the held-out size, the verdicts and charts.
    static func sweepSection(_ r: ScenarioResults, charts: [(Subject, FitFigure, String)]) -> String {
        guard let sweep = r.sweep else { return "" }
        var md = "## Cost as copies of the model\n\n"
        let sizes = sweep.points.map {
            "\(SweepFitting.scaleText($0.scale)) (\(Format.size($0.checkpoint.totalSizeBytes)))"
        }
        md +=
            "Swept at scales \(sizes.joined(separator: ", ")): fractions \(sweep.fractions.map(SweepFitting.scaleText).joined(separator: ", ")) of \(SweepFitting.scaleText(sweep.baseScale))"
        md +=
            sweep.heldOutScale.map {
                "; scale \(SweepFitting.scaleText($0)) held out: predicted from a line through the others before it was measured.\n\n"
            } ?? ".\n\n"
        md +=
            "Each figure is fitted by least squares as **slope × checkpoint bytes + fixed cost**: the slope is the loader's cost in copies of the model, the fixed cost its interpreter, imports and allocator. "
        md +=
            "The claimed figure (VmHWM Δ; RssAnon for mmap) is judged: its slope against the formula's (engine ± \(SweepFitting.copies(SweepFit.slopeTolerance(engine: true))), other loaders ± \(SweepFitting.copies(SweepFit.slopeTolerance(engine: false))) copies), the held-out size within the run's tolerance, and every point within it of the line.\n\n"
        md += fitsTable(r.fits ?? [])
        let others = (r.fits ?? []).filter { !$0.figure.isJudged(for: $0.strategy) }
        if !others.isEmpty {
            md += "\n<details><summary>The other figures (fitted, not judged)</summary>\n\n" + fitsTable(others)
            md += "\n</details>\n"
        }
        for (loader, figure, file) in charts where figure.isJudged(for: .naive) || figure == .rssAnonPeakDelta {
            md += "\n![\(loader.name): \(figure.label) against checkpoint bytes](\(linkTarget(file)))\n"
        }
        let rest = charts.filter { !($0.1.isJudged(for: .naive) || $0.1 == .rssAnonPeakDelta) }
        if !rest.isEmpty {
            md += "\n<details><summary>The other figures' charts</summary>\n\n"
            for (loader, figure, file) in rest {
                md += "![\(loader.name): \(figure.label) against checkpoint bytes](\(linkTarget(file)))\n\n"
            }
            md += "</details>\n"
        }
        return md + "\n"
    }

    /// The judged fits (or `fits` as given), one row each.
    static func fitsTable(_ fits: [SweepFit]) -> String {
        let shown = fits.filter { $0.verdict != .notJudged }.isEmpty ? fits : fits.filter { $0.verdict != .notJudged }
        guard !shown.isEmpty else { return "" }
        var rows = [
            [
                "run", "figure", "copies", "claim", "fixed cost", "sizes", "largest residual", "held out: predicted",
                "measured", "verdict",
            ]
        ]
        for fit in shown {
            rows.append([
                fit.run, fit.figure.label, fit.slope.map(SweepFitting.copies) ?? "-",
                fit.claim.map {
                    "\(SweepFitting.copies($0.copies)) \($0.bothWays ? "±" : "+") \(SweepFitting.copies($0.toleranceCopies))"
                } ?? "-",
                fit.interceptBytes.map(ByteSize.binaryWithMinus) ?? "-", String(Set(fit.points.map(\.scale)).count),
                fit.maxResidualBytes.map(ByteSize.binaryWithMinus) ?? "-",
                fit.holdout.map { h in
                    Format.size(h.predictedBytes) + (h.predictionErrorBytes.map { " ± " + Format.size($0) } ?? "")
                } ?? "-",
                fit.holdout.map { Format.size($0.measuredBytes) } ?? "-",
                "**\(fit.verdict.rawValue)**",
            ])
        }
        var md = Format.markdownTable(rows, rightAligned: Set(2...8))
        for fit in shown where fit.verdict == .fail || fit.verdict == .tooFewSizes {
            md += "\n- **\(fit.run)** \(fit.figure.label): \(fit.verdictDetail)"
        }
        return md + "\n"
    }
}
