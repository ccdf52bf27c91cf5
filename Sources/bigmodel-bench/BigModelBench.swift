import ArgumentParser
import Harness
import ResultsFormat

@main
struct BigModelBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bigmodel-bench",
        abstract: "Measures how much memory it costs to load a big model each way.",
        discussion:
            "Exit statuses: 0 ok, 1 a claim failed, 2 regression, 3 a run died, 5 baseline mismatch, 64 usage, 65 bad input data, 66 missing input, 69 a loader program missing, 74 I/O error, 130 interrupted.",
        version: ToolVersion.version,
        subcommands: [
            RunCommand.self, FitCommand.self, InspectCommand.self, VerifyCommand.self, ReshardCommand.self,
            GenerateCommand.self, LoadCommand.self,
            PlanCommand.self, ReportCommand.self, CompareCommand.self, BenchCommand.self, MeasureRankCommand.self,
            MergeCommand.self,
            MeasureRunCommand.self,
        ]
    )
}
