import ArgumentParser
import Checkpoint
import Foundation
import Harness
import Loading
import OSLayer
import Reports
import ResultsFormat
import TensorEngine

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract:
            "Run a scenario: every strategy in its own measured process, each claim checked against what the OS saw.",
        discussion: """
            Writes DIR/<scenario>.json after every completed run (atomically), so an interrupt loses nothing measured, \
            and at the end the markdown report DIR/<scenario>.md with its SVG charts. With --baseline FILE the results \
            are then compared with FILE as `compare` does. Exit 0 when every claim holds (and nothing regressed), \
            1 when one fails (or a run hit its memory cap), 3 when a run died unexpectedly, 130 when interrupted; \
            otherwise 2 when --baseline found a regression, 5 when the baseline is missing or not comparable.

            Examples:
              bigmodel-bench run scenarios/gemma7b.json
              bigmodel-bench run Scenarios/smoke.json --baseline Reports/baselines/smoke.json
              bigmodel-bench run scenarios/gemma7b.json --only low-memory,sharded --ranks 4
              bigmodel-bench run scenarios/gemma7b.json --scales 0.25,0.5,0.75,1 --subject engine,transformers
              bigmodel-bench run ~/models/my-finetune --save-scenario my-finetune.json
            """)

    @Argument(
        help:
            "A scenario file, e.g. scenarios/gemma7b.json (path components match case-insensitively when the exact path does not exist), or a checkpoint folder: every strategy that applies to it.",
        completion: .file(extensions: ["json"]))
    var scenario: String

    @OptionGroup var scenarioOptions: ScenarioOptions

    @Option(
        help:
            "Only these runs (comma-separated run ids or strategy names; an id without its @subject selects that run for every subject)."
    )
    var only: String?

    @Option(name: .customLong("out"), help: "Folder for the results.", completion: .directory)
    var out: String = "Reports"

    @Option(help: "Simulate a machine with this much memory (e.g. 8GiB).", transform: SizeArgument.parse)
    var memoryLimit: SizeArgument?

    @Flag(help: "Print the results JSON on stdout instead of the summary table.")
    var json = false

    @Option(
        help:
            "Load every run with N processes at once, as N ranks on a training node (machine-level figures and claims)."
    )
    var ranks: Int?

    @Option(
        help: ArgumentHelp(
            "Sweep: measure every run at each of these fractions of the scale (e.g. 0.25,0.5,0.75,1) and fit each figure as copies of the model plus a fixed cost.",
            valueName: "fractions"), transform: ScalesArgument.parse)
    var scales: ScalesArgument?

    @Flag(help: "In a sweep, measure the largest size like the others instead of predicting it first.")
    var noHoldout = false

    @Flag(
        help:
            "Run the Python subjects under memray's tracker and keep the call stacks that held each run's peak (needs memray in the interpreter)."
    )
    var attribute = false

    @Option(
        help: ArgumentHelp(
            "With a checkpoint folder: write the scenario made from it to this file (for editing), then run it.",
            valueName: "file"), completion: .file(extensions: ["json"]))
    var saveScenario: String?

    @Option(help: "Compare the results with this baseline results file at the end (as `compare` does).")
    var baseline: String?

    @Option(
        help: ArgumentHelp(
            "Save the results as a baseline file for later --baseline comparisons (only when every run completed).",
            valueName: "file"), completion: .file(extensions: ["json"]))
    var saveBaseline: String?

    @OptionGroup(title: "Comparison with --baseline")
    var comparison: CompareOptions

    func validate() throws {
        if let ranks, ranks < 1 || ranks > 1024 { throw ValidationError("--ranks must be in 1…1024") }
        do { _ = try comparison.resolved() } catch { throw ValidationError("\(error)") }
        for (option, path) in [("--out", out), ("--work-dir", scenarioOptions.workDir)] {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
                throw ValidationError("\(option) \(path) is a file, not a folder")
            }
        }
    }

    func run() throws {
        let (results, resultsPath) = try reportingErrors { try runScenario() }
        let report = writeReport(results, resultsPath: resultsPath)
        print(
            json ? String(decoding: try ResultsCodec.encode(results), as: UTF8.self) : SummaryTable.render(results),
            terminator: "")
        let comparison = compareWithBaseline(results, resultsPath: resultsPath)
        let saved = saveAsBaseline(results)
        let status = ExitStatus.forRun(
            results: results, comparison: comparison, report: saved == .success ? report : saved)
        if status != .success { throw ExitCode(status.rawValue) }
    }

    private func runScenario() throws -> (ScenarioResults, String) {
        let path = PathResolver.resolve(scenario)
        if let saveScenario { try FolderScenario.save(folder: path, to: saveScenario) }
        let loaded = try Scenario.load(scenarioOrFolder: path).withSweep(
            scales?.fractions, holdout: noHoldout ? false : nil
        ).withAttribution(attribute)
        try SignalTrap.install()
        var options = scenarioOptions.runnerOptions(
            outputDirectory: out, executable: try ChildProcess.currentExecutablePath(),
            only: only.map { Set($0.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }) })
        options.memoryLimit = memoryLimit?.bytes
        options.ranks = ranks
        let console = RunConsole()
        let runner = ScenarioRunner(scenario: loaded, options: options, onEvent: console.handle)
        let results = try runner.run()
        console.finish()
        printProgress("results: \(runner.resultsPath)")
        return (results, runner.resultsPath)
    }

    /// The markdown report, always (an interrupted run's partial results included).
    private func writeReport(_ results: ScenarioResults, resultsPath: String) -> ExitStatus {
        do {
            let written = try MarkdownReport.write(results, resultsPath: resultsPath, folder: out)
            printProgress("report: \(written[0]) and \(written.count - 1) chart(s)")
            return .success
        } catch {
            printError(error.description)
            return ExitStatus(error.category)
        }
    }

    /// `--save-baseline FILE`: the results file's bytes, written atomically, when the run was not cut short (a
    /// baseline missing runs would make every later comparison report them missing).
    private func saveAsBaseline(_ results: ScenarioResults) -> ExitStatus {
        guard let saveBaseline else { return .success }
        guard results.complete else {
            printWarning(
                "not saved as a baseline: the run stopped early (\(results.stoppedReason?.rawValue ?? "incomplete"))")
            return .success
        }
        do {
            try AtomicFile.write(Array(try ResultsCodec.encode(results)), to: saveBaseline)
            printProgress("baseline: \(saveBaseline)")
            return .success
        } catch {
            printError("cannot save the baseline: \(FoundationErrorText.line(error))")
            return .ioError
        }
    }

    private func compareWithBaseline(_ results: ScenarioResults, resultsPath: String) -> ExitStatus {
        guard let baseline, results.stoppedReason != .interrupted else { return .success }
        if !json { print("") }
        do {
            return try CompareOptions.compare(
                baselinePath: baseline, current: results, currentPath: resultsPath, options: try comparison.resolved(),
                json: false, toStandardError: json)
        } catch let error as any ReportableError {
            printError(error.description)
            return ExitStatus(error.category)
        } catch {
            printError(FoundationErrorText.line(error))
            return ExitStatus(FoundationErrorText.category(error))
        }
    }
}

/// Prints the runner's events: a redrawn status line on a terminal, plain lines otherwise.
final class RunConsole {
    /// Put before every line (`rank 3: `), so that the lines of ranks sharing a terminal can be told apart.
    private let prefix: String
    private let start = ContinuousClock.now
    private var runSeconds: [Double] = []
    private var runStart = ContinuousClock.now
    private var remaining = 0
    private var lastGenerationDecile = -1

    /// A status line redrawn in place: on a terminal, for a process that has it to itself.
    private let redraws: Bool

    init(prefix: String = "") {
        self.prefix = prefix
        redraws = stderrIsTerminal && prefix.isEmpty
    }

    func handle(_ event: ScenarioRunner.Event) {
        switch event {
        case .note(let text):
            line(text)
        case .generating(let done, let total):
            let decile = total > 0 ? done * 10 / total : 10
            if redraws {
                status(
                    "generating checkpoint: \(ByteSize.fixed(Double(done) * 100 / Double(max(total, 1)), digits: 1))% of \(ByteSize.decimal(total))"
                )
            } else if decile != lastGenerationDecile {
                lastGenerationDecile = decile
                line("generating checkpoint: \(decile * 10)% of \(ByteSize.decimal(total))")
            }
        case .runStarted(let index, let count, let id, let repeatIndex):
            runStart = .now
            remaining = count - index
            let eta =
                runSeconds.isEmpty
                ? ""
                : ", ETA \(ByteSize.fixed(runSeconds.reduce(0, +) / Double(runSeconds.count) * Double(remaining + 1), digits: 0)) s"
            line("[\(index)/\(count)] \(id)\(repeatIndex > 0 ? " (repeat \(repeatIndex + 1))" : "")\(eta)")
        case .phase(let id, let name, let bytes, let elapsed):
            let text =
                "  \(id): \(name)" + (bytes.map { " · ledger \(ByteSize.binary($0))" } ?? "")
                + " · \(ByteSize.fixed(elapsed, digits: 1)) s"
            if redraws { status(text) } else { line(text) }
        case .runFinished(let result):
            runSeconds.append((ContinuousClock.now - runStart).inSeconds)
            line(
                "  \(result.id)\(result.rank.map { " r\($0)" } ?? ""): \(result.verdict.rawValue) — \(result.verdictDetail)"
            )
        case .machineFinished(let machine):
            line("  \(machine.id) × \(machine.ranks) ranks: \(machine.verdict.rawValue) — \(machine.verdictDetail)")
        }
    }

    func finish() {
        if redraws { status("") }
    }

    private func line(_ text: String) {
        if redraws { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        printProgress(prefix + text)
    }

    private func status(_ text: String) {
        FileHandle.standardError.write(Data(("\r\u{1B}[K" + prefix + text).utf8))
    }
}

/// The summary table `run` prints: one row per run.
enum SummaryTable {
    static func size(_ bytes: Int?) -> String { bytes.map { ByteSize.binary($0) } ?? "-" }

    /// Under this many columns the table drops RSS, jemalloc and ledger (the results file and report have them).
    static let wideColumns = 120

    /// `columns`: the terminal's width (nil: not a terminal, e.g. a CI log: the wide layout).
    static func render(_ results: ScenarioResults, columns: Int? = Terminal.columns(1)) -> String {
        let narrow = (columns ?? Int.max) < wideColumns
        var rows =
            narrow
            ? [["run", "predicted", "VmHWM Δ", "retained", "verdict", "seconds", "× floor"]]
            : [
                [
                    "run", "predicted", "RSS peak Δ anon / file", "VmHWM Δ", "retained anon Δ", "jemalloc peak Δ",
                    "ledger peak", "verdict", "seconds", "× floor",
                ]
            ]
        for run in results.runs {
            let m = run.measurement
            let label = Format.runLabel(run, repeatCount: results.scenario.repeatCount)
            let predicted = run.predictedPeakBytes.map { ByteSize.binary($0) } ?? "-"
            let seconds = run.seconds.map { ByteSize.fixed($0, digits: 2) } ?? "-"
            let floor = run.floorMultiple.map { ByteSize.fixed($0, digits: 1) + "×" } ?? "-"
            let retained = m?.retained.map { ByteSize.binaryWithMinus($0.rssAnonDeltaBytes) } ?? "-"
            rows.append(
                narrow
                    ? [label, predicted, size(m?.peaks[.vmhwm]), retained, run.verdict.rawValue, seconds, floor]
                    : [
                        label, predicted, "\(size(m?.peaks[.rssAnon])) / \(size(m?.peaks[.rssFile]))",
                        size(m?.peaks[.vmhwm]), retained,
                        size(m?.peaks[.jemallocAllocated]), size(m?.engine?.ledgerPeakBytes), run.verdict.rawValue,
                        seconds,
                        floor,
                    ])
        }
        let verdictColumn = narrow ? 4 : 7
        var out =
            "\n\(results.scenario.name) at scale \(results.scale.chosen) (\(results.checkpoint.totalSizeBytes) checkpoint bytes, \(ByteSize.decimal(results.checkpoint.totalSizeBytes)))\n"
        out += TextTable.render(rows, rightAligned: narrow ? [1, 2, 3, 5, 6] : [1, 2, 3, 4, 5, 6, 8, 9]) {
            _, column, cell in
            column == verdictColumn ? VerdictColour.paint(cell) : cell
        }
        out += machineTable(results.machineRuns ?? [])
        out += fitsTable(results.fits ?? [])
        out +=
            "sizes in GiB/MiB (binary); Δ = peak minus the child's baseline before the load; predicted = the strategy's ledger formula; retained = RssAnon still held after the load, model alive, over the baseline\n"
        return out
    }

    /// A sweep's judged lines, one row per run: cost in copies and fixed bytes, the held-out size, the verdict.
    static func fitsTable(_ fits: [SweepFit]) -> String {
        let judged = fits.filter { $0.figure.isJudged(for: $0.strategy) }
        guard !judged.isEmpty else { return "" }
        var rows = [["fit", "figure", "copies", "claim", "fixed", "held out: predicted", "measured", "verdict"]]
        for fit in judged {
            rows.append([
                fit.run, fit.figure.label, fit.slope.map(SweepFitting.copies) ?? "-",
                fit.claim.map { SweepFitting.copies($0.copies) } ?? "-",
                fit.interceptBytes.map(ByteSize.binaryWithMinus) ?? "-",
                size(fit.holdout?.predictedBytes), size(fit.holdout?.measuredBytes), fit.verdict.rawValue,
            ])
        }
        return "\n"
            + TextTable.render(rows, rightAligned: [2, 3, 4, 5, 6]) { _, column, cell in
                column == 7 ? VerdictColour.paint(cell) : cell
            }
    }

    /// The machine-level figures of multi-rank runs, one row per run and node.
    static func machineTable(_ machines: [MachineRun]) -> String {
        guard !machines.isEmpty else { return "" }
        var rows = [["machine", "ranks", "node", "Σ VmRSS Δ", "Σ RssAnon Δ", "Σ Pss Δ", "Σ Pss Δ held", "verdict"]]
        for m in machines {
            rows.append([
                m.id, String(m.ranks), m.node, size(m.peaks[.sumRss]), size(m.peaks[.sumRssAnon]),
                size(m.peaks[.sumPss]), size(m.held?[.sumPss]),
                m.verdict.rawValue,
            ])
        }
        return "\n" + TextTable.render(rows, rightAligned: [1, 3, 4, 5, 6])
            + "Σ … Δ: the largest sum of the ranks' figures over their baselines; held: at the moment every rank held its model\n"
    }
}
