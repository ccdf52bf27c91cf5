import ResultsFormat
import TensorEngine

/// One chart comparing every run's measured peaks with its predicted peak and allowed range: horizontal bars
/// (VmHWM Δ, RSS anon peak Δ, jemalloc allocated peak Δ, ledger peak) per run, a line at the prediction and a
/// shaded band over the allowed range.
package enum PeaksChart {
    package static let width = 1000.0

    struct Bar: Sendable {
        let label: String
        let colour: String
        let value: @Sendable (RunMeasurement) -> Int?
    }

    static let bars: [Bar] = [
        Bar(
            label: "VmHWM Δ (kernel high-water mark − baseline VmRSS)", colour: Style.purple,
            value: { $0.peaks[.vmhwm] }),
        Bar(label: "RSS anon peak Δ (sampled)", colour: Style.blue, value: { $0.peaks[.rssAnon] }),
        Bar(label: "jemalloc allocated peak Δ (sampled)", colour: Style.green, value: { $0.peaks[.jemallocAllocated] }),
        // jemalloc counts whole size classes, so its bar is judged against this one, not against the red band.
        Bar(
            label: "ledger peak at jemalloc size classes (jemalloc's bound)", colour: Style.grey,
            value: { $0.peaks[.ledgerSizeClass] }),
        Bar(label: "ledger peak (exact)", colour: Style.ink, value: { $0.engine?.ledgerPeakBytes }),
    ]

    package static func svg(results: ScenarioResults) -> String {
        var body = SVGDocument(width: width, height: 0)
        let runs = results.runs
        let labels = runs.map {
            "\(Format.runLabel($0, repeatCount: results.scenario.repeatCount)) (\($0.verdict.rawValue))"
        }
        let plotLeft = max(140, (labels.map { Style.textWidth($0) }.max() ?? 0) + 24)
        let plotRight = width - 32
        let plotWidth = plotRight - plotLeft

        var high = 1.0
        for run in runs {
            for value in [run.predictedPeakBytes, run.upperBoundBytes] {
                if let value { high = max(high, Double(value)) }
            }
            if let m = run.measurement { for bar in bars { if let v = bar.value(m) { high = max(high, Double(v)) } } }
        }
        var low = 0.0
        for run in runs {
            if let m = run.measurement { for bar in bars { if let v = bar.value(m) { low = min(low, Double(v)) } } }
        }
        if low > -0.02 * high { low = 0 }
        let unit = ByteUnit.forMaximum(high)
        let axis = Axis.nice(low: low / unit.bytes, high: high / unit.bytes, target: 8)
        let xScale = { (bytes: Double) -> Double in
            plotLeft + (bytes / unit.bytes - axis.minimum) / (axis.maximum - axis.minimum) * plotWidth
        }

        var y = legend(&body, results: results)
        let barHeight = 9.0
        let barGap = 2.0
        let groupPadding = 10.0
        let groupHeight = Double(bars.count) * (barHeight + barGap) - barGap + 2 * groupPadding
        let plotTop = y
        let plotBottom = plotTop + Double(max(runs.count, 1)) * groupHeight
        y = plotBottom

        body.rect(
            x: plotLeft, y: plotTop, width: plotWidth, height: plotBottom - plotTop,
            [("id", "plot-area"), ("fill", "#ffffff")])
        for tick in axis.ticks {
            let tx = xScale(tick * unit.bytes)
            body.line(x1: tx, y1: plotTop, x2: tx, y2: plotBottom, [("stroke", Style.grid), ("stroke-width", "0.8")])
            body.line(x1: tx, y1: plotBottom, x2: tx, y2: plotBottom + 5, [("stroke", Style.axis)])
            body.text("\(axis.label(tick)) \(unit.name)", x: tx, y: plotBottom + 18, anchor: .middle)
        }
        for (index, run) in runs.enumerated() {
            group(
                &body, run: run, label: labels[index], index: index, top: plotTop + Double(index) * groupHeight,
                height: groupHeight, plotLeft: plotLeft, xScale: xScale)
        }
        body.line(x1: plotLeft, y1: plotTop, x2: plotLeft, y2: plotBottom, [("stroke", Style.axis)])
        body.line(x1: plotLeft, y1: plotBottom, x2: plotRight, y2: plotBottom, [("stroke", Style.axis)])
        body.text(
            "bytes, \(unit.name) (\(unit.definition))", x: plotLeft + plotWidth / 2, y: plotBottom + 38,
            anchor: .middle, fill: Style.muted)
        let height = (plotBottom + 56).rounded(.up)
        var document = SVGDocument(width: width, height: height)
        for line in body.body { document.raw(line) }
        return document.render(
            title: "\(results.scenario.name): measured peaks against predicted bounds",
            description:
                "For each run: VmHWM delta, RSS anon peak delta, jemalloc allocated peak delta and ledger peak as bars; the predicted peak as a line; the allowed range as a band."
        )
    }

    /// The title and the legend; returns the y below them.
    static func legend(_ body: inout SVGDocument, results: ScenarioResults) -> Double {
        var y = 28.0
        body.text(
            "\(results.scenario.name): measured peaks against each run's predicted bound", x: 24, y: y, size: 16,
            weight: "bold")
        y += 20
        body.text(
            "scale \(Format.trimmed(results.scale.chosen)) · Δ = bytes above the measured child's pre-load baseline · the ledger peak is absolute",
            x: 24, y: y, fill: Style.muted)
        y += 14

        // Legend: the bars, the prediction, the range.
        enum Swatch {
            case bar(String)
            case predicted
            case band
        }
        var entries: [(Swatch, String)] = bars.map { (.bar($0.colour), $0.label) }
        entries.append((.predicted, "predicted peak (the strategy's formula)"))
        entries.append((.band, "allowed range: predicted ± tolerance (lower bound only for naive, load-then-cast)"))
        let swatchWidth = 24.0
        let layout = ColumnLayout(
            entryWidths: entries.map { swatchWidth + 8 + Style.textWidth($0.1) }, width: width - 48)
        for (i, entry) in entries.enumerated() {
            let (column, row) = layout.position(i)
            let x = 24 + Double(column) * layout.columnWidth
            let cy = y + Double(row) * 18 + 9
            switch entry.0 {
            case .bar(let colour): body.rect(x: x, y: cy - 5, width: swatchWidth, height: 10, [("fill", colour)])
            case .predicted:
                body.line(
                    x1: x + swatchWidth / 2, y1: cy - 8, x2: x + swatchWidth / 2, y2: cy + 8,
                    [("stroke", Style.bound), ("stroke-width", "2.5")])
            case .band:
                body.rect(
                    x: x, y: cy - 7, width: swatchWidth, height: 14,
                    [
                        ("fill", Style.bound), ("fill-opacity", "0.12"), ("stroke", Style.bound),
                        ("stroke-width", "0.8"), ("stroke-dasharray", "3 2"),
                    ])
            }
            body.text(entry.1, x: x + swatchWidth + 8, y: cy + 4)
        }
        return y + Double(layout.rows) * 18 + 12

    }

    /// One run's row: its label, its allowed range, a bar per figure, its prediction.
    static func group(
        _ body: inout SVGDocument, run: RunResult, label: String, index: Int, top: Double, height groupHeight: Double,
        plotLeft: Double,
        xScale: (Double) -> Double
    ) {
        let barHeight = 9.0
        let barGap = 2.0
        let groupPadding = 10.0
        if index % 2 == 1 {
            body.rect(x: 0, y: top, width: plotLeft - 4, height: groupHeight, [("fill", "#f4f4f4")])
        }
        body.text(label, x: plotLeft - 10, y: top + groupHeight / 2 + 4, anchor: .end)
        if let upper = run.upperBoundBytes {
            let from = xScale(Double(run.lowerBoundBytes ?? run.predictedPeakBytes ?? 0))
            let to = xScale(Double(upper))
            body.rect(
                x: from, y: top + 3, width: to - from, height: groupHeight - 6,
                [
                    ("fill", Style.bound), ("fill-opacity", "0.12"), ("stroke", Style.bound), ("stroke-width", "0.8"),
                    ("stroke-dasharray", "3 2"),
                ])
        }
        if let m = run.measurement {
            for (b, bar) in bars.enumerated() {
                guard let value = bar.value(m) else { continue }
                let by = top + groupPadding + Double(b) * (barHeight + barGap)
                let x0 = xScale(0)
                let x1 = xScale(Double(value))
                body.rect(x: min(x0, x1), y: by, width: abs(x1 - x0), height: barHeight, [("fill", bar.colour)])
            }
        } else {
            body.text(
                "no measurement: \(run.verdict.rawValue)", x: xScale(0) + 8, y: top + groupHeight / 2 + 4,
                fill: Style.muted)
        }
        if let predicted = run.predictedPeakBytes {
            let px = xScale(Double(predicted))
            body.line(
                x1: px, y1: top + 2, x2: px, y2: top + groupHeight - 2,
                [("stroke", Style.bound), ("stroke-width", "2.5"), ("data-run", run.id)])
        }
    }
}
