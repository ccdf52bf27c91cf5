import Foundation
import TestSupport
import Testing

@testable import Harness
@testable import Reports
@testable import ResultsFormat
@testable import StrictJSON

@Suite("Report rendering")
struct ReportTests {
    // MARK: - Markdown

    @Test func summaryRowsHaveTheFixturesVerdictsAndFigures() throws {
        let report = MarkdownReport.render(try ReportFixtures.load(ReportFixtures.smoke), resultsLink: "smoke.json")
        let rows = markdownTableRows(report.markdown)
        #expect(
            rows.contains([
                "run", "strategy → dtype", "verdict", "predicted peak (formula)", "allowed range", "ledger peak",
                "VmHWM Δ", "RSS anon peak Δ",
                "RSS file peak Δ", "jemalloc allocated peak Δ", "retained anon Δ (file Δ)", "load seconds", "× floor",
            ]))
        // Worked from the fixture: 442535936 B = 422.04 MiB, bounds 395705425 / 489366447 B, VmHWM Δ 444645376 B, …
        let expected: [[String]] = [
            [
                "naive", "naive → bfloat16", "**pass**", "422.04 MiB (M_t + M_ck)", "377.37 MiB – 466.70 MiB",
                "422.04 MiB", "424.05 MiB", "423.25 MiB", "1.11 MiB", "440.28 MiB", "-", "1.361", "29.3×",
            ],
            [
                "sharded", "sharded → bfloat16", "**pass**", "305.52 MiB (M_t + S)", "≤ 346.69 MiB", "305.52 MiB",
                "307.33 MiB", "306.60 MiB", "1.05 MiB", "318.23 MiB", "-", "1.471", "31.7×",
            ],
            [
                "low-memory", "low-memory → bfloat16", "**pass**", "211.02 MiB (M_t + staging)", "≤ 249.35 MiB",
                "211.02 MiB", "211.85 MiB", "211.64 MiB", "256.00 KiB", "220.40 MiB", "-", "0.130", "2.8×",
            ],
            [
                "load-then-cast-float16", "load-then-cast → float16", "**pass**", "484.54 MiB (M_32 + T_t)",
                "438.00 MiB – 531.07 MiB", "484.54 MiB", "486.59 MiB", "486.00 MiB", "63.25 MiB", "504.36 MiB",
                "-", "11.883", "256.2×",
            ],
            [
                "dtype-direct-float16", "dtype-direct → float16", "**pass**", "227.02 MiB (M_t + staging)",
                "≤ 265.83 MiB", "227.02 MiB", "228.84 MiB", "228.38 MiB", "832.00 KiB", "236.40 MiB", "-", "6.136",
                "132.3×",
            ],
        ]
        for row in expected { #expect(rows.contains(row), "missing summary row \(row)") }
        #expect(
            report.markdown.contains(
                "- **naive** (pass): every bound held: peak 424.05 MiB (VmHWM Δ) vs predicted 422.04 MiB ± 44.66 MiB\n")
        )
    }

    @Test func retainedMemoryIsShownWithItsFilePages() {
        let retained = RetainedMemory(at: .end, rssAnonDeltaBytes: 5 << 20, rssFileDeltaBytes: -(1 << 20))
        #expect(MarkdownReport.retainedCell(retained) == "5.00 MiB (−1.00 MiB)")
        #expect(
            MarkdownReport.retainedCell(RetainedMemory(at: .loaded, rssAnonDeltaBytes: 0, rssFileDeltaBytes: nil))
                == "0 B")
        #expect(MarkdownReport.retainedCell(nil) == "-")
    }

    @Test func attributionShowsEachStacksShareAndFrames() throws {
        let frames: [Attribution.Frame] = [
            .init(function: "c10::alloc_cpu(unsigned long)"),
            .init(function: "_materialize_copy", file: "transformers/core_model_loading.py", line: 1466),
        ]
        var m = try #require(try ReportFixtures.load(ReportFixtures.smoke).runs.first?.measurement)
        m.peaks[.vmhwm] = 400 << 20
        var outside = RunMeasurement.Outside(subject: .transformers)
        outside.attribution = Attribution(
            memrayVersion: "1.20.0", peakBytes: 300 << 20, allocations: 1000, stackCount: 40,
            stacks: [.init(bytes: 200 << 20, allocations: 3, allocators: ["malloc"], frames: frames)])
        let md = AttributionReport.markdown(m, outside)
        #expect(
            md.contains(
                "its high-water mark was 300.00 MiB in 1000 allocations from 40 call stacks (VmHWM Δ 400.00 MiB); the 1 biggest hold 66.7% of it."
            ))
        let rows = markdownTableRows(md)
        #expect(
            rows.last == [
                "1", "200.00 MiB", "66.7%", "50.0%", "malloc",
                "`c10::alloc_cpu` ← `_materialize_copy` (transformers/core_model_loading.py:1466)",
            ])
        outside.attributionFailure = "memray's capture could not be read (exited 65): ValueError: bad file"
        #expect(AttributionReport.markdown(m, outside).contains("Not attributed: memray's capture could not be read"))
    }

    @Test func oomVerdictsAreShownWithTheirCap() throws {
        let report = MarkdownReport.render(try ReportFixtures.load(ReportFixtures.oom), resultsLink: "smoke-oom.json")
        let rows = markdownTableRows(report.markdown)
        #expect(rows.contains { $0.first == "naive" && $0.count == 13 && $0[2] == "**oom**" && $0[5] == "359.54 MiB" })
        #expect(rows.contains { $0.first == "low-memory" && $0.count == 13 && $0[2] == "**pass**" })
        #expect(report.markdown.contains("### load-then-cast-float16: oom\n"))
        #expect(report.markdown.contains("Stopped at its memory cap: 297.04 MiB live of a 380.00 MiB cap"))
    }

    @Test func environmentScaleAndMethodAreStated() throws {
        let md = MarkdownReport.render(try ReportFixtures.load(ReportFixtures.smoke), resultsLink: "smoke.json")
            .markdown
        let rows = markdownTableRows(md)
        #expect(rows.contains(["kernel", "Linux 6.18.44-fc-v669 x86_64"]))
        #expect(rows.contains(["transparent huge pages", "enabled `madvise`, defrag `madvise`"]))
        #expect(
            rows.contains([
                "MALLOC_CONF (measured children)", "`dirty_decay_ms:0,muzzy_decay_ms:0,background_thread:false`",
            ]))
        #expect(
            rows.contains {
                $0.first == "machine" && $0[1].contains("AMD EPYC, 2 logical CPUs; MemTotal 23.54 GiB (25.28 GB)")
            })
        #expect(rows.contains { $0.first == "allocator" && $0[1].hasPrefix("jemalloc 5.3.0") })
        #expect(
            rows.contains { $0.first == "scale" && $0[1].hasPrefix("**1** (requested `1.0`): fixed by the scenario.") })
        for heading in [
            "## Summary", "## What was run, and where", "## Runs", "## Predictions and formulas", "## Method",
        ] {
            #expect(md.contains("\n\(heading)\n"), "\(heading)")
        }
        #expect(md.contains("VmHWM is reset by writing 5 to `/proc/self/clear_refs`"))
        #expect(md.contains("**tolerance**: ⌈predicted × 0.03⌉ + 33,554,432 bytes (32.00 MiB)"))
        #expect(md.contains("after writing `epoch`"))
        // At scale 1 the full-size table would repeat the measured one: it is left out.
        #expect(!md.contains("### At full size"))
        // Every chart is referenced by a relative path.
        #expect(md.contains("![smoke: measured peaks against predicted bounds](smoke-peaks.svg)"))
        #expect(md.contains("![naive: memory over time](smoke-naive.svg)"))
    }

    @Test func scaledRunShowsFullSizePredictionsWithFormulas() throws {
        let md = MarkdownReport.render(try ReportFixtures.load(ReportFixtures.scaled), resultsLink: "smoke.json")
            .markdown
        #expect(md.contains("### At full size (scale 1)\n"))
        #expect(md.contains("This run was scaled to 0.5 (fixed by --scale)."))
        let rows = markdownTableRows(md)
        #expect(
            rows.contains([
                "run", "strategy", "formula", "M_t", "M_ck", "M_32", "S", "T_t", "staging", "predicted peak",
                "upper bound (+ tolerance)",
            ]))
        // 442535936 + ⌈442535936 × 0.03⌉ + 33554432 = 489366447 B = 466.70 MiB.
        #expect(
            rows.contains([
                "naive", "naive", "M_t + M_ck", "211.02 MiB", "211.02 MiB", "422.04 MiB", "94.50 MiB", "62.50 MiB",
                "0 B", "422.04 MiB (442.54 MB)", "466.70 MiB",
            ]))
        #expect(
            rows.contains([
                "load-then-cast-float16", "load-then-cast", "M_32 + T_t", "211.02 MiB", "211.02 MiB", "422.04 MiB",
                "94.50 MiB", "62.50 MiB", "16.00 MiB",
                "484.54 MiB (508.07 MB)", "531.07 MiB",
            ]))
        #expect(md.contains("**M_t** the model's bytes at the target dtype"))
    }

    @Test(arguments: ReportFixtures.all)
    func renderingIsDeterministic(fixture: String) throws {
        let results = try ReportFixtures.load(fixture)
        let first = MarkdownReport.render(results, resultsLink: "x.json")
        let second = MarkdownReport.render(try ReportFixtures.load(fixture), resultsLink: "x.json")
        #expect(first == second)
        // A sweep draws its largest size's timelines, and a chart per loader and fitted figure.
        let largest = results.sweep?.points.last?.scale
        let timelines = results.runs.filter { $0.measurement != nil && $0.scale == largest }.count
        let sweepCharts = Set((results.fits ?? []).map { "\($0.loader.name) \($0.figure)" }).count
        #expect(first.charts.count == 1 + timelines + sweepCharts)
        #expect(Set(first.charts.map(\.name)).count == first.charts.count)
    }

    @Test func reportCommandWritesIdenticalFilesTwice() throws {
        let folder = try TemporaryFolder("report-twice")
        defer { folder.remove() }
        var outputs: [[String: [UInt8]]] = []
        for round in ["a", "b"] {
            let out = folder.file(round)
            let result = try Executable.run(["report", ReportFixtures.path(ReportFixtures.smoke), "--out", out])
            #expect(result.status == 0, "\(result.stderr)")
            var files: [String: [UInt8]] = [:]
            for name in try FileManager.default.contentsOfDirectory(atPath: out) {
                files[name] = try [UInt8](Data(contentsOf: URL(fileURLWithPath: out + "/" + name)))
            }
            outputs.append(files)
        }
        #expect(
            outputs[0].keys.sorted() == [
                "smoke-dtype-direct-float16.svg", "smoke-load-then-cast-float16.svg", "smoke-low-memory.svg",
                "smoke-naive.svg", "smoke-peaks.svg",
                "smoke-sharded.svg", "smoke.md",
            ])
        #expect(outputs[0] == outputs[1])
    }

    @Test func reportDefaultsToTheResultsFolderAndMarkdownPath() throws {
        let folder = try TemporaryFolder("report-default")
        defer { folder.remove() }
        let json = try folder.write(
            "smoke.json", try [UInt8](Data(contentsOf: URL(fileURLWithPath: ReportFixtures.path(ReportFixtures.smoke))))
        )
        let result = try Executable.run(["report", json])
        #expect(result.status == 0)
        #expect(FileManager.default.fileExists(atPath: folder.file("smoke.md")))
        #expect(FileManager.default.fileExists(atPath: folder.file("smoke-naive.svg")))
        #expect(try fileText(folder.file("smoke.md")).contains("results [`smoke.json`](smoke.json)"))

        let named = try Executable.run(["report", json, "--out", folder.file("sub/custom.md")])
        #expect(named.status == 0)
        #expect(FileManager.default.fileExists(atPath: folder.file("sub/custom.md")))
        #expect(FileManager.default.fileExists(atPath: folder.file("sub/smoke-peaks.svg")))

        let stdout = try Executable.run(["report", json, "--out", "-"])
        #expect(stdout.status == 0)
        #expect(stdout.stdout.hasPrefix("# Memory report: smoke\n"))
    }

    // MARK: - Exports

    @Test func githubBenchmarkValuesAreExact() throws {
        let value = BenchmarkExports.githubBenchmark(try ReportFixtures.load(ReportFixtures.smoke))
        let entries = try #require(value.arrayValue)
        #expect(entries.count == 5 * 6)
        func entry(_ name: String) -> JSONValue? { entries.first { $0["name"]?.stringValue == name } }
        #expect(
            entry("smoke/naive/vmhwm_delta_bytes")
                == .object([
                    "name": .string("smoke/naive/vmhwm_delta_bytes"), "unit": .string("bytes"),
                    "value": JSONValue(444_645_376), "extra": .string("verdict: pass"),
                ]))
        #expect(entry("smoke/naive/ledger_peak_bytes")?["value"] == JSONValue(442_535_936))
        #expect(entry("smoke/naive/rss_anon_peak_delta_bytes")?["value"] == JSONValue(443_813_888))
        #expect(entry("smoke/naive/rss_file_peak_delta_bytes")?["value"] == JSONValue(1_163_264))
        #expect(entry("smoke/naive/jemalloc_allocated_peak_delta_bytes")?["value"] == JSONValue(461_670_408))
        #expect(
            entry("smoke/naive/seconds")
                == .object([
                    "name": .string("smoke/naive/seconds"), "unit": .string("seconds"), "value": JSONValue(1.361001943),
                    "extra": .string("verdict: pass"),
                ]))
        #expect(entry("smoke/load-then-cast-float16/vmhwm_delta_bytes")?["value"] == JSONValue(510_222_336))
        #expect(entry("smoke/dtype-direct-float16/ledger_peak_bytes")?["value"] == JSONValue(238_045_184))
        // The first entries, in order, as github-action-benchmark will see them.
        let text = BenchmarkExports.text(value)
        #expect(
            text.hasPrefix(
                "[\n  {\n    \"name\": \"smoke/naive/ledger_peak_bytes\",\n    \"unit\": \"bytes\",\n    \"value\": 442535936,\n    \"extra\": \"verdict: pass\"\n  },\n"
            ))
    }

    /// oom runs (naive and load-then-cast under a 560 MiB cap) are exported as values that fail their series:
    /// twice the upper bound for bytes (naive's 489,366,447 → 978,732,894), twice the longest time for seconds
    /// (the scenario has no run time limit; naive took 1.109837791 s), with the verdict in `extra`.
    @Test func exportsKeepRunsThatDidNotFinish() throws {
        let results = try ReportFixtures.load(ReportFixtures.oom)
        let entries = try #require(BenchmarkExports.githubBenchmark(results).arrayValue)
        let names = entries.compactMap { $0["name"]?.stringValue }
        #expect(
            names
                == ["naive", "low-memory", "load-then-cast-float16"].flatMap { run in
                    Metric.names.map { "smoke/\(run)/\($0)" }
                })
        let naive = try #require(entries.first { $0["name"]?.stringValue == "smoke/naive/vmhwm_delta_bytes" })
        #expect(naive["value"] == JSONValue(978_732_894))
        #expect(
            naive["extra"]?.stringValue
                == "verdict: oom; a run without figures is exported as a value that fails the series")
        #expect(
            entries.first { $0["name"]?.stringValue == "smoke/naive/seconds" }?["value"] == JSONValue(2 * 1.109837791))
        let bmf = BenchmarkExports.bencherMetricFormat(results)
        #expect(bmf.objectValue?.keys.elements == ["smoke/naive", "smoke/low-memory", "smoke/load-then-cast-float16"])
        #expect(
            bmf["smoke/naive"]?["vmhwm-delta-bytes"]
                == .object([
                    "value": JSONValue(978_732_894), "lower_value": JSONValue(978_732_894),
                    "upper_value": JSONValue(978_732_894),
                ]))
    }

    /// Repeats are one series: the median with the spread, not `#1`, `#2`.
    @Test func repeatsAreOneSeriesWithARange() throws {
        var results = try ReportFixtures.load(ReportFixtures.smoke)
        results.runs = Array(results.runs.prefix(1))
        var second = results.runs[0]
        second.repeatIndex = 1
        second.measurement?.peaks[.vmhwm] = 444_645_376 + 2_000_000
        var third = results.runs[0]
        third.repeatIndex = 2
        third.measurement?.peaks[.vmhwm] = 444_645_376 - 1_000_000
        results.runs += [second, third]
        results.scenario.repeatCount = 3
        let vmhwm = try #require(Metric.named("vmhwm_delta_bytes"))
        let entries = try #require(BenchmarkExports.githubBenchmark(results, metrics: [vmhwm]).arrayValue)
        #expect(
            entries == [
                .object([
                    "name": .string("smoke/naive/vmhwm_delta_bytes"), "unit": .string("bytes"),
                    "value": JSONValue(444_645_376), "range": .string("± 1500000"),
                    "extra": .string("3 repeats, median; verdicts: pass, pass, pass"),
                ])
            ])
        let bmf = BenchmarkExports.bencherMetricFormat(results, metrics: [vmhwm])
        #expect(
            bmf["smoke/naive"]?["vmhwm-delta-bytes"]
                == .object([
                    "value": JSONValue(444_645_376), "lower_value": JSONValue(443_645_376),
                    "upper_value": JSONValue(446_645_376),
                ]))
        let filtered = try Executable.run([
            "report", ReportFixtures.path(ReportFixtures.smoke), "--format", "bmf", "--metrics", "seconds",
        ])
        #expect(
            try parseJSON(filtered.stdout)["smoke/naive"]
                == .object(["seconds": .object(["value": JSONValue(1.361001943)])]))
        #expect(
            try Executable.run([
                "report", ReportFixtures.path(ReportFixtures.smoke), "--format", "bmf", "--metrics", "rss",
            ]).status == 64)
    }

    @Test func bencherMetricFormatValuesAreExact() throws {
        let bmf = BenchmarkExports.bencherMetricFormat(try ReportFixtures.load(ReportFixtures.smoke))
        let object = try #require(bmf.objectValue)
        #expect(
            object.keys.elements == [
                "smoke/naive", "smoke/sharded", "smoke/low-memory", "smoke/load-then-cast-float16",
                "smoke/dtype-direct-float16",
            ])
        #expect(
            bmf["smoke/sharded"]
                == .object([
                    "ledger-peak-bytes": .object(["value": JSONValue(320_362_496)]),
                    "vmhwm-delta-bytes": .object(["value": JSONValue(322_256_896)]),
                    "rss-anon-peak-delta-bytes": .object(["value": JSONValue(321_490_944)]),
                    "rss-file-peak-delta-bytes": .object(["value": JSONValue(1_097_728)]),
                    "jemalloc-allocated-peak-delta-bytes": .object(["value": JSONValue(333_691_736)]),
                    "seconds": .object(["value": JSONValue(1.471345348)]),
                ]))
    }

    @Test func formatsThroughTheExecutable() throws {
        let path = ReportFixtures.path(ReportFixtures.smoke)
        let github = try Executable.run(["report", path, "--format", "github-benchmark"])
        #expect(github.status == 0)
        #expect(
            github.stdout
                == BenchmarkExports.text(
                    BenchmarkExports.githubBenchmark(try ReportFixtures.load(ReportFixtures.smoke))))
        let bmf = try Executable.run(["report", path, "--format", "bmf", "--out", "-"])
        #expect(bmf.status == 0)
        #expect(try parseJSON(bmf.stdout)["smoke/naive"]?["vmhwm-delta-bytes"]?["value"] == JSONValue(444_645_376))
        // json re-emits the file as run wrote it: byte for byte for a file this version wrote.
        let json = try Executable.run(["report", path, "--format", "json"])
        #expect(json.status == 0)
        #expect(Array(json.stdout.utf8) == [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))))
    }

    @Test func reportErrorsHaveTheirExitStatuses() throws {
        let folder = try TemporaryFolder("report-errors")
        defer { folder.remove() }
        let missing = try Executable.run(["report", folder.file("nope.json")])
        #expect(missing.status == 66)
        #expect(missing.stderrLines.count == 1)
        let garbage = try Executable.run([
            "report", try folder.write("bad.json", text: "{\"schema_version\": 1, \"runs\": 3}"),
        ])
        #expect(garbage.status == 65)
        #expect(garbage.stderr.contains("not a valid results file"))
        let newer = try Executable.run(["report", try folder.write("newer.json", text: "{\"schema_version\": 99}")])
        #expect(newer.status == 65)
        #expect(newer.stderr.contains("schema version 99"))
        let usage = try Executable.run(["report", ReportFixtures.path(ReportFixtures.smoke), "--format", "pdf"])
        #expect(usage.status == 64)
    }
}
