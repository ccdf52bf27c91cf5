import ArgumentParser
import Foundation
import Harness
import OSLayer
import Reports
import ResultsFormat
import TensorEngine

/// `bigmodel-bench compare BASELINE.json CURRENT.json`: every figure of every run against the baseline, and
/// an exit status a CI gate can use.
struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Compare a results file with a baseline: a table of every figure, and exit 2 on a regression.",
        discussion: """
            Ledger figures are exact: any increase regresses. VmHWM, RSS and jemalloc figures regress when the increase \
            exceeds both --threshold (of the baseline) and --absolute. Times are reported, and gated only with \
            --gate-times. A run missing from CURRENT, or a worse verdict (pass < fail < oom < error), regresses. \
            Results from different machines (MemTotal by more than 1%, CPU model, CPU count, kernel, page size, \
            allocator, MALLOC_CONF, cache mode) are said to differ and their memory and time figures are not gated \
            unless --force. A baseline of another scenario, scale or checkpoint is not compared at all. \
            Exit 0 unchanged or better, 2 regression, 5 baseline missing, unreadable or not comparable, \
            64 usage, 65 CURRENT is not a results file, 66 CURRENT is missing.

            Examples:
              bigmodel-bench compare Reports/baselines/smoke.json Reports/smoke.json
              bigmodel-bench compare base.json now.json --threshold 10% --gate-times
            """)

    @Argument(help: "The baseline results file (e.g. Reports/baselines/smoke.json).", completion: .file())
    var baseline: String

    @Argument(help: "The current results file.", completion: .file())
    var current: String

    @OptionGroup var thresholds: CompareOptions

    @Flag(help: "Print the comparison as JSON (Reports/schema/compare.schema.json) instead of the table.")
    var json = false

    func run() throws {
        let status = try reportingErrors { () -> ExitStatus in
            let options = try thresholds.resolved()
            let currentResults = try ResultsFile.load(path: current)
            return try CompareOptions.compare(
                baselinePath: baseline, current: currentResults, currentPath: current, options: options, json: json,
                toStandardError: false)
        }
        if status != .success { throw ExitCode(status.rawValue) }
    }
}

/// The threshold options `compare` and `run --baseline` share.
struct CompareOptions: ParsableArguments {
    @Option(
        help: "Relative threshold for VmHWM/RSS/jemalloc (and, with --gate-times, time) figures, in percent: 5% or 5.",
        transform: PercentArgument.parse)
    var threshold: PercentArgument = PercentArgument(argument: "5%")!

    @Option(
        help:
            "Absolute threshold for VmHWM/RSS/jemalloc figures: a size such as 16MiB (both thresholds must be exceeded).",
        transform: SizeArgument.parseThreshold)
    var absolute: SizeArgument = SizeArgument(argument: "16MiB")!

    @Option(help: "Absolute threshold for times, in seconds (used with --gate-times).")
    var absoluteSeconds: Double = Comparison.Options.defaultAbsoluteSeconds

    @Option(
        help:
            "A sweep's slope regresses when it grows by more than this many copies of the model (default \(SweepFitting.copies(Comparison.Options.defaultSlopeThreshold)))."
    )
    var slopeThreshold: Double = Comparison.Options.defaultSlopeThreshold

    @Option(help: "Only these figures, comma-separated: \(Metric.names.joined(separator: ", ")).")
    var metrics: String?

    @Flag(help: "Gate load times too (default: reported only).")
    var gateTimes = false

    @Flag(help: "Gate memory and time figures even when the machines differ.")
    var force = false

    func resolved() throws(UsageError) -> Comparison.Options {
        guard absoluteSeconds >= 0, absoluteSeconds.isFinite else {
            throw UsageError("--absolute-seconds must be a number of seconds ≥ 0")
        }
        guard slopeThreshold >= 0, slopeThreshold.isFinite else {
            throw UsageError("--slope-threshold must be a number of copies ≥ 0")
        }
        var names = Metric.names
        if let metrics {
            names = metrics.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            for name in names where Metric.named(name) == nil {
                throw UsageError(
                    "unknown figure '\(name)' in --metrics; known: \(Metric.names.joined(separator: ", "))")
            }
            guard !names.isEmpty else {
                throw UsageError("--metrics needs at least one figure: \(Metric.names.joined(separator: ", "))")
            }
        }
        var options = Comparison.Options(
            relativeThreshold: threshold.fraction, absoluteBytes: absolute.bytes, absoluteSeconds: absoluteSeconds,
            metrics: names, gateTimes: gateTimes, force: force)
        options.slopeThreshold = slopeThreshold
        return options
    }

    /// Loads the baseline (every failure is exit 5), compares, prints, and returns the exit status.
    static func compare(
        baselinePath: String, current: ScenarioResults, currentPath: String, options: Comparison.Options, json: Bool,
        toStandardError: Bool
    ) throws -> ExitStatus {
        let baseline: ScenarioResults
        do {
            baseline = try ResultsFile.load(path: baselinePath)
        } catch {
            let hint =
                error.category == .missingInput ? " (to make one: copy a results file of this scenario there)" : ""
            throw ReportError("baseline \(error.message)\(hint)", category: .notComparable)
        }
        let comparison = Comparison(
            baseline: baseline, baselinePath: baselinePath, current: current, currentPath: currentPath, options: options
        )
        let text = json ? BenchmarkExports.text(comparison.json()) : comparison.render()
        if toStandardError {
            FileHandle.standardError.write(Data(text.utf8))
        } else {
            print(text, terminator: "")
        }
        switch comparison.exitStatus {
        case .regression: printError("regression: \(comparison.summaryLine)")
        case .baselineMismatch: printError("baseline \(baselinePath) does not match: \(comparison.summaryLine)")
        default: break
        }
        return comparison.exitStatus
    }
}
