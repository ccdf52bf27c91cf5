import OrderedCollections
import ResultsFormat
import StrictJSON

/// The benchmark-tracking formats `report` exports: one series per run and figure, smaller is better.
///
/// Decisions, so that a tracker needs no hand setup and never loses a failure:
/// - **Repeats are one series**: the value is the median over the repeats, with the spread (github-action-
///   benchmark's `range`, Bencher's `lower_value`/`upper_value`: min and max). Each rank of a multi-rank run is
///   its own series (`naive r1`).
/// - **Failures are exported**: a run whose verdict is oom or error has no figures; it is exported with a value
///   that fails the series — twice its allowed upper bound for byte figures (so a 200% alert threshold fires),
///   the scenario's run time limit (else twice the longest time seen) for seconds — and its verdict in `extra`.
///   A figure a passing run does not have (jemalloc for a loader outside the engine) is left out, never zero.
/// - **Bencher measure slugs** are the metric names with `-` for `_` (`vmhwm-delta-bytes`, `seconds`); units are
///   bytes and seconds (docs/reports.md says how to create them once with their units).
package enum BenchmarkExports {
    /// The series name of a run: `<scenario>/<run id>`, plus ` r<rank>` for a rank of a multi-rank run.
    package static func benchmarkName(_ results: ScenarioResults, _ run: RunResult) -> String {
        "\(results.scenario.name)/\(run.id)\(run.rank.map { " r\($0)" } ?? "")"
    }

    /// Bencher's slug for a metric: lower case, digits and `-`.
    package static func slug(_ metric: Metric) -> String { metric.name.replacingOccurrences(of: "_", with: "-") }

    /// One series: the runs (repeats) of one id and rank, and one figure of them.
    struct Point {
        let value: Double
        let lower: Double
        let upper: Double
        let isInteger: Bool
        let verdicts: [Verdict]
        let flagged: Bool

        var extra: String {
            let names = verdicts.map(\.rawValue).joined(separator: ", ")
            let repeats = verdicts.count > 1 ? "\(verdicts.count) repeats, median; " : ""
            return repeats + "verdict\(verdicts.count > 1 ? "s" : ""): \(names)"
                + (flagged ? "; a run without figures is exported as a value that fails the series" : "")
        }

        func json(_ v: Double) -> JSONValue { isInteger ? JSONValue(Int(v.rounded())) : JSONValue(v) }
    }

    /// Groups the runs by series, in the order they first appear.
    static func series(_ results: ScenarioResults) -> OrderedDictionary<String, [RunResult]> {
        var groups = OrderedDictionary<String, [RunResult]>()
        for run in results.runs { groups[benchmarkName(results, run), default: []].append(run) }
        return groups
    }

    /// The figure of one run, or for an oom/error run the value that fails its series.
    static func value(_ metric: Metric, _ run: RunResult, _ results: ScenarioResults) -> (Double, flagged: Bool)? {
        if let v = metric.value(run) { return (v.doubleValue, false) }
        guard run.verdict == .oom || run.verdict == .error else { return nil }
        switch metric.unit {
        case .bytes:
            guard let bound = run.upperBoundBytes ?? run.predictedPeakBytes else { return nil }
            return (2 * Double(max(bound, 1)), true)
        case .seconds:
            let longest = results.runs.compactMap(\.seconds).max()
            guard let limit = results.scenario.runTimeoutSeconds ?? longest.map({ 2 * max($0, 0.001) }) else {
                return nil
            }
            return (limit, true)
        case .copies:
            // No run metric is in copies: a sweep's slopes are in its fits, not its runs.
            return nil
        }
    }

    static func point(_ metric: Metric, _ runs: [RunResult], _ results: ScenarioResults) -> Point? {
        let values = runs.compactMap { value(metric, $0, results) }
        guard !values.isEmpty else { return nil }
        let sorted = values.map(\.0).sorted()
        let median =
            sorted.count % 2 == 1
            ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
        return Point(
            value: median, lower: sorted[0], upper: sorted[sorted.count - 1], isInteger: metric.unit == .bytes,
            verdicts: runs.map(\.verdict),
            flagged: values.contains { $0.flagged })
    }

    /// github-action-benchmark's `customSmallerIsBetter` input: `[{"name", "unit", "value", "range", "extra"}]`,
    /// names `<scenario>/<run>/<metric>`, unit `bytes` or `seconds`; `range` (repeats only) is "± half the spread".
    package static func githubBenchmark(_ results: ScenarioResults, metrics: [Metric] = Metric.all) -> JSONValue {
        var entries: [JSONValue] = []
        for (name, runs) in series(results) {
            for metric in metrics {
                guard let p = point(metric, runs, results) else { continue }
                var o = OrderedDictionary<String, JSONValue>()
                o["name"] = .string("\(name)/\(metric.name)")
                o["unit"] = .string(metric.unit.rawValue)
                o["value"] = p.json(p.value)
                if runs.count > 1 { o["range"] = .string("± " + Format.trimmed((p.upper - p.lower) / 2, maxDigits: 6)) }
                o["extra"] = .string(p.extra)
                entries.append(.object(o))
            }
        }
        return .array(entries)
    }

    /// Bencher Metric Format: `{"<scenario>/<run>": {"<measure slug>": {"value", "lower_value", "upper_value"}}}`.
    package static func bencherMetricFormat(_ results: ScenarioResults, metrics: [Metric] = Metric.all) -> JSONValue {
        var benchmarks = OrderedDictionary<String, JSONValue>()
        for (name, runs) in series(results) {
            var measures = OrderedDictionary<String, JSONValue>()
            for metric in metrics {
                guard let p = point(metric, runs, results) else { continue }
                var o: OrderedDictionary<String, JSONValue> = ["value": p.json(p.value)]
                if runs.count > 1 || p.flagged {
                    o["lower_value"] = p.json(p.lower)
                    o["upper_value"] = p.json(p.upper)
                }
                measures[slug(metric)] = .object(o)
            }
            if !measures.isEmpty { benchmarks[name] = .object(measures) }
        }
        return .object(benchmarks)
    }

    /// The text written for an export: JSONWriter.pretty and a final newline (byte-stable).
    package static func text(_ value: JSONValue) -> String {
        JSONWriter.pretty.string(value) + "\n"
    }
}
