import ResultsFormat
import TensorEngine

/// The chart of what N ranks cost the machine over time: Σ VmRSS, Σ Pss and the drop of MemAvailable (each a
/// delta over the start barrier), each rank's VmRSS faint beneath, the claim's per-machine bound as a line.
package enum MachineChart {
    static let width = 1000.0
    static let plotHeight = 300.0
    static let left = 84.0
    static let right = 28.0

    package static func svg(results: ScenarioResults, machine: MachineRun) -> String {
        let t = machine.timeline
        func series(_ column: MachineColumn) -> [(Double, Double)] { t.series(column).map { ($0.seconds, $0.value) } }
        let lines: [(MachineColumn, String, String, Double)] = [
            (.figure(.sumRss), "Σ VmRSS Δ of the ranks", Style.blue, 2),
            (.figure(.sumPss), "Σ Pss Δ (shared pages counted once)", Style.green, 2),
            (.figure(.memAvailable), "MemAvailable drop", Style.vermillion, 1.6),
        ]
        let ranks = (0..<machine.ranks).map { series(.rank($0)) }
        let bound = machine.checks.filter { $0.relation == .atMost }.map(\.boundBytes).max()
        let high = max(
            Double(bound ?? 0), (lines.flatMap { series($0.0) } + ranks.flatMap { $0 }).map(\.1).max() ?? 1, 1)
        let unit = ByteUnit.forMaximum(high)
        let yAxis = Axis.nice(low: 0, high: high / unit.bytes)
        let xAxis = Axis.nice(low: 0, high: max(t.points.last?.first ?? 1, 1e-3), target: 8)
        let plotWidth = width - left - right
        let top = 70.0
        let bottom = top + plotHeight
        let x = { (s: Double) in left + (s - xAxis.minimum) / (xAxis.maximum - xAxis.minimum) * plotWidth }
        let y = { (v: Double) in
            bottom - (v / unit.bytes - yAxis.minimum) / (yAxis.maximum - yAxis.minimum) * plotHeight
        }
        var svg = SVGDocument(width: width, height: bottom + 80)
        svg.text(
            "\(results.scenario.name) · \(machine.id) × \(machine.ranks) ranks: the machine over time", x: left, y: 28,
            size: 16, weight: "bold")
        svg.text(
            "verdict \(machine.verdict.rawValue) · bytes above the reading at the start barrier · \(machine.node)",
            x: left, y: 48, size: 12, fill: Style.muted)
        for tick in yAxis.ticks {
            svg.line(
                x1: left, y1: y(tick * unit.bytes), x2: left + plotWidth, y2: y(tick * unit.bytes),
                [("stroke", Style.grid)])
            svg.text("\(yAxis.label(tick)) \(unit.name)", x: left - 8, y: y(tick * unit.bytes) + 4, anchor: .end)
        }
        for tick in xAxis.ticks { svg.text(xAxis.label(tick), x: x(tick), y: bottom + 18, anchor: .middle) }
        for (rank, points) in ranks.enumerated() {
            svg.path(
                points.map { (x($0.0), y($0.1)) },
                [
                    ("stroke", Style.muted), ("stroke-opacity", "0.35"), ("stroke-width", "1"),
                    ("data-series", "rank_\(rank)"),
                ])
        }
        for (column, _, colour, widthValue) in lines {
            svg.path(
                series(column).map { (x($0.0), y($0.1)) },
                [("stroke", colour), ("stroke-width", SVGDocument.n(widthValue)), ("data-series", column.description)])
        }
        if let bound {
            svg.line(
                x1: left, y1: y(Double(bound)), x2: left + plotWidth, y2: y(Double(bound)),
                [("stroke", Style.bound), ("stroke-dasharray", "9 4"), ("stroke-width", "1.6")])
        }
        svg.line(x1: left, y1: top, x2: left, y2: bottom, [("stroke", Style.axis)])
        svg.line(x1: left, y1: bottom, x2: left + plotWidth, y2: bottom, [("stroke", Style.axis)])
        svg.text(
            "seconds since the start barrier", x: left + plotWidth / 2, y: bottom + 36, anchor: .middle,
            fill: Style.muted)
        let legend =
            lines.map { ($0.2, $0.1) } + [(Style.muted, "each rank's VmRSS Δ")]
            + (bound.map { [(Style.bound, "the claim's upper bound \(Format.size($0))")] } ?? [])
        drawLegend(legend, into: &svg, y: bottom + 58)
        return svg.render(
            title: "\(results.scenario.name) \(machine.id) × \(machine.ranks) ranks: the machine over time",
            description:
                "Σ VmRSS, Σ Pss and the MemAvailable drop while \(machine.ranks) ranks load, each rank's VmRSS beneath."
        )
    }

    /// One row of (colour, label) entries, a short line of the colour before each label.
    private static func drawLegend(_ legend: [(colour: String, label: String)], into svg: inout SVGDocument, y: Double)
    {
        var legendX = left
        for (colour, label) in legend {
            svg.line(x1: legendX, y1: y, x2: legendX + 24, y2: y, [("stroke", colour), ("stroke-width", "2")])
            svg.text(label, x: legendX + 30, y: y + 4, size: 11)
            legendX += 40 + Style.textWidth(label, size: 11)
        }
    }
}
