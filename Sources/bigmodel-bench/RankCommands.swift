import ArgumentParser
import Foundation
import Harness
import OSLayer
import Reports
import ResultsFormat
import TensorEngine

/// One rank of a job started by torchrun or srun (`torchrun --nproc-per-node 8 --no-python bigmodel-bench
/// measure-rank …`): measured as a rank of `run --ranks`, its results in its own file for `merge`.
struct MeasureRankCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "measure-rank",
        abstract:
            "Measure the one rank that RANK, LOCAL_RANK, WORLD_SIZE and LOCAL_WORLD_SIZE describe (as torchrun or srun set them).",
        discussion: """
            The node's ranks meet through files under WORK-DIR/ranks/<job> (the job: TORCHELASTIC_RUN_ID, SLURM_JOB_ID or \
            BIGMODEL_BENCH_JOB): they start loading together and hold their models until all have loaded. Writes \
            DIR/<scenario>-<run>-rank<R>.json; `bigmodel-bench merge DIR` then judges the ranks of each node together. \
            Exit statuses as for `run`; 64 when the variables are missing.

            Example: torchrun --standalone --nproc-per-node 4 --no-python bigmodel-bench measure-rank scenarios/gemma7b-ranks.json --run-id mmap --out ranks/
            """)

    @Argument(help: "A scenario file.")
    var scenario: String

    @Option(
        name: [.customLong("run"), .customLong("run-id")],
        help:
            "The run to measure (its id; with --subject, e.g. naive@transformers). Under torchrun write --run-id: its argument parser takes --run for its own --run-path."
    )
    var runID: String

    @Option(name: .customLong("out"), help: "Folder for the rank's results file.")
    var out: String

    @OptionGroup var scenarioOptions: ScenarioOptions

    func run() throws {
        let results = try reportingErrors { try measure() }
        if results.stoppedReason == .interrupted { throw ExitCode(ExitStatus.interrupted.rawValue) }
        let status = ExitStatus.forRun(results: results, comparison: .success, report: .success)
        if status != .success { throw ExitCode(status.rawValue) }
    }

    private func measure() throws -> ScenarioResults {
        let environment = ProcessInfo.processInfo.environment
        guard let rank = RankInfo.fromEnvironment(environment) else {
            throw UsageError(
                "measure-rank needs RANK and WORLD_SIZE (and LOCAL_RANK, LOCAL_WORLD_SIZE) as torchrun or srun set them"
            )
        }
        let loaded = try Scenario.load(scenarioOrFolder: PathResolver.resolve(scenario))
        try SignalTrap.install()
        let options = scenarioOptions.runnerOptions(
            outputDirectory: out, executable: try ChildProcess.currentExecutablePath())
        let console = RunConsole(prefix: "rank \(rank.rank): ")
        let runner = try ScenarioRunner.forRank(
            scenario: loaded, run: runID, localWorldSize: rank.localWorldSize, options: options, onEvent: console.handle
        )
        let results = try runner.runRank(rank, environment: environment)
        console.finish()
        printProgress("rank \(rank.rank): results: \(runner.rankResultsPath(rank, run: runner.scenario.runs[0].id))")
        return results
    }
}

/// Combines the rank files of `measure-rank` into a results file per node and one for the job.
struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract:
            "Combine the rank files of measure-rank: one results file per node and one for the job, with the machine-level claims.",
        discussion: """
            Reads every DIR/<scenario>-<run>-rank<R>.json and writes OUT/<scenario>.json (the job), \
            OUT/<scenario>-node-<hostname>.json (each node) and the job's markdown report OUT/<scenario>.md. \
            Exit 0 when every rank and every node held its claims, 1 when one failed, 3 when a rank died or is missing.

            Example: bigmodel-bench merge ranks/ --out Reports/
            """)

    @Argument(help: "The folder measure-rank wrote to.")
    var directory: String

    @Option(name: .customLong("out"), help: "Folder for the merged files (default: DIR).")
    var out: String?

    func run() throws {
        let job = try reportingErrors { try merge() }
        let status = ExitStatus.forRun(results: job, comparison: .success, report: .success)
        if status != .success { throw ExitCode(status.rawValue) }
    }

    private func merge() throws -> ScenarioResults {
        let folder = out ?? directory
        let inputs = try RankFiles.load(directory: directory)
        let merged = try RankMerge.merge(inputs)
        let name = merged.job.scenario.name
        for (node, results) in merged.nodes {
            try ResultsFile.write(
                ResultsFile.encode(results), to: folder + "/\(name)-node-\(RankFiles.safe(node)).json")
        }
        let jobPath = folder + "/\(name).json"
        try ResultsFile.write(ResultsFile.encode(merged.job), to: jobPath)
        let written = try MarkdownReport.write(merged.job, resultsPath: jobPath, folder: folder)
        print(SummaryTable.render(merged.job), terminator: "")
        printProgress(
            "merged \(inputs.count) rank file(s) of \(merged.nodes.count) node(s): \(jobPath); report \(written[0])")
        return merged.job
    }
}

/// The rank files in a folder.
enum RankFiles {
    static func load(directory: String) throws -> [(path: String, results: ScenarioResults)] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else {
            throw ReportError("\(directory): no such folder", category: .missingInput)
        }
        let files = names.filter(isRankFile).sorted().map { directory + "/" + $0 }
        guard !files.isEmpty else {
            throw ReportError(
                "\(directory): no rank results files (<scenario>-<run>-rank<R>.json, written by measure-rank)",
                category: .missingInput)
        }
        return try files.map { ($0, try ResultsFile.load(path: $0)) }
    }

    static func isRankFile(_ name: String) -> Bool {
        guard name.hasSuffix(".json"), let range = name.range(of: "-rank", options: .backwards) else { return false }
        let digits = name[range.upperBound...].dropLast(5)
        return !digits.isEmpty && digits.allSatisfy(\.isNumber)
    }

    static func safe(_ node: String) -> String {
        String(node.map { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) ? $0 : "_" })
    }
}
