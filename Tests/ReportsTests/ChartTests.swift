import Foundation
import TestSupport
import Testing

@testable import Harness
@testable import Reports
@testable import ResultsFormat
@testable import StrictJSON

@Suite("Report charts")
struct ChartTests {
    /// Every chart of every fixture.
    static func charts() throws -> [(String, String)] {
        var all: [(String, String)] = []
        for fixture in ReportFixtures.all {
            let report = MarkdownReport.render(try ReportFixtures.load(fixture), resultsLink: "x.json")
            all += report.charts.map { ("\(fixture):\($0.name)", $0.contents) }
        }
        return all
    }

    @Test func everyChartIsWellFormedWithAnOpaqueBackground() throws {
        for (name, svg) in try Self.charts() {
            let xml = XMLCollector.parse(svg)
            #expect(xml.error == nil, "\(name): \(String(describing: xml.error))")
            let root = try #require(xml.elements.first, "\(name)")
            #expect(root.name == "svg")
            #expect(root.attributes["xmlns"] == "http://www.w3.org/2000/svg")
            let width = try #require(root.number("width"))
            let height = try #require(root.number("height"))
            #expect(root.attributes["viewBox"] == "0 0 \(SVGDocument.n(width)) \(SVGDocument.n(height))")
            // The first drawn element is a white rectangle over the whole image (legible in dark mode).
            let background = try #require(xml.elements.first { $0.name == "rect" })
            #expect(
                background.attributes["fill"] == "#ffffff" && background.number("width") == width
                    && background.number("height") == height)
            #expect(xml.elements.contains { $0.name == "title" && !$0.text.isEmpty })
            // Axis labels state the unit.
            #expect(
                xml.elements.contains { $0.name == "text" && $0.text.contains("MiB (1 MiB = 2^20 bytes)") }, "\(name)")
        }
    }

    @Test func predictedLineIsAtTheRightHeight() throws {
        let results = try ReportFixtures.load(ReportFixtures.smoke)
        let naive = try #require(results.runs.first { $0.id == "naive" })
        let svg = try #require(TimelineChart.svg(results: results, run: naive))
        let xml = XMLCollector.parse(svg)
        let plot = try #require(xml.first(id: "plot-area"))
        let top = try #require(plot.number("y"))
        let height = try #require(plot.number("height"))
        #expect(height == TimelineChart.plotHeight)
        // The largest figure drawn is the upper bound, 489366447 B = 466.70 MiB, so the axis runs 0 – 500 MiB in
        // 100 MiB steps; the prediction, 442535936 B, sits at 1 − 442535936 / 524288000 of the height from the top.
        let ticks = xml.elements.filter {
            $0.name == "text" && $0.attributes["text-anchor"] == "end" && $0.text.hasSuffix(" MiB")
        }.map(\.text)
        #expect(ticks == ["0 MiB", "100 MiB", "200 MiB", "300 MiB", "400 MiB", "500 MiB"])
        let line = try #require(xml.first(id: "predicted-peak"))
        let expected = top + height * (1 - 442_535_936.0 / 524_288_000.0)
        #expect(abs((line.number("y1") ?? 0) - expected) < 0.006)
        #expect(line.number("y1") == line.number("y2"))
        // The upper and lower bounds of the allowed range too.
        let upper = try #require(xml.first(id: "upper-bound")?.number("y1"))
        let lower = try #require(xml.first(id: "lower-bound")?.number("y1"))
        #expect(abs(upper - (top + height * (1 - 489_366_447.0 / 524_288_000.0))) < 0.006)
        #expect(abs(lower - (top + height * (1 - 395_705_425.0 / 524_288_000.0))) < 0.006)
        // Four series, each a path.
        let series = xml.elements.compactMap { $0.attributes["data-series"] }
        #expect(series == ["rss_anon", "rss_file", "jemalloc_allocated", "ledger_live"])
    }

    @Test func peaksChartMarksEachPrediction() throws {
        let results = try ReportFixtures.load(ReportFixtures.smoke)
        let xml = XMLCollector.parse(PeaksChart.svg(results: results))
        let plot = try #require(xml.first(id: "plot-area"))
        let left = try #require(plot.number("x"))
        let width = try #require(plot.number("width"))
        // Axis 0 – 600 MiB (the largest figure is load-then-cast's upper bound, 531.07 MiB).
        for run in results.runs {
            let marker = try #require(xml.elements.first { $0.attributes["data-run"] == run.id })
            let predicted = Double(try #require(run.predictedPeakBytes))
            #expect(abs((marker.number("x1") ?? 0) - (left + width * predicted / 629_145_600.0)) < 0.006, "\(run.id)")
        }
    }

    /// Text boxes, estimated as the layouts estimate them; rotated labels are skipped (the y axis title only).
    static func textBoxes(_ xml: XMLCollector) -> [(String, Double, Double, Double, Double)] {
        xml.elements.filter { $0.name == "text" && $0.attributes["transform"] == nil }.compactMap { e in
            guard let x = e.number("x"), let y = e.number("y") else { return nil }
            let size = e.number("font-size") ?? Style.fontSize
            let w = Style.textWidth(e.text, size: size)
            let x0: Double
            switch e.attributes["text-anchor"] {
            case "middle": x0 = x - w / 2
            case "end": x0 = x - w
            default: x0 = x
            }
            return (e.text, x0, y - size * 0.8, w, size)
        }
    }

    static func overlaps(_ boxes: [(String, Double, Double, Double, Double)]) -> [String] {
        var found: [String] = []
        for i in boxes.indices {
            for j in boxes.indices where j > i {
                let a = boxes[i]
                let b = boxes[j]
                if a.1 < b.1 + b.3 && b.1 < a.1 + a.3 && a.2 < b.2 + b.4 && b.2 < a.2 + a.4 {
                    found.append("'\(a.0)' / '\(b.0)'")
                }
            }
        }
        return found
    }

    @Test func noTextOverlapsAndEverythingIsInside() throws {
        for (name, svg) in try Self.charts() {
            let xml = XMLCollector.parse(svg)
            let root = try #require(xml.elements.first)
            let width = try #require(root.number("width"))
            let height = try #require(root.number("height"))
            let boxes = Self.textBoxes(xml)
            #expect(Self.overlaps(boxes).isEmpty, "\(name): \(Self.overlaps(boxes))")
            for box in boxes {
                #expect(
                    box.1 >= 0 && box.1 + box.3 <= width + 0.5 && box.2 >= 0 && box.2 + box.4 <= height,
                    "\(name): '\(box.0)' outside the image")
            }
        }
    }

    @Test func manyNarrowPhasesAreStaggeredWithoutOverlap() throws {
        var results = try ReportFixtures.load(ReportFixtures.smoke)
        var run = results.runs[0]
        var m = try #require(run.measurement)
        // 40 phases, most a millisecond wide, at the end of the load.
        m.phases = (0..<40).map { i in
            let start = i == 0 ? 0.01 : 1.0 + Double(i) * 0.002
            let end = i == 0 ? 1.002 : start + 0.002
            return PhaseRecord(
                name: "phase number \(i + 1) with a long name", startSeconds: start, endSeconds: end,
                ledgerLiveBytesAtStart: 0, ledgerLiveBytesAtEnd: 1 << 20)
        }
        run.measurement = m
        results.runs = [run]
        let svg = try #require(TimelineChart.svg(results: results, run: run))
        let xml = XMLCollector.parse(svg)
        #expect(xml.error == nil)
        let boxes = Self.textBoxes(xml)
        #expect(Self.overlaps(boxes).isEmpty, "\(Self.overlaps(boxes))")
        // Every phase is labelled and listed.
        for i in 1...40 {
            #expect(xml.elements.contains { $0.name == "text" && $0.text == String(i) })
            #expect(
                xml.elements.contains {
                    $0.name == "text" && $0.text.hasPrefix("\(i)  phase number \(i) with a long name:")
                })
        }
    }

    @Test func axesUseRoundSteps() {
        let a = Axis.nice(low: 0, high: 466.7)
        #expect(a.ticks == [0, 100, 200, 300, 400, 500])
        let b = Axis.nice(low: 0, high: 1.105, target: 8)
        #expect(b.maximum == 1.2)
        #expect(b.ticks.map(b.label) == ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0", "1.2"])
        let c = Axis.nice(low: 0, high: 23.6)
        #expect(c.ticks == [0, 5, 10, 15, 20, 25])
        let d = Axis.nice(low: 0, high: 0.025, target: 8)
        #expect(d.ticks.map(d.label) == ["0.000", "0.005", "0.010", "0.015", "0.020", "0.025"])
    }
}
