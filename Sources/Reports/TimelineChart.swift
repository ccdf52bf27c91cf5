import Probes
import ResultsFormat
import TensorEngine

/// The chart of one run's memory over time: RSS anon, RSS file and jemalloc allocated (deltas over the
/// child's pre-load baseline) and the ledger's live bytes, with the phases as numbered bands, the predicted
/// peak as a line, the allowed range as a band and the kernel's VmHWM peak as a marker on the right edge.
package struct TimelineChart {
    package static let width = 1000.0
    package static let plotHeight = 320.0
    static let marginLeft = 84.0
    static let marginRight = 28.0

    struct Series {
        let column: TimelineColumn
        let label: String
        let colour: String
        let dash: String?
        let strokeWidth: Double
        let peak: Int?
        var points: [(Double, Double)]
    }

    enum Swatch {
        case line(colour: String, dash: String?, width: Double)
        case band
        case marker
    }

    let results: ScenarioResults
    let run: RunResult
    let m: RunMeasurement
    let label: String
    var series: [Series]
    let plotLeft = TimelineChart.marginLeft
    let plotWidth = TimelineChart.width - TimelineChart.marginLeft - TimelineChart.marginRight
    let unit: ByteUnit
    let yAxis: Axis
    let xAxis: Axis
    var svg = SVGDocument(width: TimelineChart.width, height: 0)

    /// The SVG for `run`, or nil when it has no measurement (the child died before measuring).
    package static func svg(results: ScenarioResults, run: RunResult) -> String? {
        guard let m = run.measurement else { return nil }
        var chart = TimelineChart(results: results, run: run, measurement: m)
        return chart.render()
    }

    init(results: ScenarioResults, run: RunResult, measurement m: RunMeasurement) {
        self.results = results
        self.run = run
        self.m = m
        label = Format.runLabel(run, repeatCount: results.scenario.repeatCount)
        series = Self.series(m)
        var high = Double(
            [m.predictedPeakBytes, run.upperBoundBytes ?? 0, m.peaks[.vmhwm] ?? 0, m.outOfMemory?.capBytes ?? 0].max()
                ?? 0)
        var low = 0.0
        for s in series {
            for (_, v) in s.points {
                high = max(high, v)
                low = min(low, v)
            }
            high = max(high, Double(s.peak ?? 0))
        }
        // Readings a few pages below the baseline are noise: clip them at 0 rather than extend the axis.
        if low > -0.02 * high { low = 0 }
        unit = ByteUnit.forMaximum(high)
        yAxis = Axis.nice(low: low / unit.bytes, high: high / unit.bytes)
        let tEnd = (series.compactMap { $0.points.last?.0 } + m.phases.map(\.endSeconds)).max() ?? 0
        xAxis = Axis.nice(low: 0, high: max(tEnd, 1e-3), target: 8)
    }

    static func series(_ m: RunMeasurement) -> [Series] {
        func make(_ figure: MemoryFigure, _ label: String, _ colour: String, dash: String?, width: Double, peak: Int?)
            -> Series
        {
            Series(
                column: .figure(figure), label: label, colour: colour, dash: dash, strokeWidth: width, peak: peak,
                points: m.timeline.series(.figure(figure)).map { ($0.seconds, $0.value) })
        }
        return [
            make(
                .rssAnon, "RSS anon Δ (sampled RssAnon − baseline), peak \(Format.size(m.peaks[.rssAnon]))", Style.blue,
                dash: nil, width: 2, peak: m.peaks[.rssAnon]),
            make(
                .rssFile, "RSS file Δ (sampled RssFile − baseline), peak \(Format.size(m.peaks[.rssFile]))",
                Style.orange, dash: nil, width: 1.5, peak: m.peaks[.rssFile]),
            make(
                .jemallocAllocated,
                "jemalloc allocated Δ (stats.allocated − baseline), peak \(Format.size(m.peaks[.jemallocAllocated]))",
                Style.green, dash: "7 4",
                width: 1.6, peak: m.peaks[.jemallocAllocated]),
            make(
                .ledgerLive,
                "ledger live (the engine's exact owned bytes), peak \(Format.size(m.engine?.ledgerPeakBytes))",
                Style.ink, dash: "2 3", width: 1.8,
                peak: m.engine?.ledgerPeakBytes),
        ].filter { !$0.points.isEmpty }
    }

    func xScale(_ t: Double) -> Double { plotLeft + (t - xAxis.minimum) / (xAxis.maximum - xAxis.minimum) * plotWidth }

    func yScale(_ v: Double, bottom: Double) -> Double {
        bottom - (v / unit.bytes - yAxis.minimum) / (yAxis.maximum - yAxis.minimum) * Self.plotHeight
    }

    mutating func render() -> String {
        var y = 28.0
        svg.text("\(results.scenario.name) · \(label): memory over time", x: plotLeft, y: y, size: 16, weight: "bold")
        y += 20
        let who = run.loader.isEngine ? "" : " · loaded by \(run.loader.name), measured from outside"
        svg.text(
            "\(run.strategy.rawValue) → \(run.dtype)\(who) · verdict \(run.verdict.rawValue) · bytes above the measured child's pre-load baseline (ledger live: absolute, 0 at baseline)",
            x: plotLeft, y: y, size: 12, fill: Style.muted)
        y = legend(top: y + 14)
        let (plotTop, rowCount, labelX) = phaseStrip(top: y)
        let plotBottom = plotTop + Self.plotHeight
        plotArea(top: plotTop, bottom: plotBottom, stripTop: y, rowCount: rowCount, labelX: labelX)
        boundsAndData(top: plotTop, bottom: plotBottom)
        let bottom = phaseList(top: plotBottom + 44)
        var document = SVGDocument(width: Self.width, height: (bottom + 18).rounded(.up))
        for line in svg.body { document.raw(line) }
        return document.render(
            title: "\(results.scenario.name) \(label): memory over time",
            description:
                "RSS anon, RSS file and jemalloc allocated bytes above the pre-load baseline and the ledger's live bytes, sampled every \(Format.trimmed(results.scenario.sampleIntervalSeconds * 1000)) ms; predicted peak \(m.predictedPeakBytes) bytes (\(m.formula))."
        )
    }

    func legendEntries() -> [(Swatch, String)] {
        var entries: [(Swatch, String)] = series.map {
            (.line(colour: $0.colour, dash: $0.dash, width: $0.strokeWidth), $0.label)
        }
        entries.append(
            (
                .line(colour: Style.bound, dash: "9 4", width: 1.6),
                "predicted peak \(Format.size(m.predictedPeakBytes)) = \(m.formula)"
            ))
        if let upper = run.upperBoundBytes {
            let tolerance = run.toleranceBytes.map { Format.size($0) } ?? Format.size(upper - m.predictedPeakBytes)
            if let lower = run.lowerBoundBytes {
                entries.append(
                    (.band, "allowed range \(Format.size(lower)) – \(Format.size(upper)) (predicted ± \(tolerance))"))
            } else {
                entries.append((.band, "allowed up to \(Format.size(upper)) (upper bound: predicted + \(tolerance))"))
            }
        }
        if let vmhwm = m.peaks[.vmhwm] {
            entries.append(
                (.marker, "VmHWM Δ \(Format.size(vmhwm)): the kernel's peak (when it happened is not recorded)"))
        }
        if let cap = m.outOfMemory?.capBytes {
            entries.append(
                (
                    .line(colour: Style.purple, dash: "10 3 2 3", width: 1.6),
                    "ledger cap \(Format.size(cap)): the run stopped here (oom)"
                ))
        }
        return entries
    }

    /// The legend, laid out in columns; returns the y below it.
    mutating func legend(top: Double) -> Double {
        let entries = legendEntries()
        let swatchWidth = 30.0
        let layout = ColumnLayout(
            entryWidths: entries.map { swatchWidth + 8 + Style.textWidth($0.1) }, width: plotWidth)
        let rowHeight = 18.0
        for (i, entry) in entries.enumerated() {
            let (column, row) = layout.position(i)
            let x = plotLeft + Double(column) * layout.columnWidth
            let cy = top + Double(row) * rowHeight + 9
            switch entry.0 {
            case .line(let colour, let dash, let width):
                var attrs = [("stroke", colour), ("stroke-width", SVGDocument.n(width))]
                if let dash { attrs.append(("stroke-dasharray", dash)) }
                svg.line(x1: x, y1: cy, x2: x + swatchWidth, y2: cy, attrs)
            case .band:
                svg.rect(
                    x: x, y: cy - 6, width: swatchWidth, height: 12,
                    [
                        ("fill", Style.bound), ("fill-opacity", "0.10"), ("stroke", Style.bound),
                        ("stroke-width", "0.8"), ("stroke-dasharray", "3 2"),
                    ])
            case .marker:
                svg.raw(Self.triangle(tipX: x + swatchWidth / 2 - 5, y: cy))
            }
            svg.text(entry.1, x: x + swatchWidth + 8, y: cy + 4)
        }
        return top + Double(layout.rows) * rowHeight + 8
    }

    /// Phase labels: numbers in a row above the plot, each joined to its band by a leader line. Where bands
    /// are too narrow for their numbers, the numbers are spread apart (keeping their order, so leaders never
    /// cross); when even that does not fit, every k-th number goes to the same of k rows. Returns the plot's
    /// top, the label rows and each label's x.
    mutating func phaseStrip(top: Double) -> (Double, Int, [Double]) {
        let centres = m.phases.map { xScale(($0.startSeconds + $0.endSeconds) / 2) }
        let widths = m.phases.indices.map { Style.textWidth(String($0 + 1), size: 11) + 5 }
        let rowCount = m.phases.isEmpty ? 0 : max(1, Int((widths.reduce(0, +) / plotWidth).rounded(.up)))
        var labelX = centres
        for row in 0..<rowCount {
            let members = Array(stride(from: row, to: m.phases.count, by: rowCount))
            let placed = Self.spread(
                members.map { centres[$0] }, widths: members.map { widths[$0] }, low: plotLeft,
                high: plotLeft + plotWidth)
            for (k, index) in members.enumerated() { labelX[index] = placed[k] }
        }
        if !m.phases.isEmpty {
            svg.text("phase", x: plotLeft - 8, y: top + 11, size: 11, anchor: .end, fill: Style.muted)
        }
        return (top + Double(rowCount) * 15 + (m.phases.isEmpty ? 6 : 20), rowCount, labelX)
    }

    /// The plot area, the phase bands and their labels, the grid and the tick labels.
    mutating func plotArea(top: Double, bottom: Double, stripTop: Double, rowCount: Int, labelX: [Double]) {
        svg.rect(
            x: plotLeft, y: top, width: plotWidth, height: Self.plotHeight,
            [("id", "plot-area"), ("fill", "#ffffff"), ("stroke", "none")])
        for (i, phase) in m.phases.enumerated() {
            let x0 = xScale(phase.startSeconds)
            let x1 = xScale(phase.endSeconds)
            svg.rect(
                x: x0, y: top, width: x1 - x0, height: Self.plotHeight, [("fill", i % 2 == 0 ? "#eeeeee" : "#f7f7f7")])
            svg.line(x1: x0, y1: top, x2: x0, y2: bottom, [("stroke", "#b5b5b5"), ("stroke-width", "0.8")])
            let labelY = stripTop + Double(i % max(rowCount, 1)) * 15 + 11
            svg.text(String(i + 1), x: labelX[i], y: labelY, size: 11, anchor: .middle, fill: Style.muted)
            let leaderTop = stripTop + Double(rowCount) * 15 - 1
            if i % max(rowCount, 1) == rowCount - 1 || rowCount == 1 {
                svg.line(
                    x1: labelX[i], y1: labelY + 3, x2: labelX[i], y2: leaderTop,
                    [("stroke", "#9a9a9a"), ("stroke-width", "0.8")])
            }
            svg.line(
                x1: labelX[i], y1: leaderTop, x2: xScale((phase.startSeconds + phase.endSeconds) / 2), y2: top,
                [("stroke", "#9a9a9a"), ("stroke-width", "0.8")])
        }
        if let last = m.phases.last {
            svg.line(
                x1: xScale(last.endSeconds), y1: top, x2: xScale(last.endSeconds), y2: bottom,
                [("stroke", "#b5b5b5"), ("stroke-width", "0.8")])
        }
        for tick in yAxis.ticks {
            let ty = yScale(tick * unit.bytes, bottom: bottom)
            svg.line(
                x1: plotLeft, y1: ty, x2: plotLeft + plotWidth, y2: ty,
                [("stroke", Style.grid), ("stroke-width", "0.8")])
            svg.line(x1: plotLeft - 5, y1: ty, x2: plotLeft, y2: ty, [("stroke", Style.axis)])
            svg.text("\(yAxis.label(tick)) \(unit.name)", x: plotLeft - 8, y: ty + 4, anchor: .end)
        }
        for tick in xAxis.ticks {
            svg.line(x1: xScale(tick), y1: bottom, x2: xScale(tick), y2: bottom + 5, [("stroke", Style.axis)])
            svg.text(xAxis.label(tick), x: xScale(tick), y: bottom + 18, anchor: .middle)
        }
    }

    /// Bounds, then the data (clipped to the plot), then the axes and their titles on top.
    mutating func boundsAndData(top: Double, bottom: Double) {
        let n = SVGDocument.n
        svg.raw(
            "<clipPath id=\"plot-clip\"><rect x=\"\(n(plotLeft))\" y=\"\(n(top))\" width=\"\(n(plotWidth))\" height=\"\(n(Self.plotHeight))\"/></clipPath>"
        )
        let right = plotLeft + plotWidth
        if let upper = run.upperBoundBytes {
            let bandLow = yScale(Double(run.lowerBoundBytes ?? m.predictedPeakBytes), bottom: bottom)
            let bandHigh = yScale(Double(upper), bottom: bottom)
            svg.rect(
                x: plotLeft, y: bandHigh, width: plotWidth, height: bandLow - bandHigh,
                [("id", "allowed-range"), ("fill", Style.bound), ("fill-opacity", "0.08")])
            svg.line(
                x1: plotLeft, y1: bandHigh, x2: right, y2: bandHigh,
                [("id", "upper-bound"), ("stroke", Style.bound), ("stroke-width", "0.8"), ("stroke-dasharray", "3 2")])
            if run.lowerBoundBytes != nil {
                svg.line(
                    x1: plotLeft, y1: bandLow, x2: right, y2: bandLow,
                    [
                        ("id", "lower-bound"), ("stroke", Style.bound), ("stroke-width", "0.8"),
                        ("stroke-dasharray", "3 2"),
                    ])
            }
        }
        if let cap = m.outOfMemory?.capBytes {
            let cy = yScale(Double(cap), bottom: bottom)
            svg.line(
                x1: plotLeft, y1: cy, x2: right, y2: cy,
                [
                    ("id", "ledger-cap"), ("stroke", Style.purple), ("stroke-width", "1.6"),
                    ("stroke-dasharray", "10 3 2 3"),
                ])
        }
        for s in series {
            var attrs = [
                ("stroke", s.colour), ("stroke-width", n(s.strokeWidth)), ("stroke-linejoin", "round"),
                ("clip-path", "url(#plot-clip)"),
            ]
            if let dash = s.dash { attrs.append(("stroke-dasharray", dash)) }
            attrs.append(("data-series", s.column.description))
            svg.path(Self.simplify(s.points).map { (xScale($0.0), yScale($0.1, bottom: bottom)) }, attrs)
        }
        let py = yScale(Double(m.predictedPeakBytes), bottom: bottom)
        svg.line(
            x1: plotLeft, y1: py, x2: right, y2: py,
            [("id", "predicted-peak"), ("stroke", Style.bound), ("stroke-width", "1.6"), ("stroke-dasharray", "9 4")])
        if let vmhwm = m.peaks[.vmhwm] {
            svg.raw(Self.triangle(tipX: right, y: yScale(Double(vmhwm), bottom: bottom), id: "vmhwm-marker"))
        }
        svg.line(x1: plotLeft, y1: top, x2: plotLeft, y2: bottom, [("stroke", Style.axis)])
        svg.line(x1: plotLeft, y1: bottom, x2: right, y2: bottom, [("stroke", Style.axis)])
        svg.text(
            "seconds since the measured child's sampler started", x: plotLeft + plotWidth / 2, y: bottom + 38,
            anchor: .middle, fill: Style.muted)
        svg.text(
            "bytes above baseline, \(unit.name) (\(unit.definition))", x: 16, y: top + Self.plotHeight / 2,
            anchor: .middle, fill: Style.muted, rotate: -90)
    }

    /// The phases, listed below the plot; returns the y below the list.
    mutating func phaseList(top: Double) -> Double {
        guard !m.phases.isEmpty else { return top }
        var bottom = top + 18
        svg.text("Phases (numbered bands above)", x: plotLeft, y: bottom, weight: "bold")
        bottom += 6
        let texts = m.phases.enumerated().map { i, p in
            "\(i + 1)  \(p.name): \(Format.seconds(p.startSeconds))–\(Format.seconds(p.endSeconds)) s"
                + (p.ledgerLiveBytesAtStart == nil
                    ? "" : ", ledger \(Format.size(p.ledgerLiveBytesAtStart)) → \(Format.size(p.ledgerLiveBytesAtEnd))")
        }
        let layout = ColumnLayout(entryWidths: texts.map { Style.textWidth($0, size: 11) }, width: plotWidth)
        for (i, text) in texts.enumerated() {
            let (column, row) = layout.position(i)
            svg.text(
                text, x: plotLeft + Double(column) * layout.columnWidth, y: bottom + 14 + Double(row) * 16, size: 11)
        }
        return bottom + Double(layout.rows) * 16
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
        if last > 0 {
            for i in stride(from: last - 1, through: 0, by: -1) {
                x[i] = min(x[i], x[i + 1] - (widths[i] + widths[i + 1]) / 2)
            }
        }
        return x
    }

    /// A left-pointing triangle whose tip is at (`tipX`, `y`).
    static func triangle(tipX: Double, y: Double, id: String? = nil) -> String {
        let n = SVGDocument.n
        let idAttr = id.map { " id=\"\($0)\"" } ?? ""
        return
            "<path\(idAttr) d=\"M\(n(tipX)),\(n(y)) L\(n(tipX + 10)),\(n(y - 6)) L\(n(tipX + 10)),\(n(y + 6)) Z\" fill=\"\(Style.purple)\" stroke=\"\(Style.ink)\" stroke-width=\"0.6\"/>"
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
