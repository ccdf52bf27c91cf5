import Foundation
import TestSupport
import Testing

@testable import Harness
@testable import Reports
@testable import ResultsFormat
@testable import TensorEngine

/// The README's figures are the committed report's: the quoted table is `report --format summary` of
/// `Reports/gemma7b.json`, and the full-size figures in its prose are that file's predictions.
@Suite struct DocsTests {
    static let root = ReportFixtures.repositoryRoot

    @Test func readmeTableIsTheCommittedReports() throws {
        let readme = try String(contentsOfFile: Self.root + "/README.md", encoding: .utf8)
        let marker = "$ bigmodel-bench run scenarios/gemma7b.json\n"
        let start = try #require(readme.range(of: marker)).upperBound
        let end = try #require(readme.range(of: "```", range: start..<readme.endIndex)).lowerBound
        let quoted = String(readme[start..<end])
        let summary = try Executable.run(["report", Self.root + "/Reports/gemma7b.json", "--format", "summary"])
        #expect(summary.status == 0, "\(summary.stderr)")
        let table = summary.stdout.split(separator: "\n", omittingEmptySubsequences: false).filter {
            !$0.isEmpty && !$0.hasPrefix("sizes in")
        }
        #expect(
            quoted == table.joined(separator: "\n") + "\n",
            "refresh the README with: bigmodel-bench report Reports/gemma7b.json --format summary")
    }

    /// The README's full-size answer for transformers is `fit --calibration` of the committed calibration.
    @Test func readmeCalibratedFitIsTheCommittedCalibration() throws {
        let readme = try String(contentsOfFile: Self.root + "/README.md", encoding: .utf8)
        let command =
            "bigmodel-bench fit scenarios/gemma7b.json --calibration Reports/calibration/gemma7b.json --memory 24GiB"
        let start = try #require(readme.range(of: "$ " + command + "\n")).upperBound
        let end = try #require(readme.range(of: "```", range: start..<readme.endIndex)).lowerBound
        let fit = try Executable.run(
            [
                "fit", "scenarios/gemma7b.json", "--calibration", "Reports/calibration/gemma7b.json", "--memory",
                "24GiB",
            ], in: Self.root)
        #expect(fit.status == 0, "\(fit.stderr)")
        #expect(String(readme[start..<end]) == fit.stdout, "refresh the README with: \(command)")
        let calibration = try ResultsFile.load(path: Self.root + "/Reports/calibration/gemma7b.json")
        #expect(calibration.sweep?.points.count == 4)
        #expect(calibration.complete)
    }

    @Test func readmeFullSizeFiguresAreTheReports() throws {
        let readme = try String(contentsOfFile: Self.root + "/README.md", encoding: .utf8)
        let results = try ResultsFile.load(path: Self.root + "/Reports/gemma7b.json")
        for prediction in results.fullSizePredictions where prediction.strategy != .deviceMap {
            let text = ByteSize.decimal(prediction.predictedPeakBytes)
            #expect(readme.contains("\(prediction.run) \(text)"), "README should say \(prediction.run) \(text)")
        }
    }
}
