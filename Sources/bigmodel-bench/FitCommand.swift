import ArgumentParser
import Harness
import OrderedCollections
import Probes
import Reports
import ResultsFormat
import StrictJSON
import TensorEngine

struct FitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fit",
        abstract:
            "Does the model fit? Every loading path's predicted peak at full size against a machine's memory, at once.",
        discussion: """
            From a config.json, a scenario or a checkpoint's headers (nothing is loaded). A path fits when its \
            predicted peak (× ranks; mmap's mapped pages once) plus the default tolerance (3% + 32 MiB) is at most \
            --memory, is tight when only the peak is, and does not fit otherwise; the pick is the fitting path that \
            needs least. Exit 0 when some path fits (or is tight), 1 when none does.

            With --calibration RESULTS.json (the results of a sweep, `run --scales`), every path of every loader in \
            it is sized by the lines the sweep measured instead: predicted VmHWM Δ and RssAnon Δ at the target's \
            checkpoint bytes, ± the line's standard error there; a path fits when its need plus the run's tolerance \
            plus two standard errors is at most --memory. The pick is per loader.

            Examples:
              bigmodel-bench fit scenarios/gemma7b.json --memory 24GiB
              bigmodel-bench fit scenarios/gemma7b.json --calibration Reports/calibration/gemma7b.json --memory 24GiB
              bigmodel-bench fit path/to/config.json --memory 80GiB --dtype float16 --ranks 8
              bigmodel-bench fit ./checkpoint --json
            """)

    @Argument(
        help:
            "A config.json (or a folder holding only one), a scenario file, or a checkpoint (folder, index or .safetensors).",
        completion: .file())
    var path: String

    @Option(
        help: "The machine's memory for the load (default: this machine's MemAvailable).", transform: SizeArgument.parse
    )
    var memory: SizeArgument?

    @Option(
        help: "The dtype to load into (dtype-direct and load-then-cast are sized when it differs from the stored one).")
    var dtype: DTypeArgument?

    @Option(help: "Processes loading at once on the node, as torchrun's ranks (default: 1, or the scenario's).")
    var ranks: Int?

    @Option(
        help: ArgumentHelp(
            "Size every path of every loader by a sweep's measured lines (the results of run --scales).",
            valueName: "results.json"), completion: .file(extensions: ["json"]))
    var calibration: String?

    @Flag(help: "Print one JSON object.")
    var json = false

    func validate() throws {
        if let ranks, ranks < 1 || ranks > 1024 { throw ValidationError("--ranks must be in 1…1024") }
    }

    func run() throws {
        let memoryBytes = memory?.bytes ?? SystemInfo.current().memAvailableBytes ?? 0
        let answer = try reportingErrors {
            try FitPlanner(
                path: PathResolver.resolve(path), dtype: try dtype?.castTarget(), ranks: ranks, memoryBytes: memoryBytes
            ).answer()
        }
        if let calibration {
            return try runCalibrated(answer, path: calibration, memoryBytes: memoryBytes)
        }
        print(
            json
                ? JSONWriter.pretty.string(FitReport.json(answer, memoryBytes: memoryBytes))
                : FitReport.text(answer, memoryBytes: memoryBytes), terminator: json ? "\n" : "")
        if FitEstimate.pick(answer.estimates) == nil { throw ExitCode(ExitStatus.claimFailed.rawValue) }
    }

    private func runCalibrated(_ answer: FitPlanner.Answer, path: String, memoryBytes: Int) throws {
        let fit = try reportingErrors {
            CalibratedFit(
                calibration: try CalibratedFit.load(path: PathResolver.resolve(path)), calibrationPath: path,
                checkpointBytes: answer.checkpointBytes, ranks: ranks, memoryBytes: memoryBytes)
        }
        let rows = fit.rows()
        print(
            json
                ? JSONWriter.pretty.string(CalibratedFitReport.json(fit, rows: rows, answer: answer))
                : CalibratedFitReport.text(fit, rows: rows, answer: answer), terminator: json ? "\n" : "")
        if CalibratedFit.picks(rows).allSatisfy({ $0.1 == nil }) { throw ExitCode(ExitStatus.claimFailed.rawValue) }
    }
}

/// `fit`'s table and JSON.
enum FitReport {
    static func text(_ answer: FitPlanner.Answer, memoryBytes: Int) -> String {
        var out =
            "\(answer.model): \(ByteSize.binary(answer.modelBytes)) of weights (\(ByteSize.decimal(answer.modelBytes))); memory \(ByteSize.binary(memoryBytes))\n"
        out +=
            "predicted by the formulas (the engine's ledger; no calibration: --calibration sizes a measured loader)\n\n"
        var rows = [["path", "ranks", "peak per process", "needs", "headroom", "verdict"]]
        for e in answer.estimates {
            rows.append([
                e.run, String(e.ranks), ByteSize.binary(e.processPeakBytes), ByteSize.binary(e.needBytes),
                signed(e.headroomBytes), e.statusText,
            ])
        }
        out += TextTable.render(rows, rightAligned: [1, 2, 3, 4])
        if let pick = FitEstimate.pick(answer.estimates) {
            out +=
                "\npick: \(pick.run), \(ByteSize.binary(pick.needBytes)) predicted, \(ByteSize.binary(pick.headroomBytes)) to spare"
            out +=
                pick.status == .tight
                ? " (tight: not with the tolerance of \(ByteSize.binary(pick.toleranceBytes)))\n" : "\n"
        } else {
            out += "\nno path fits in \(ByteSize.binary(memoryBytes))\n"
        }
        for note in answer.notes { out += "note: \(note)\n" }
        out +=
            "peak per process: its ledger formula (mmap: the bytes it owns; its mapped pages are the page cache's, counted once in needs); "
        out += "needs: × ranks; fits: needs + tolerance (3% + 32 MiB) ≤ memory; tight: only needs ≤ memory\n"
        return out
    }

    /// Headroom is memory − need with both in 0…Int.max, so its negation cannot overflow.
    static func signed(_ bytes: Int) -> String { ByteSize.binaryWithMinus(bytes) }

    static func json(_ answer: FitPlanner.Answer, memoryBytes: Int) -> JSONValue {
        var o = OrderedDictionary<String, JSONValue>()
        o["model"] = .string(answer.model)
        o["model_bytes"] = JSONValue(answer.modelBytes)
        o["memory_bytes"] = JSONValue(memoryBytes)
        o["source"] = .string("formulas")
        o["paths"] = .array(
            answer.estimates.map { e in
                .object([
                    "path": .string(e.run), "strategy": .string(e.strategy.rawValue), "ranks": JSONValue(e.ranks),
                    "predicted_peak_bytes": JSONValue(e.processPeakBytes), "need_bytes": JSONValue(e.needBytes),
                    "tolerance_bytes": JSONValue(e.toleranceBytes),
                    "headroom_bytes": JSONValue(e.headroomBytes), "status": .string(e.status.rawValue),
                ])
            })
        o["pick"] = FitEstimate.pick(answer.estimates).map { .string($0.run) } ?? .null
        o["notes"] = .array(answer.notes.map { .string($0) })
        return .object(o)
    }
}
