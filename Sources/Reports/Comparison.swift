import OrderedCollections
import ResultsFormat
import StrictJSON
import TensorEngine

/// `compare`: every tracked figure of every run in a baseline results file against the same run in a
/// current one, judged by per-kind rules, and the exit status a CI gate uses.
///
/// Rules (docs/reports.md, "compare"):
/// - ledger figures are exact: any increase is a regression, any decrease an improvement;
/// - VmHWM / RSS / jemalloc figures regress when the increase exceeds BOTH the relative threshold (of the
///   baseline's magnitude) and the absolute one; they improve when a decrease exceeds both; else unchanged;
/// - seconds follow the same rule with `absoluteSeconds`, but count only with `gateTimes`;
/// - a run (id and repeat) in the baseline but not in the current file, or whose verdict got worse
///   (pass < fail < oom < error), is a regression; runs only in the current file are listed as new;
/// - different scenario, scale or checkpoint: nothing is comparable, exit 5;
/// - different machine kind (``MachineMatch``: architecture, kernel series, CPU model, logical CPUs, MemTotal
///   beyond 3%, page size, THP modes, allocator, MALLOC_CONF, cache mode — not the kernel's build string): said
///   prominently; memory and time figures are shown but not gated unless `force`; ledger figures, verdicts and
///   missing runs are still gated.
package struct Comparison: Sendable {
    package struct Options: Sendable {
        package var relativeThreshold: Double
        package var absoluteBytes: Int
        package var absoluteSeconds: Double
        package var metrics: [String]
        package var gateTimes: Bool
        package var force: Bool
        /// A sweep's slope regresses when it grows by more than this many copies of the model.
        package var slopeThreshold = Options.defaultSlopeThreshold

        package static let defaultRelativeThreshold = 0.05
        /// A quarter copy: beyond the noise of a Python loader's line (its slope tolerance), far below the whole
        /// copy a loader that starts holding its state dict twice adds.
        package static let defaultSlopeThreshold = 0.25
        package static let defaultAbsoluteBytes = 16 << 20
        package static let defaultAbsoluteSeconds = 0.1

        package init(
            relativeThreshold: Double = Options.defaultRelativeThreshold,
            absoluteBytes: Int = Options.defaultAbsoluteBytes,
            absoluteSeconds: Double = Options.defaultAbsoluteSeconds, metrics: [String] = Metric.names,
            gateTimes: Bool = false, force: Bool = false
        ) {
            self.relativeThreshold = relativeThreshold
            self.absoluteBytes = absoluteBytes
            self.absoluteSeconds = absoluteSeconds
            self.metrics = metrics
            self.gateTimes = gateTimes
            self.force = force
        }
    }

    package enum Status: String, Sendable {
        case regression
        case improvement
        case unchanged
        /// In the baseline, not in the current file (a regression when gated).
        case missing
        /// Only in the current file.
        case new
        /// The files are not comparable (scale, checkpoint or scenario differ).
        case notCompared = "not_compared"
    }

    package enum Value: Sendable, Equatable {
        case quantity(Quantity)
        case verdict(Verdict)
    }

    package struct Row: Sendable {
        /// The run's label (`naive`, or `naive #2` with repeats).
        package let run: String
        /// `verdict`, or a metric name.
        package let figure: String
        package let title: String
        package let unit: Metric.Unit?
        package let baseline: Value?
        package let current: Value?
        package let status: Status
        /// True when this row's status decides the exit status.
        package let gated: Bool
        /// Why a row is not gated, or what it means.
        package let note: String?

        /// A regression that counts.
        package var isRegression: Bool { gated && (status == .regression || status == .missing) }

        /// current − baseline, for figures.
        package var change: Quantity? {
            guard case .quantity(let b)? = baseline, case .quantity(let c)? = current else { return nil }
            switch (b, c) {
            case (.bytes(let x), .bytes(let y)): return .bytes(y - x)
            case (.copies(let x), .copies(let y)): return .copies(y - x)
            default: return .seconds(c.doubleValue - b.doubleValue)
            }
        }

        /// change / |baseline|, nil when the baseline is 0.
        package var changeFraction: Double? {
            guard case .quantity(let b)? = baseline, let change, b.doubleValue != 0 else { return nil }
            return change.doubleValue / abs(b.doubleValue)
        }
    }

    package struct Difference: Sendable, Equatable {
        package let field: String
        package let baseline: String
        package let current: String
    }

    package let baselinePath: String
    package let currentPath: String
    package let baseline: ScenarioResults
    package let current: ScenarioResults
    package let options: Options
    /// Why the files cannot be compared at all (exit 5).
    package let mismatches: [Difference]
    /// Machine or measuring-setup differences that stop memory and time figures from gating (unless forced).
    package let machineDifferences: [Difference]
    /// Differences that change nothing but are worth knowing.
    package let notes: [String]
    package let rows: [Row]

    package var comparable: Bool { mismatches.isEmpty }
    /// Memory figures gate only on the same machine, or when forced.
    package var memoryGated: Bool { machineDifferences.isEmpty || options.force }
    package var regressions: [Row] { rows.filter(\.isRegression) }
    package var improvements: [Row] { rows.filter { $0.gated && $0.status == .improvement } }

    package var exitStatus: ExitStatus {
        if !comparable { return .baselineMismatch }
        return regressions.isEmpty ? .success : .regression
    }

    package init(
        baseline: ScenarioResults, baselinePath: String, current: ScenarioResults, currentPath: String,
        options: Options = Options()
    ) {
        self.baseline = baseline
        self.current = current
        self.baselinePath = baselinePath
        self.currentPath = currentPath
        self.options = options

        var mismatches: [Difference] = []
        func mismatch(_ field: String, _ b: String, _ c: String) {
            if b != c { mismatches.append(Difference(field: field, baseline: b, current: c)) }
        }
        mismatch("scenario", baseline.scenario.name, current.scenario.name)
        mismatch("checkpoint dtype", baseline.checkpoint.dtype ?? "-", current.checkpoint.dtype ?? "-")
        mismatch("sweep", baseline.sweep == nil ? "one size" : "a sweep", current.sweep == nil ? "one size" : "a sweep")
        // Two sweeps compare on their lines, which are scale-free; their runs compare only when the sizes agree.
        let sizesAgree = Self.sizes(baseline).elementsEqual(Self.sizes(current)) { $0 == $1 }
        if baseline.sweep == nil || current.sweep == nil {
            mismatch(
                "scale", Format.trimmed(baseline.scale.chosen, maxDigits: 9),
                Format.trimmed(current.scale.chosen, maxDigits: 9))
            mismatch("checkpoint files", String(baseline.checkpoint.files), String(current.checkpoint.files))
            mismatch(
                "checkpoint bytes", String(baseline.checkpoint.totalSizeBytes),
                String(current.checkpoint.totalSizeBytes))
            mismatch(
                "largest shard bytes", String(baseline.checkpoint.largestShardBytes),
                String(current.checkpoint.largestShardBytes))
        }
        self.mismatches = mismatches

        let machine = MachineMatch(baseline: baseline, current: current)
        machineDifferences = machine.differences

        var notes = machine.notes
        func note(_ what: String, _ b: String, _ c: String) {
            if b != c { notes.append("\(what): \(b) (baseline) vs \(c) (current)") }
        }
        note("build configuration", baseline.tool.buildConfiguration, current.tool.buildConfiguration)
        note("tool version", baseline.tool.version, current.tool.version)
        note("commit", baseline.tool.gitCommit ?? "unknown", current.tool.gitCommit ?? "unknown")
        note(
            "tolerance",
            "\(Format.trimmed(baseline.scenario.toleranceRelative * 100))% + \(Format.size(baseline.scenario.toleranceAbsoluteBytes))",
            "\(Format.trimmed(current.scenario.toleranceRelative * 100))% + \(Format.size(current.scenario.toleranceAbsoluteBytes))"
        )
        note(
            "sample interval", "\(Format.trimmed(baseline.scenario.sampleIntervalSeconds * 1000)) ms",
            "\(Format.trimmed(current.scenario.sampleIntervalSeconds * 1000)) ms")
        note(
            "memory limit", baseline.scenario.memoryLimitBytes.map(Format.size) ?? "none",
            current.scenario.memoryLimitBytes.map(Format.size) ?? "none")
        if !baseline.complete {
            notes.append("the baseline is incomplete (\(baseline.stoppedReason?.rawValue ?? "stopped early"))")
        }
        if !current.complete {
            notes.append("the current results are incomplete (\(current.stoppedReason?.rawValue ?? "stopped early"))")
        }

        if !sizesAgree, mismatches.isEmpty {
            notes.append(
                "the sweeps' sizes differ (\(Self.sizes(baseline).map(\.1).map(Format.size).joined(separator: ", ")) vs \(Self.sizes(current).map(\.1).map(Format.size).joined(separator: ", "))): their runs are not compared, their lines are"
            )
        }
        self.notes = notes
        rows =
            Self.rows(
                baseline: baseline, current: current, options: options,
                comparable: mismatches.isEmpty && sizesAgree, memoryGated: machine.differences.isEmpty || options.force)
            + Self.fitRows(
                baseline: baseline, current: current, options: options, comparable: mismatches.isEmpty,
                memoryGated: machine.differences.isEmpty || options.force)
    }

    /// A sweep's sizes: (scale, checkpoint bytes), ascending; empty for one size.
    static func sizes(_ r: ScenarioResults) -> [(Double, Int)] {
        (r.sweep?.points ?? []).map { ($0.scale, $0.checkpoint.totalSizeBytes) }
    }

    static let severity: [Verdict: Int] = [.pass: 0, .fail: 1, .oom: 2, .error: 3]

    /// Whether a figure of this kind gates, and why not when it does not.
    static func gating(_ kind: Metric.Kind, comparable: Bool, memoryGated: Bool, gateTimes: Bool) -> (Bool, String?) {
        let asFiles: (Bool, String?) = (comparable, comparable ? nil : "not gated")
        let otherMachine: (Bool, String?) = (false, "not gated: different machine (--force gates it)")
        switch kind {
        case .exact: return asFiles
        case .memory: return memoryGated ? asFiles : otherMachine
        case .time:
            return !gateTimes
                ? (false, "not gated: times gate only with --gate-times") : memoryGated ? asFiles : otherMachine
        }
    }

    static func rows(
        baseline: ScenarioResults, current: ScenarioResults, options: Options, comparable: Bool, memoryGated: Bool
    ) -> [Row] {
        guard baseline.scenario.name == current.scenario.name else { return [] }
        let repeats = max(baseline.scenario.repeatCount, current.scenario.repeatCount)
        struct Key: Hashable {
            let id: String
            let repeatIndex: Int
            var scale: Double? = nil
        }
        var currentRuns: [Key: RunResult] = [:]
        for run in current.runs { currentRuns[Key(id: run.id, repeatIndex: run.repeatIndex, scale: run.scale)] = run }
        let metrics = options.metrics.compactMap(Metric.named)
        var rows: [Row] = []
        var seen: Set<Key> = []
        for b in baseline.runs {
            let key = Key(id: b.id, repeatIndex: b.repeatIndex, scale: b.scale)
            seen.insert(key)
            let label = Format.runLabel(b, repeatCount: repeats)
            guard let c = currentRuns[key] else {
                rows.append(
                    Row(
                        run: label, figure: "verdict", title: "verdict", unit: nil, baseline: .verdict(b.verdict),
                        current: nil,
                        status: comparable ? .missing : .notCompared, gated: comparable,
                        note: "the run is missing from the current results"))
                continue
            }
            let verdictStatus: Status
            let sb = severity[b.verdict] ?? 3
            let sc = severity[c.verdict] ?? 3
            verdictStatus = !comparable ? .notCompared : sc > sb ? .regression : sc < sb ? .improvement : .unchanged
            rows.append(
                Row(
                    run: label, figure: "verdict", title: "verdict", unit: nil, baseline: .verdict(b.verdict),
                    current: .verdict(c.verdict),
                    status: verdictStatus, gated: comparable, note: nil))
            for metric in metrics {
                let bv = metric.value(b)
                let cv = metric.value(c)
                if bv == nil && cv == nil { continue }
                var (gated, note) = Self.gating(
                    metric.kind, comparable: comparable, memoryGated: memoryGated, gateTimes: options.gateTimes)
                let status: Status
                if !comparable {
                    status = .notCompared
                } else if let bv, let cv {
                    status = judge(metric.kind, baseline: bv, current: cv, options: options)
                } else if bv != nil {
                    status = .missing
                    if c.verdict == .oom || c.verdict == .error {
                        // The verdict row already says the run got worse; the figures it no longer has are not counted again.
                        gated = false
                        note = "no figure: the run's verdict is \(c.verdict.rawValue)"
                    } else {
                        note = note ?? "the figure is missing from the current results"
                    }
                } else {
                    status = .new
                }
                rows.append(
                    Row(
                        run: label, figure: metric.name, title: metric.title, unit: metric.unit,
                        baseline: bv.map { .quantity($0) },
                        current: cv.map { .quantity($0) }, status: status, gated: gated, note: note))
            }
        }
        for c in current.runs where !seen.contains(Key(id: c.id, repeatIndex: c.repeatIndex, scale: c.scale)) {
            rows.append(
                Row(
                    run: Format.runLabel(c, repeatCount: repeats), figure: "verdict", title: "verdict", unit: nil,
                    baseline: nil, current: .verdict(c.verdict),
                    status: comparable ? .new : .notCompared, gated: false, note: "the run is not in the baseline"))
        }
        return rows
    }

    /// The rule for one figure (see the type's documentation).
    package static func judge(_ kind: Metric.Kind, baseline: Quantity, current: Quantity, options: Options) -> Status {
        switch (kind, baseline, current) {
        case (.exact, .bytes(let b), .bytes(let c)):
            return c > b ? .regression : c < b ? .improvement : .unchanged
        default:
            let b = baseline.doubleValue
            let d = current.doubleValue - b
            let absolute = kind == .time ? options.absoluteSeconds : Double(options.absoluteBytes)
            let relative = options.relativeThreshold * abs(b)
            if d > relative && d > absolute { return .regression }
            if -d > relative && -d > absolute { return .improvement }
            return .unchanged
        }
    }

    // MARK: - Rendering

    static func text(_ value: Value?) -> String {
        switch value {
        case nil: return "-"
        case .verdict(let v)?: return v.rawValue
        case .quantity(.bytes(let b))?: return Format.size(b)
        case .quantity(.seconds(let s))?: return Format.seconds(s) + " s"
        case .quantity(.copies(let c))?: return SweepFitting.copies(c) + " copies"
        }
    }

    static func changeText(_ change: Quantity?) -> String {
        switch change {
        case nil: return ""
        case .bytes(let b)?: return Format.signedSize(b)
        case .seconds(let s)?: return (s > 0 ? "+" : "") + Format.seconds(s) + " s"
        case .copies(let c)?: return (c > 0 ? "+" : "") + SweepFitting.copies(c) + " copies"
        }
    }

    func statusText(_ row: Row) -> String {
        var text: String
        switch row.status {
        // An increase that does not gate is not called a regression: the exit status would contradict it.
        case .regression: text = row.gated ? "**REGRESSION**" : row.unit == .seconds ? "slower" : "higher"
        case .missing: text = row.gated ? "**MISSING (regression)**" : "missing"
        case .improvement: text = row.gated ? "improvement" : row.unit == .seconds ? "faster" : "lower"
        case .unchanged: text = "unchanged"
        case .new: text = "new"
        case .notCompared: text = "not compared"
        }
        if let note = row.note, row.status != .notCompared { text += " (\(note))" }
        return text
    }

    var rulesText: String {
        let rel = Format.trimmed(options.relativeThreshold * 100)
        return
            "ledger figures are exact (any increase regresses); VmHWM, RSS and jemalloc figures regress when the increase exceeds both "
            + "\(rel)% of the baseline and \(Format.size(options.absoluteBytes)); times "
            + (options.gateTimes
                ? "regress past both \(rel)% and \(Format.trimmed(options.absoluteSeconds)) s"
                : "are not gated (--gate-times)")
            + "; a missing run or a worse verdict (pass < fail < oom < error) regresses"
            + "; a sweep's slope regresses when it grows by more than \(SweepFitting.copies(options.slopeThreshold)) copies (its fixed cost is shown, not gated)"
    }

    static func describe(_ r: ScenarioResults, path: String) -> String {
        let commit = r.tool.gitCommit.map { ", commit \(String($0.prefix(12)))" } ?? ""
        return "\(path): started \(r.startedAt), scale \(Format.trimmed(r.scale.chosen)), \(r.runs.count) runs; "
            + "\(r.environment.hostname), \(r.environment.cpuModel), \(Format.size(r.environment.memTotalBytes)) MemTotal; \(r.tool.name) \(r.tool.version)\(commit)"
    }

    /// The human report: header, warnings, a GitHub-flavoured markdown table (it reads in a terminal and
    /// renders in a job summary), and the result line.
    package func render() -> String {
        var out =
            "## bigmodel-bench compare: \(baseline.scenario.name == current.scenario.name ? baseline.scenario.name : "\(baseline.scenario.name) vs \(current.scenario.name)")\n\n"
        out += "**Result:** " + summaryLine + "\n\n"
        out += "- baseline: \(Self.describe(baseline, path: baselinePath))\n"
        out += "- current: \(Self.describe(current, path: currentPath))\n"
        out += "- rules: \(rulesText)\n\n"
        if !mismatches.isEmpty {
            out += "> **NOT COMPARABLE: \(mismatches.map(\.field).joined(separator: ", ")) differ.** "
            out += mismatches.map { "\($0.field): \($0.baseline) (baseline) vs \($0.current) (current)" }.joined(
                separator: "; ")
            out += ". Nothing is gated; exit 5. Make a baseline from a run of the same scenario at the same scale.\n\n"
        }
        if !machineDifferences.isEmpty {
            out += "> **DIFFERENT MACHINES:** "
            out += machineDifferences.map { "\($0.field): \($0.baseline) (baseline) vs \($0.current) (current)" }
                .joined(separator: "; ")
            out +=
                options.force
                ? ". Gating every figure anyway (--force).\n\n"
                : ". VmHWM, RSS, jemalloc and time figures are shown but not gated (--force gates them); ledger figures, verdicts and missing runs are still gated.\n\n"
        }
        for note in notes { out += "- note: \(note)\n" }
        if !notes.isEmpty { out += "\n" }
        if !rows.isEmpty {
            var table = [["run", "figure", "baseline", "current", "change", "change %", "status"]]
            for row in rows {
                table.append([
                    row.run, row.figure, Self.text(row.baseline), Self.text(row.current), Self.changeText(row.change),
                    row.changeFraction.map { Format.signedPercent($0) } ?? "", statusText(row),
                ])
            }
            out += Format.markdownTable(table, rightAligned: [2, 3, 4, 5]) + "\n"
            out +=
                "Sizes in binary units (1 MiB = 2^20 bytes). Figures: ledger_peak_bytes = the engine's exact peak; vmhwm_delta_bytes = "
            out +=
                "VmHWM minus baseline VmRSS; *_peak_delta_bytes = sampled maximum minus baseline; seconds = the load's wall time.\n\n"
        }
        out += "**Result:** " + summaryLine + "\n"
        return out
    }

    /// One line: the outcome and, for regressions, which run and figure.
    package var summaryLine: String {
        if !comparable {
            return
                "baseline mismatch (\(mismatches.map { "\($0.field) \($0.baseline) vs \($0.current)" }.joined(separator: ", "))): exit 5"
        }
        let regressions = self.regressions
        if regressions.isEmpty {
            let better = improvements.count
            return "no regression" + (better > 0 ? ", \(better) improvement\(better == 1 ? "" : "s")" : "") + ": exit 0"
        }
        let list = regressions.map { row -> String in
            if row.figure == "verdict" {
                return row.current == nil
                    ? "\(row.run) missing" : "\(row.run) verdict \(Self.text(row.baseline)) → \(Self.text(row.current))"
            }
            if row.status == .missing { return "\(row.run) \(row.figure) missing" }
            let percent = row.changeFraction.map { ", \(Format.signedPercent($0))" } ?? ""
            return "\(row.run) \(row.figure) \(Self.changeText(row.change))\(percent)"
        }
        return
            "\(regressions.count) regression\(regressions.count == 1 ? "" : "s"): \(list.joined(separator: "; ")): exit 2"
    }

    // MARK: - JSON

    static func json(_ value: Value?) -> JSONValue? {
        switch value {
        case nil: return nil
        case .verdict(let v)?: return .string(v.rawValue)
        case .quantity(.bytes(let b))?: return JSONValue(b)
        case .quantity(.seconds(let s))?: return JSONValue(s)
        case .quantity(.copies(let c))?: return JSONValue(c)
        }
    }

    static func side(_ r: ScenarioResults, path: String) -> JSONValue {
        var o = OrderedDictionary<String, JSONValue>()
        o["file"] = .string(path)
        o["scenario"] = .string(r.scenario.name)
        o["started_at"] = .string(r.startedAt)
        o["scale"] = JSONValue(r.scale.chosen)
        o["git_commit"] = r.tool.gitCommit.map { .string($0) } ?? .null
        o["hostname"] = .string(r.environment.hostname)
        o["mem_total_bytes"] = JSONValue(r.environment.memTotalBytes)
        o["cpu_model"] = .string(r.environment.cpuModel)
        o["kernel"] = .string(r.environment.kernel)
        return .object(o)
    }

    static func differences(_ list: [Difference]) -> JSONValue {
        .array(
            list.map {
                .object(["field": .string($0.field), "baseline": .string($0.baseline), "current": .string($0.current)])
            })
    }

    /// `compare --json`: the schema is `Reports/schema/compare.schema.json`.
    package func json() -> JSONValue {
        var o = OrderedDictionary<String, JSONValue>()
        o["schema_version"] = JSONValue(1)
        o["baseline"] = Self.side(baseline, path: baselinePath)
        o["current"] = Self.side(current, path: currentPath)
        o["rules"] = .object([
            "relative_threshold": JSONValue(options.relativeThreshold),
            "absolute_threshold_bytes": JSONValue(options.absoluteBytes),
            "absolute_threshold_seconds": JSONValue(options.absoluteSeconds),
            "metrics": .array(options.metrics.map { .string($0) }),
            "gate_times": .bool(options.gateTimes),
            "force": .bool(options.force),
            "slope_threshold_copies": JSONValue(options.slopeThreshold),
        ])
        o["comparable"] = .bool(comparable)
        o["mismatches"] = Self.differences(mismatches)
        o["machine_differences"] = Self.differences(machineDifferences)
        o["memory_gated"] = .bool(memoryGated)
        o["notes"] = .array(notes.map { .string($0) })
        o["rows"] = .array(
            rows.map { row in
                var r = OrderedDictionary<String, JSONValue>()
                r["run"] = .string(row.run)
                r["figure"] = .string(row.figure)
                r["unit"] = row.unit.map { .string($0.rawValue) } ?? .null
                r["baseline"] = Self.json(row.baseline) ?? .null
                r["current"] = Self.json(row.current) ?? .null
                switch row.change {
                case .bytes(let b)?: r["change"] = JSONValue(b)
                case .seconds(let s)?: r["change"] = JSONValue(s)
                case .copies(let c)?: r["change"] = JSONValue(c)
                case nil: r["change"] = .null
                }
                r["change_fraction"] = row.changeFraction.map { JSONValue($0) } ?? .null
                r["status"] = .string(row.status.rawValue)
                r["gated"] = .bool(row.gated)
                r["regression"] = .bool(row.isRegression)
                r["note"] = row.note.map { .string($0) } ?? .null
                return .object(r)
            })
        o["regressions"] = JSONValue(regressions.count)
        o["improvements"] = JSONValue(improvements.count)
        o["summary"] = .string(summaryLine)
        o["exit_status"] = JSONValue(Int(exitStatus.rawValue))
        return .object(o)
    }
}
