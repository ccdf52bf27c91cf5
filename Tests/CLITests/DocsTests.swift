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

    @Test func readmeFullSizeFiguresAreTheReports() throws {
        let readme = try String(contentsOfFile: Self.root + "/README.md", encoding: .utf8)
        let results = try ResultsFile.load(path: Self.root + "/Reports/gemma7b.json")
        for prediction in results.fullSizePredictions where prediction.strategy != .deviceMap {
            let text = ByteSize.decimal(prediction.predictedPeakBytes)
            #expect(readme.contains("\(prediction.run) \(text)"), "README should say \(prediction.run) \(text)")
        }
    }
}
