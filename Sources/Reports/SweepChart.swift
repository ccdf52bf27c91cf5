import ResultsFormat
import TensorEngine

/// A sweep's chart of one figure for one loader: the figure against the checkpoint's bytes, one colour per run —
/// the measured points (the held-out size hollow), the fitted line (solid) and, for the claimed figure, the
/// formula's line (dashed), so that a loader holding more copies than claimed shows as a steeper line.
package enum SweepChart {
    static let width = 900.0
    static let height = 520.0
    static let palette = [
        Style.blue, Style.vermillion, Style.green, Style.purple, Style.orange, Style.sky, Style.ink, Style.grey,
    ]

    /// nil when no fit of `loader` has that figure.
    package static func svg(results: ScenarioResults, loader: Subject, figure: FitFigure) -> String? {
        let fits = (results.fits ?? []).filter { $0.loader == loader && $0.figure == figure && $0.slope != nil }
        guard !fits.isEmpty else { return nil }
        var body = SVGDocument(width: width, height: height)
        let legendTop = 40.0
        let legendRows = fits.count
        let plot = (left: 90.0, right: width - 30, top: legendTop + Double(legendRows) * 18 + 12, bottom: height - 50)
        let maxX = Double(fits.flatMap(\.points).map(\.checkpointBytes).max() ?? 1)
        let maxY =
            fits.flatMap { fit in
                fit.points.map { Double($0.measuredBytes) } + [Double(fit.predictedBytes(at: Int(maxX)) ?? 0)]
            }.max() ?? 1
        let xUnit = ByteUnit.forMaximum(maxX)
        let yUnit = ByteUnit.forMaximum(maxY)
        let xAxis = Axis.nice(low: 0, high: maxX / xUnit.bytes, target: 6)
        let yAxis = Axis.nice(low: 0, high: maxY * 1.05 / yUnit.bytes, target: 6)
        let sx = { (bytes: Double) in
            plot.left + (bytes / xUnit.bytes - xAxis.minimum) / (xAxis.maximum - xAxis.minimum)
                * (plot.right - plot.left)
        }
        let sy = { (bytes: Double) in
            plot.bottom - (bytes / yUnit.bytes - yAxis.minimum) / (yAxis.maximum - yAxis.minimum)
                * (plot.bottom - plot.top)
        }
        body.raw(
            "<clipPath id=\"plot\"><rect x=\"\(SVGDocument.n(plot.left))\" y=\"\(SVGDocument.n(plot.top))\" width=\"\(SVGDocument.n(plot.right - plot.left))\" height=\"\(SVGDocument.n(plot.bottom - plot.top))\"/></clipPath>"
        )
        axes(&body, plot: plot, xAxis: xAxis, yAxis: yAxis, xUnit: xUnit, yUnit: yUnit, sx: sx, sy: sy, figure: figure)
        for (index, fit) in fits.enumerated() {
            let colour = palette[index % palette.count]
            series(&body, fit: fit, colour: colour, maxX: xAxis.maximum * xUnit.bytes, sx: sx, sy: sy)
            let y = legendTop + Double(index) * 18
            body.line(x1: 20, y1: y - 4, x2: 44, y2: y - 4, [("stroke", colour), ("stroke-width", "2.5")])
            body.text("\(fit.run): \(SweepFitting.costSentence(fit)) · \(fit.verdict.rawValue)", x: 52, y: y)
        }
        let title = "\(results.scenario.name) · \(loader.name): \(figure.label) against checkpoint bytes"
        body.text(title, x: 20, y: 22, size: 14, weight: "bold")
        return body.render(
            title: title,
            description:
                "Each run's \(figure.label) at every size of the sweep (dots; the held-out size hollow), its least-squares line (solid) and the formula's line (dashed)."
        )
    }

    static func axes(
        _ body: inout SVGDocument, plot: (left: Double, right: Double, top: Double, bottom: Double), xAxis: Axis,
        yAxis: Axis, xUnit: ByteUnit, yUnit: ByteUnit, sx: (Double) -> Double, sy: (Double) -> Double,
        figure: FitFigure
    ) {
        for tick in xAxis.ticks {
            let x = sx(tick * xUnit.bytes)
            body.line(x1: x, y1: plot.top, x2: x, y2: plot.bottom, [("stroke", Style.grid)])
            body.text("\(xAxis.label(tick)) \(xUnit.name)", x: x, y: plot.bottom + 16, anchor: .middle)
        }
        for tick in yAxis.ticks {
            let y = sy(tick * yUnit.bytes)
            body.line(x1: plot.left, y1: y, x2: plot.right, y2: y, [("stroke", Style.grid)])
            body.text("\(yAxis.label(tick)) \(yUnit.name)", x: plot.left - 6, y: y + 4, anchor: .end)
        }
        body.line(x1: plot.left, y1: plot.bottom, x2: plot.right, y2: plot.bottom, [("stroke", Style.axis)])
        body.line(x1: plot.left, y1: plot.top, x2: plot.left, y2: plot.bottom, [("stroke", Style.axis)])
        body.text(
            "checkpoint bytes, \(xUnit.name) (\(xUnit.definition))", x: (plot.left + plot.right) / 2,
            y: plot.bottom + 36, anchor: .middle)
        body.text(
            "\(figure.label), \(yUnit.name) (\(yUnit.definition))", x: 18, y: (plot.top + plot.bottom) / 2,
            anchor: .middle, rotate: -90)
    }

    static func series(
        _ body: inout SVGDocument, fit: SweepFit, colour: String, maxX: Double, sx: (Double) -> Double,
        sy: (Double) -> Double
    ) {
        if let slope = fit.slope, let intercept = fit.interceptBytes {
            body.path(
                [(sx(0), sy(Double(intercept))), (sx(maxX), sy(slope * maxX + Double(intercept)))],
                [("stroke", colour), ("stroke-width", "2"), ("clip-path", "url(#plot)"), ("data-run", fit.run)])
        }
        if let claim = fit.claim {
            body.path(
                [
                    (sx(0), sy(Double(claim.interceptBytes))),
                    (sx(maxX), sy(claim.copies * maxX + Double(claim.interceptBytes))),
                ],
                [
                    ("stroke", colour), ("stroke-width", "1.2"), ("stroke-dasharray", "6 4"),
                    ("clip-path", "url(#plot)"),
                    ("data-formula", fit.run),
                ])
        }
        let heldOut = fit.holdout?.scale
        for point in fit.points {
            let fill = point.scale == heldOut ? "#ffffff" : colour
            body.raw(
                "<circle cx=\"\(SVGDocument.n(sx(Double(point.checkpointBytes))))\" cy=\"\(SVGDocument.n(sy(Double(point.measuredBytes))))\" r=\"4\" fill=\"\(fill)\" stroke=\"\(colour)\" stroke-width=\"1.5\"/>"
            )
        }
    }
}
