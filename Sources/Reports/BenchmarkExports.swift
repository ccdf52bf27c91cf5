import Harness
import OrderedCollections
import StrictJSON

/// The benchmark-tracking formats `report` exports: one value per run and figure, smaller is better.
public enum BenchmarkExports {
    /// The benchmark name of a run: `<scenario>/<run id>`, plus `#<n>` for repeats when the scenario repeats.
    public static func benchmarkName(_ results: ScenarioResults, _ run: RunResult) -> String {
        "\(results.scenario.name)/\(Format.runLabel(run, repeatCount: results.scenario.repeatCount))"
    }

    static func number(_ quantity: Quantity) -> JSONValue {
        switch quantity {
        case .bytes(let b): return JSONValue(b)
        case .seconds(let s): return JSONValue(s)
        }
    }

    /// github-action-benchmark's `customSmallerIsBetter` input: `[{"name", "unit", "value"}]`, names
    /// `<scenario>/<run>/<metric>`, unit `bytes` or `seconds`. Runs without a figure are left out.
    public static func githubBenchmark(_ results: ScenarioResults) -> JSONValue {
        var entries: [JSONValue] = []
        for run in results.runs {
            for metric in Metric.all {
                guard let value = metric.value(run) else { continue }
                entries.append(
                    .object([
                        "name": .string("\(benchmarkName(results, run))/\(metric.name)"),
                        "unit": .string(metric.unit.rawValue),
                        "value": number(value),
                    ]))
            }
        }
        return .array(entries)
    }

    /// Bencher Metric Format: `{"<scenario>/<run>": {"<metric>": {"value": …}}}`; measures are the metric names
    /// (units: `_bytes` in bytes, `seconds` in seconds). Runs without any figure are left out.
    public static func bencherMetricFormat(_ results: ScenarioResults) -> JSONValue {
        var benchmarks = OrderedDictionary<String, JSONValue>()
        for run in results.runs {
            var measures = OrderedDictionary<String, JSONValue>()
            for metric in Metric.all {
                guard let value = metric.value(run) else { continue }
                measures[metric.name] = .object(["value": number(value)])
            }
            if !measures.isEmpty { benchmarks[benchmarkName(results, run)] = .object(measures) }
        }
        return .object(benchmarks)
    }

    /// The text written for an export: JSONWriter.pretty and a final newline (byte-stable).
    public static func text(_ value: JSONValue) -> String {
        JSONWriter.pretty.string(value) + "\n"
    }
}
