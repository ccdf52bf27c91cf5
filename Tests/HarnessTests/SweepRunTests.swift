import Foundation
import OSLayer
import TestSupport
import Testing

@testable import Harness
@testable import ResultsFormat

/// A sweep through the executable: the engine, a loader that holds two copies claimed as low-memory, and a loader
/// whose cost is not a line, measured at four sizes in one run (one run of ~20 children, so CI pays once).
@Suite(.serialized) struct SweepRunTests {
    static let grows = FixturePaths.path("loaders/grows_past_threshold.py")

    @Test func sweepScenarioParses() throws {
        let scenario = try Scenario.parse(
            Array(tinyScenario(extra: #", "scales": [1, 0.5, 0.75], "holdout": false"#).utf8), file: "t.json")
        #expect(scenario.sweep == SweepPlan(fractions: [0.5, 0.75, 1], holdout: false))
        #expect(scenario.sweep?.scales(base: 0.26) == [0.13, 0.195, 0.26])
        #expect(scenario.sweep?.heldOut(base: 0.26) == nil)
        #expect(throws: UsageError.self) { try scenario.withSweep([0.5, 1], holdout: nil) }
        // Holding the largest out of three sizes leaves two to predict it from: refused.
        #expect(throws: UsageError.self) { try scenario.withSweep(nil, holdout: true) }
        #expect(try scenario.withSweep([0.25, 0.5, 0.75, 1], holdout: nil).sweep?.holdout == false)
    }

    @Test func tooFewScalesIsAUsageError() throws {
        let folder = try TemporaryFolder("sweep-usage")
        defer { folder.remove() }
        let scenario = try folder.write("tiny.json", text: tinyScenario())
        let run = try Executable.run([
            "run", scenario, "--scales", "0.5,1", "--out", folder.file("out"), "--work-dir", folder.file("work"),
        ])
        #expect(run.status == 64)
        #expect(
            run.stderrLines == [
                "bigmodel-bench: error: --scales: needs at least 4 scales: the largest is held out and predicted from a line through the other three (or set holdout false)"
            ])
        let notANumber = try Executable.run(["run", scenario, "--scales", "0.5,half"])
        #expect(notANumber.status == 64)
        #expect(notANumber.stderr.contains("'half' is not a number"), "\(notANumber.stderr)")
    }

    @Test(.enabled(if: TestPython.hasNumpy, "no python with numpy"))
    func slopesAndHeldOutSizesAreJudged() throws {
        let folder = try TemporaryFolder("sweep")
        defer { folder.remove() }
        let twoCopies = #"{"command": ["\#(TestPython.path)", "\#(SubjectRunTests.example)", "{checkpoint}"]}"#
        let grows = #"{"command": ["\#(TestPython.path)", "\#(Self.grows)", "{checkpoint}", "220000000"]}"#
        let scenario = try folder.write(
            "tiny.json",
            text: SubjectRunTests.scenario(
                #"[{"strategy": "naive"}, {"strategy": "low-memory"}, {"id": "two-copies", "strategy": "low-memory", "subject": \#(twoCopies)}, {"id": "grows", "strategy": "naive", "subject": \#(grows)}]"#
            ))
        let run = try Executable.run([
            "run", scenario, "--scales", "0.25,0.5,0.75,1", "--out", folder.file("out"), "--work-dir",
            folder.file("work"),
        ])
        #expect(run.status == 1, "\(run.stderr)")
        let results = try SubjectRunTests.results(folder)
        let sweep = try #require(results.sweep)
        #expect(sweep.points.map(\.scale) == [0.25, 0.5, 0.75, 1])
        #expect(sweep.points.allSatisfy { $0.floor != nil })
        // Four layers scaled to 1, 2, 3, 4: the checkpoint grows by one layer's bytes a size.
        let bytes = sweep.points.map(\.checkpoint.totalSizeBytes)
        #expect(bytes[2] < 220_000_000 && bytes[3] > 220_000_000, "\(bytes)")
        #expect(results.runs.count == 16)
        let fits = try #require(results.fits)
        func vmhwm(_ run: String) throws -> SweepFit {
            try #require(fits.first { $0.run == run && $0.figure == .vmhwmDelta })
        }
        for (run, copies) in [("naive", 2.0), ("low-memory", 1.0)] {
            let line = try vmhwm(run)
            let slope = try #require(line.slope)
            let claim = try #require(line.claim?.copies)
            #expect(abs(slope - claim) < 0.02 && abs(slope - copies) < 0.02, "\(run): \(line.verdictDetail)")
            #expect(line.verdict == .pass, "\(line.verdictDetail)")
        }
        let two = try vmhwm("two-copies")
        let twoSlope = try #require(two.slope)
        #expect(abs(twoSlope - 2) < 0.1, "\(two.verdictDetail)")
        #expect(abs((two.claim?.copies ?? 0) - 1) < 0.02)
        #expect(two.claim?.passed == false)
        #expect(two.verdict == .fail)
        #expect(two.verdictDetail.contains("copies (claim: 1 + 0.25, failed)"), "\(two.verdictDetail)")
        #expect(two.holdout?.passed == true, "a line that is steep but straight predicts its held-out size")
        let grown = try vmhwm("grows")
        #expect(grown.holdout?.passed == false, "\(grown.verdictDetail)")
        #expect(grown.verdict == .fail)
        #expect(grown.verdictDetail.contains("held out scale 1: predicted"), "\(grown.verdictDetail)")
        // Before the held-out size was measured, its prediction was said.
        let said = try #require(run.stderr.range(of: "held out: naive at scale 1 predicted VmHWM Δ"))
        let measured = try #require(run.stderr.range(of: "] naive at scale 1"))
        #expect(said.lowerBound < measured.lowerBound)
        let written = try parseJSON(try fileText(folder.file("out/tiny.json")))
        let problems = try ReportFixtures.schema("results.schema.json").validate(written)
        #expect(problems == [], "\(problems)")
    }
}
