import Harness
import TensorEngine

/// The chart of one run's memory over time: RSS anon, RSS file and jemalloc allocated (deltas over the
/// child's pre-load baseline) and the ledger's live bytes, with the phases as numbered bands, the predicted
/// peak as a line, the allowed range as a band and the kernel's VmHWM peak as a marker on the right edge.
public enum TimelineChart {
    public static let width = 1000.0
    public static let plotHeight = 320.0
    static let marginLeft = 84.0
    static let marginRight = 28.0

    struct Series {
        let column: String
        let label: String
        let colour: String
        let dash: String?
        let strokeWidth: Double
        let peak: Int
    }

    /// The SVG for `run`, or nil when it has no measurement (the child died before measuring).
    public static func svg(results: ScenarioResults, run: RunResult) -> String? {
        guard let m = run.measurement else { return nil }
        let label = Format.runLabel(run, repeatCount: results.scenario.repeatCount)
        var svg = SVGDocument(width: width, height: 0)
        // Layout is computed top to bottom; the document height is known at the end.
        let plotLeft = marginLeft
        let plotWidth = width - marginLeft - marginRight

        let series = [
            Series(column: "rss_anon", label: "RSS anon Δ (sampled RssAnon − baseline), peak \(Format.size(m.peaks.rssAnonDeltaBytes))",
                   colour: Style.blue, dash: nil, strokeWidth: 2, peak: m.peaks.rssAnonDeltaBytes),
            Series(column: "rss_file", label: "RSS file Δ (sampled RssFile − baseline), peak \(Format.size(m.peaks.rssFileDeltaBytes))",
                   colour: Style.orange, dash: nil, strokeWidth: 1.5, peak: m.peaks.rssFileDeltaBytes),
            Series(column: "jemalloc_allocated",
                   label: "jemalloc allocated Δ (stats.allocated − baseline), peak \(Format.size(m.peaks.jemallocAllocatedDeltaBytes))",
                   colour: Style.green, dash: "7 4", strokeWidth: 1.6, peak: m.peaks.jemallocAllocatedDeltaBytes),
            Series(column: "ledger_live", label: "ledger live (the engine's exact owned bytes), peak \(Format.size(m.ledgerPeakBytes))",
                   colour: Style.ink, dash: "2 3", strokeWidth: 1.8, peak: m.ledgerPeakBytes),
        ]
        let timeIndex = m.timeline.columns.firstIndex(of: "seconds")
        var data: [[(Double, Double)]] = series.map { s in
            guard let timeIndex, let index = m.timeline.columns.firstIndex(of: s.column) else { return [] }
            return m.timeline.points.compactMap { p in index < p.count && timeIndex < p.count ? (p[timeIndex], p[index]) : nil }
        }

        // Ranges.
        let predicted = m.predictedPeakBytes
        let upper = run.upperBoundBytes
        let lower = run.lowerBoundBytes
        let vmhwm = m.peaks.vmhwmDeltaBytes
        let cap = m.outOfMemory?.capBytes
        var high = Double(max(predicted, upper ?? 0, vmhwm ?? 0, cap ?? 0))
        var low = 0.0
        for points in data {
            for (_, v) in points {
                high = max(high, v)
                low = min(low, v)
            }
        }
        for s in series { high = max(high, Double(s.peak)) }
        // Readings a few pages below the baseline are noise: clip them at 0 rather than extend the axis.
        if low > -0.02 * high { low = 0 }
        let unit = ByteUnit.forMaximum(high)
        let yAxis = Axis.nice(low: low / unit.bytes, high: high / unit.bytes)
        var tEnd = data.compactMap { $0.last?.0 }.max() ?? 0
        for phase in m.phases { tEnd = max(tEnd, phase.endSeconds) }
        let xAxis = Axis.nice(low: 0, high: max(tEnd, 1e-3), target: 8)

        // Title and legend.
        var y = 28.0
        svg.text("\(results.scenario.name) · \(label): memory over time", x: plotLeft, y: y, size: 16, weight: "bold")
        y += 20
        svg.text(
            "\(run.strategy) → \(run.dtype) · verdict \(run.verdict.rawValue) · bytes above the measured child's pre-load baseline (ledger live: absolute, 0 at baseline)",
            x: plotLeft, y: y, size: 12, fill: Style.muted)
        y += 14

        enum Swatch {
            case line(colour: String, dash: String?, width: Double)
            case band
            case marker
        }
        var entries: [(Swatch, String)] = series.map { (.line(colour: $0.colour, dash: $0.dash, width: $0.strokeWidth), $0.label) }
        entries.append((.line(colour: Style.bound, dash: "9 4", width: 1.6), "predicted peak \(Format.size(predicted)) = \(m.formula)"))
        if let upper {
            let tolerance = run.toleranceBytes.map { Format.size($0) } ?? Format.size(upper - predicted)
            if let lower {
                entries.append((.band, "allowed range \(Format.size(lower)) – \(Format.size(upper)) (predicted ± \(tolerance))"))
            } else {
                entries.append((.band, "allowed up to \(Format.size(upper)) (upper bound: predicted + \(tolerance))"))
            }
        }
        if let vmhwm {
            entries.append((.marker, "VmHWM Δ \(Format.size(vmhwm)): the kernel's peak (when it happened is not recorded)"))
        }
        if let cap {
            entries.append((.line(colour: Style.purple, dash: "10 3 2 3", width: 1.6), "ledger cap \(Format.size(cap)): the run stopped here (oom)"))
        }
        let swatchWidth = 30.0
        let legendLayout = ColumnLayout(entryWidths: entries.map { swatchWidth + 8 + Style.textWidth($0.1) }, width: plotWidth)
        let legendTop = y
        let rowHeight = 18.0
        for (i, entry) in entries.enumerated() {
            let (column, row) = legendLayout.position(i)
            let x = plotLeft + Double(column) * legendLayout.columnWidth
            let cy = legendTop + Double(row) * rowHeight + 9
            switch entry.0 {
            case .line(let colour, let dash, let width):
                var attrs = [("stroke", colour), ("stroke-width", SVGDocument.n(width))]
                if let dash { attrs.append(("stroke-dasharray", dash)) }
                svg.line(x1: x, y1: cy, x2: x + swatchWidth, y2: cy, attrs)
            case .band:
                svg.rect(x: x, y: cy - 6, width: swatchWidth, height: 12, [("fill", Style.bound), ("fill-opacity", "0.10"), ("stroke", Style.bound), ("stroke-width", "0.8"), ("stroke-dasharray", "3 2")])
            case .marker:
                svg.raw(triangle(tipX: x + swatchWidth / 2 - 5, y: cy))
            }
            svg.text(entry.1, x: x + swatchWidth + 8, y: cy + 4)
        }
        y = legendTop + Double(legendLayout.rows) * rowHeight + 8

        // Phase labels: numbers in a row above the plot, each joined to its band by a leader line. Where bands
        // are too narrow for their numbers, the numbers are spread apart (keeping their order, so leaders never
        // cross); when even that does not fit, every k-th number goes to the same of k rows.
        let xScale = { (t: Double) -> Double in plotLeft + (t - xAxis.minimum) / (xAxis.maximum - xAxis.minimum) * plotWidth }
        let phaseCentres = m.phases.map { xScale(($0.startSeconds + $0.endSeconds) / 2) }
        let labelWidths = m.phases.indices.map { Style.textWidth(String($0 + 1), size: 11) + 5 }
        let rowCount = m.phases.isEmpty ? 0 : max(1, Int((labelWidths.reduce(0, +) / plotWidth).rounded(.up)))
        var labelX = phaseCentres
        for row in 0..<rowCount {
            let members = Array(stride(from: row, to: m.phases.count, by: rowCount))
            let placed = Self.spread(members.map { phaseCentres[$0] }, widths: members.map { labelWidths[$0] }, low: plotLeft, high: plotLeft + plotWidth)
            for (k, index) in members.enumerated() { labelX[index] = placed[k] }
        }
        let stripRowHeight = 15.0
        let stripTop = y
        if !m.phases.isEmpty {
            svg.text("phase", x: plotLeft - 8, y: stripTop + 11, size: 11, anchor: .end, fill: Style.muted)
        }
        let plotTop = stripTop + Double(rowCount) * stripRowHeight + (m.phases.isEmpty ? 6 : 20)
        let plotBottom = plotTop + plotHeight
        let yScale = { (v: Double) -> Double in plotBottom - (v / unit.bytes - yAxis.minimum) / (yAxis.maximum - yAxis.minimum) * plotHeight }

        // Plot area, phase bands, grid.
        svg.rect(x: plotLeft, y: plotTop, width: plotWidth, height: plotHeight, [("id", "plot-area"), ("fill", "#ffffff"), ("stroke", "none")])
        for (i, phase) in m.phases.enumerated() {
            let x0 = xScale(phase.startSeconds)
            let x1 = xScale(phase.endSeconds)
            svg.rect(x: x0, y: plotTop, width: x1 - x0, height: plotHeight, [("fill", i % 2 == 0 ? "#eeeeee" : "#f7f7f7")])
            svg.line(x1: x0, y1: plotTop, x2: x0, y2: plotBottom, [("stroke", "#b5b5b5"), ("stroke-width", "0.8")])
            let labelY = stripTop + Double(i % max(rowCount, 1)) * stripRowHeight + 11
            svg.text(String(i + 1), x: labelX[i], y: labelY, size: 11, anchor: .middle, fill: Style.muted)
            let leaderTop = stripTop + Double(rowCount) * stripRowHeight - 1
            if i % max(rowCount, 1) == rowCount - 1 || rowCount == 1 {
                svg.line(x1: labelX[i], y1: labelY + 3, x2: labelX[i], y2: leaderTop, [("stroke", "#9a9a9a"), ("stroke-width", "0.8")])
            }
            svg.line(x1: labelX[i], y1: leaderTop, x2: phaseCentres[i], y2: plotTop, [("stroke", "#9a9a9a"), ("stroke-width", "0.8")])
        }
        if let last = m.phases.last {
            let x = xScale(last.endSeconds)
            svg.line(x1: x, y1: plotTop, x2: x, y2: plotBottom, [("stroke", "#b5b5b5"), ("stroke-width", "0.8")])
        }
        for tick in yAxis.ticks {
            let ty = yScale(tick * unit.bytes)
            svg.line(x1: plotLeft, y1: ty, x2: plotLeft + plotWidth, y2: ty, [("stroke", Style.grid), ("stroke-width", "0.8")])
            svg.line(x1: plotLeft - 5, y1: ty, x2: plotLeft, y2: ty, [("stroke", Style.axis)])
            svg.text("\(yAxis.label(tick)) \(unit.name)", x: plotLeft - 8, y: ty + 4, anchor: .end)
        }
        for tick in xAxis.ticks {
            let tx = xScale(tick)
            svg.line(x1: tx, y1: plotBottom, x2: tx, y2: plotBottom + 5, [("stroke", Style.axis)])
            svg.text(xAxis.label(tick), x: tx, y: plotBottom + 18, anchor: .middle)
        }

        // Bounds, then the data (clipped to the plot), then the axes on top.
        svg.raw("<clipPath id=\"plot-clip\"><rect x=\"\(SVGDocument.n(plotLeft))\" y=\"\(SVGDocument.n(plotTop))\" width=\"\(SVGDocument.n(plotWidth))\" height=\"\(SVGDocument.n(plotHeight))\"/></clipPath>")
        if let upper {
            let bandLow = yScale(Double(lower ?? predicted))
            let bandHigh = yScale(Double(upper))
            svg.rect(x: plotLeft, y: bandHigh, width: plotWidth, height: bandLow - bandHigh, [("id", "allowed-range"), ("fill", Style.bound), ("fill-opacity", "0.08")])
            svg.line(x1: plotLeft, y1: bandHigh, x2: plotLeft + plotWidth, y2: bandHigh, [("id", "upper-bound"), ("stroke", Style.bound), ("stroke-width", "0.8"), ("stroke-dasharray", "3 2")])
            if lower != nil {
                svg.line(x1: plotLeft, y1: bandLow, x2: plotLeft + plotWidth, y2: bandLow, [("id", "lower-bound"), ("stroke", Style.bound), ("stroke-width", "0.8"), ("stroke-dasharray", "3 2")])
            }
        }
        if let cap {
            let cy = yScale(Double(cap))
            svg.line(x1: plotLeft, y1: cy, x2: plotLeft + plotWidth, y2: cy, [("id", "ledger-cap"), ("stroke", Style.purple), ("stroke-width", "1.6"), ("stroke-dasharray", "10 3 2 3")])
        }
        for (index, s) in series.enumerated() {
            data[index] = simplify(data[index])
            var attrs = [("stroke", s.colour), ("stroke-width", SVGDocument.n(s.strokeWidth)), ("stroke-linejoin", "round"), ("clip-path", "url(#plot-clip)")]
            if let dash = s.dash { attrs.append(("stroke-dasharray", dash)) }
            attrs.append(("data-series", s.column))
            svg.path(data[index].map { (xScale($0.0), yScale($0.1)) }, attrs)
        }
        let py = yScale(Double(predicted))
        svg.line(x1: plotLeft, y1: py, x2: plotLeft + plotWidth, y2: py, [("id", "predicted-peak"), ("stroke", Style.bound), ("stroke-width", "1.6"), ("stroke-dasharray", "9 4")])
        if let vmhwm {
            svg.raw(triangle(tipX: plotLeft + plotWidth, y: yScale(Double(vmhwm)), id: "vmhwm-marker"))
        }
        svg.line(x1: plotLeft, y1: plotTop, x2: plotLeft, y2: plotBottom, [("stroke", Style.axis)])
        svg.line(x1: plotLeft, y1: plotBottom, x2: plotLeft + plotWidth, y2: plotBottom, [("stroke", Style.axis)])

        // Axis titles.
        svg.text(
            "seconds since the measured child's sampler started", x: plotLeft + plotWidth / 2, y: plotBottom + 38, anchor: .middle, fill: Style.muted)
        svg.text(
            "bytes above baseline, \(unit.name) (\(unit.definition))", x: 16, y: plotTop + plotHeight / 2, anchor: .middle, fill: Style.muted,
            rotate: -90)

        // The phases, listed.
        var bottom = plotBottom + 44
        if !m.phases.isEmpty {
            bottom += 18
            svg.text("Phases (numbered bands above)", x: plotLeft, y: bottom, weight: "bold")
            bottom += 6
            let texts = m.phases.enumerated().map { i, p in
                "\(i + 1)  \(p.name): \(Format.seconds(p.startSeconds))–\(Format.seconds(p.endSeconds)) s, ledger \(Format.size(p.ledgerLiveBytesAtStart)) → \(Format.size(p.ledgerLiveBytesAtEnd))"
            }
            let layout = ColumnLayout(entryWidths: texts.map { Style.textWidth($0, size: 11) }, width: plotWidth)
            for (i, text) in texts.enumerated() {
                let (column, row) = layout.position(i)
                svg.text(text, x: plotLeft + Double(column) * layout.columnWidth, y: bottom + 14 + Double(row) * 16, size: 11)
            }
            bottom += Double(layout.rows) * 16
        }
        let height = (bottom + 18).rounded(.up)
        var document = SVGDocument(width: width, height: height)
        for line in svg.body { document.raw(line) }
        return document.render(
            title: "\(results.scenario.name) \(label): memory over time",
            description: "RSS anon, RSS file and jemalloc allocated bytes above the pre-load baseline and the ledger's live bytes, sampled every \(Format.trimmed(results.scenario.sampleIntervalSeconds * 1000)) ms; predicted peak \(predicted) bytes (\(m.formula)).")
    }

    /// Centres for labels of `widths` wanted at `desired` (ascending), moved apart as little as possible so that
    /// none overlaps, in order, within `low…high` when they fit.
    static func spread(_ desired: [Double], widths: [Double], low: Double, high: Double) -> [Double] {
        guard !desired.isEmpty else { return [] }
        var x = desired
        // Left to right: each at least half of both widths after the previous one.
        x[0] = max(x[0], low + widths[0] / 2)
        for i in 1..<x.count { x[i] = max(x[i], x[i - 1] + (widths[i - 1] + widths[i]) / 2) }
        // Right to left: pull back inside the right edge.
        let last = x.count - 1
        x[last] = min(x[last], high - widths[last] / 2)
        if last > 0 { for i in stride(from: last - 1, through: 0, by: -1) { x[i] = min(x[i], x[i + 1] - (widths[i] + widths[i + 1]) / 2) } }
        return x
    }

    /// A left-pointing triangle whose tip is at (`tipX`, `y`).
    static func triangle(tipX: Double, y: Double, id: String? = nil) -> String {
        let n = SVGDocument.n
        let idAttr = id.map { " id=\"\($0)\"" } ?? ""
        return "<path\(idAttr) d=\"M\(n(tipX)),\(n(y)) L\(n(tipX + 10)),\(n(y - 6)) L\(n(tipX + 10)),\(n(y + 6)) Z\" fill=\"\(Style.purple)\" stroke=\"\(Style.ink)\" stroke-width=\"0.6\"/>"
    }

    /// Drops points in the middle of flat runs (same value before and after): the line drawn is identical.
    static func simplify(_ points: [(Double, Double)]) -> [(Double, Double)] {
        guard points.count > 2 else { return points }
        var out: [(Double, Double)] = [points[0]]
        for i in 1..<(points.count - 1) where !(points[i].1 == points[i - 1].1 && points[i].1 == points[i + 1].1) {
            out.append(points[i])
        }
        out.append(points[points.count - 1])
        return out
    }
}
