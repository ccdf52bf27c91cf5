import Foundation
import TestSupport
import Testing

@testable import Reports
@testable import ResultsFormat
@testable import StrictJSON

@Suite("Sweeps")
struct SweepTests {
    @Test func linearFitIsOrdinaryLeastSquares() throws {
        let exact = try #require(LinearFit([(0, 1), (1, 3), (2, 5), (3, 7)]))
        #expect(exact.slope == 2)
        #expect(exact.intercept == 1)
        #expect(exact.residualStandardError == 0)
        #expect(exact.predict(10) == 21)
        // y = 2x + 1 with residuals +1, −1, −1, +1: the line stays, s = √(4 / 2).
        let noisy = try #require(LinearFit([(0, 2), (1, 2), (2, 4), (3, 8)]))
        #expect(noisy.slope == 2)
        #expect(noisy.intercept == 1)
        #expect(noisy.residualStandardError == 2.0.squareRoot())
        // s·√(1 + 1/4 + (9 − 1.5)²/5) at x = 9: far from the points, the error grows.
        #expect(noisy.predictionError(at: 9) == 2.0.squareRoot() * (1.25 + 56.25 / 5).squareRoot())
        #expect(LinearFit([(1, 1), (1, 2)]) == nil)
        #expect(LinearFit([(1, 1), (2, 2)])?.residualStandardError == nil)
    }

    @Test func sweepRulesNameWhatIsMissing() {
        #expect(SweepFitting.copies(2.0349) == "2.03")
        #expect(SweepFitting.copies(1.0) == "1")
        #expect(SweepFitting.copies(-0.001) == "0")
        #expect(SweepFitting.scaleText(0.065) == "0.065")
    }

    /// The engine's lines are its formulas: the smoke sweep's slopes in copies, to 0.02.
    @Test func engineSlopesAreTheFormulas() throws {
        let results = try ReportFixtures.load(ReportFixtures.sweep)
        let sweep = try #require(results.sweep)
        #expect(sweep.points.map(\.scale) == [0.25, 0.5, 0.75, 1])
        #expect(sweep.points.map(\.checkpoint.totalSizeBytes) == [53_289_472, 106_578_944, 159_868_416, 213_157_888])
        #expect(sweep.heldOutScale == 1)
        let fits = try #require(results.fits)
        // The stored fits are what the runs give: fitting is a pure function of them.
        #expect(SweepFitting.fits(results) == fits)
        func fit(_ run: String, _ figure: FitFigure) throws -> SweepFit {
            try #require(fits.first { $0.run == run && $0.figure == figure })
        }
        for (run, figure, copies) in [
            ("naive", FitFigure.vmhwmDelta, 2.0), ("low-memory", .vmhwmDelta, 1.0), ("mmap", .rssAnonPeakDelta, 0.0),
            ("mmap", .rssFilePeakDelta, 1.0),
        ] {
            let line = try fit(run, figure)
            #expect(abs(try #require(line.slope) - copies) < 0.02, "\(run) \(figure): \(line.verdictDetail)")
            #expect(line.holdout?.passed == true)
            #expect(line.linear == true)
            if let claim = line.claim { #expect(abs(claim.copies - copies) < 0.02) }
        }
        // dtype-direct's formula counts a staging buffer as an upper bound: its slope is at most the formula's.
        let direct = try fit("dtype-direct-float16", .vmhwmDelta)
        let directSlope = try #require(direct.slope)
        let directClaim = try #require(direct.claim?.copies)
        #expect(directSlope <= directClaim + 0.02)
        #expect(fits.filter { $0.figure.isJudged(for: $0.strategy) }.map(\.verdict) == [.pass, .pass, .pass, .pass])
        #expect(fits.count == 12)
        #expect(ExitStatus(results: results) == .success)
    }

    /// A line that fails its claim fails the results, whatever the runs said.
    @Test func aFailedLineFailsTheRun() throws {
        var results = try ReportFixtures.load(ReportFixtures.sweep)
        let index = try #require(results.fits?.firstIndex { $0.run == "low-memory" && $0.figure == .vmhwmDelta })
        results.fits?[index].verdict = .fail
        #expect(ExitStatus(results: results) == .claimFailed)
    }

    @Test func compareGatesOnTheSlope() throws {
        let baseline = try ReportFixtures.load(ReportFixtures.sweep)
        var current = baseline
        let index = try #require(current.fits?.firstIndex { $0.run == "low-memory" && $0.figure == .vmhwmDelta })
        let slope = try #require(current.fits?[index].slope)
        current.fits?[index].slope = slope + 1
        let doubled = Comparison(
            baseline: baseline, baselinePath: "b.json", current: current, currentPath: "c.json")
        #expect(doubled.exitStatus == .regression)
        #expect(doubled.regressions.map(\.figure) == ["slope:vmhwm_delta"])
        #expect(doubled.summaryLine.hasPrefix("1 regression: low-memory slope:vmhwm_delta +1 copies"))
        current.fits?[index].slope = slope + 0.2
        let within = Comparison(
            baseline: baseline, baselinePath: "b.json", current: current, currentPath: "c.json")
        #expect(within.exitStatus == .success)
        let row = try #require(within.rows.first { $0.run == "low-memory" && $0.figure == "slope:vmhwm_delta" })
        #expect(row.status == .unchanged)
        #expect(within.rows.contains { $0.figure == "intercept:vmhwm_delta" && !$0.gated })
        // A sweep against a one-size file: not comparable.
        let single = try ReportFixtures.load(ReportFixtures.smoke)
        #expect(
            Comparison(baseline: single, baselinePath: "b.json", current: baseline, currentPath: "c.json").exitStatus
                == .baselineMismatch)
    }

    @Test func reportStatesCostAsCopiesWithAChartPerLoaderAndFigure() throws {
        let results = try ReportFixtures.load(ReportFixtures.sweep)
        let report = MarkdownReport.render(results, resultsLink: "smoke.json")
        #expect(report.markdown.contains("## Cost as copies of the model"))
        let rows = markdownTableRows(report.markdown).filter { $0.count == 10 && $0[1] == "VmHWM Δ" }
        #expect(
            rows.map { [$0[0], $0[2], $0[3], $0[9]] } == [
                ["naive", "2", "2 ± 0.05", "**pass**"], ["low-memory", "1", "1 + 0.05", "**pass**"],
                ["dtype-direct-float16", "1.02", "1.08 + 0.05", "**pass**"],
                // mmap's claim is on RssAnon: its VmHWM line is in the table of figures not judged.
                ["mmap", "1", "-", "**not_judged**"],
            ])
        let sweepCharts = report.charts.map(\.name).filter { $0.contains("-sweep-") }
        #expect(
            sweepCharts == [
                "smoke-sweep-engine-vmhwm_delta.svg", "smoke-sweep-engine-rss_anon_peak_delta.svg",
                "smoke-sweep-engine-rss_file_peak_delta.svg",
            ])
        // Timelines are drawn for the largest size only: one per run, not one per run and size.
        #expect(report.charts.count == 1 + 4 + 3)
        let chart = try #require(report.charts.first { $0.name == "smoke-sweep-engine-vmhwm_delta.svg" })
        #expect(chart.contents.components(separatedBy: "<circle").count - 1 == 16)
        #expect(chart.contents.components(separatedBy: "data-formula=").count - 1 == 3)
    }
}
