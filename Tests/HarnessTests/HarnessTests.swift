import Foundation
import TestSupport
import Testing

@testable import Checkpoint
@testable import Harness
@testable import Loading
@testable import Models
@testable import OSLayer
@testable import Probes
@testable import ResultsFormat
@testable import StrictJSON
@testable import TensorEngine

@Suite struct ScenarioValidationTests {
    /// Each broken scenario names the file, the JSON path and the rule.
    @Test(arguments: [
        (#"{"name": "x", "runs": []}"#, "$.checkpoint", "is required"),
        (tinyScenario(extra: #", "colour": "red""#), "$.colour", "unknown key"),
        (tinyScenario(runs: #"[{"strategy": "fast"}]"#), "$.runs[0].strategy", "unknown strategy 'fast'"),
        (tinyScenario(runs: #"[{"strategy": "naive", "dtype": "int8"}]"#), "$.runs[0].dtype", "not a floating dtype"),
        (tinyScenario(runs: #"[{"strategy": "naive", "dtype": 16}]"#), "$.runs[0].dtype", "must be a dtype name"),
        (
            tinyScenario(runs: #"[{"strategy": "naive"}, {"strategy": "naive"}]"#), "$.runs[1]",
            "run id 'naive' is used twice"
        ),
        (tinyScenario(runs: #"[{"strategy": "naive", "speed": 1}]"#), "$.runs[0].speed", "unknown key"),
        (tinyScenario(runs: "{}"), "$.runs", "non-empty array"),
        (
            tinyScenario(extra: #", "scale": 1.5"#).replacingOccurrences(of: #""scale": 1,"#, with: ""), "$.scale",
            "(0, 1]"
        ),
        (tinyScenario(extra: #", "repeat": 0"#), "$.repeat", "must be in 1…100"),
        (
            tinyScenario(extra: #", "scales": [0.5, 0.75, 1]"#), "$.scales",
            "needs at least 4 scales: the largest is held out and predicted from a line through the other three"
        ),
        (
            tinyScenario(extra: #", "scales": [0.5, 1], "holdout": false"#), "$.scales",
            "needs at least 3 scales: two points are on every line"
        ),
        (tinyScenario(extra: #", "scales": [0, 0.5, 0.75, 1]"#), "$.scales", "a fraction in (0, 1]"),
        (tinyScenario(extra: #", "scales": [0.5, 0.5, 0.75, 1]"#), "$.scales", "a scale is given twice"),
        (tinyScenario(extra: #", "scales": [0.5, "1", 0.75, 1]"#), "$.scales[1]", "must be a number"),
        (tinyScenario(extra: #", "holdout": false"#), "$.holdout", "applies to a sweep"),
        (tinyScenario(extra: #", "cache": "lukewarm""#), "$.cache", "\"warm\" or \"cold\""),
        (tinyScenario(extra: #", "tolerance": {"relative": 3}"#), "$.tolerance.relative", "[0, 1)"),
        (tinyScenario(extra: #", "tolerance": {"absolute": "lots"}"#), "$.tolerance.absolute", "must be a size"),
        (tinyScenario(extra: #", "sample_interval_ms": 60"#), "$.sample_interval_ms", "[0.1, 50]"),
        (tinyScenario(extra: #", "run_timeout_s": 0"#), "$.run_timeout_s", "must be a number of seconds in [1, 86400]"),
        (
            tinyScenario(extra: #", "stall_timeout_s": "soon""#), "$.stall_timeout_s",
            "must be a number of seconds in [1, 86400]"
        ),
        (
            tinyScenario().replacingOccurrences(of: #""vocab_size": 8000, "#, with: ""), "$.model.config.vocab_size",
            "missing"
        ),
        (
            tinyScenario().replacingOccurrences(of: #""model_type": "llama""#, with: #""model_type": "bert""#),
            "$.model.config.model_type", "'bert'"
        ),
        (
            tinyScenario().replacingOccurrences(of: #""max_shard_size": "4MB""#, with: #""max_shard_size": "4 MB""#),
            "$.checkpoint.max_shard_size", "must be a size"
        ),
        (
            tinyScenario().replacingOccurrences(of: #""name": "tiny""#, with: #""name": "a/b""#), "$.name",
            "must be 1–100 ASCII letters"
        ),
        ("[]", "$", "must be an object"),
        ("{", "$", "not valid JSON"),
    ])
    func invalidScenario(text: String, path: String, message: String) throws {
        #expect {
            _ = try Scenario.parse(Array(text.utf8), file: "bad.json")
        } throws: { error in
            guard let error = error as? ScenarioError else { return false }
            return error.file == "bad.json" && error.path == path && error.detail.contains(message)
        }
    }

    @Test func validScenarioDefaults() throws {
        let scenario = try Scenario.parse(
            Array(
                tinyScenario(
                    runs: #"[{"strategy": "dtype-direct", "dtype": "float16"}, {"strategy": "naive", "id": "n"}]"#
                ).utf8), file: "s.json")
        #expect(scenario.runs.map(\.id) == ["dtype-direct-float16", "n"])
        #expect(scenario.repeatCount == 1)
        #expect(scenario.cache == .warm)
        #expect(scenario.tolerance == Scenario.Tolerance(relative: 0.03, absoluteBytes: 33_554_432))
        #expect(scenario.tolerance.bytes(for: 1_000_000_000) == 30_000_000 + 33_554_432)
        #expect(scenario.scale == .fixed(1))
        #expect(scenario.limits == ChildRunner.Limits(wallSeconds: 600, stallSeconds: 60))
        guard case .generated(let dtype, let shard, let seed) = scenario.checkpoint else {
            Issue.record("expected a generated checkpoint")
            return
        }
        #expect(dtype == .bf16)
        #expect(shard == 4_000_000)
        #expect(seed == 0)
    }

    /// Every shipped scenario is valid and compares the five strategies.
    @Test(arguments: ["gemma7b", "llama3-8b", "biomistral7b", "smoke"])
    func shippedScenariosAreValid(name: String) throws {
        let scenario = try Scenario.load(path: FixturePaths.root + "/../../Scenarios/\(name).json")
        #expect(scenario.name == name)
        #expect(
            Set(scenario.runs.map(\.strategy)).isSuperset(of: [
                .naive, .sharded, .lowMemory, .loadThenCast, .dtypeDirect,
            ]))
        #expect(scenario.runs.contains { $0.strategy == .dtypeDirect && $0.dtype == .f16 })
    }

    @Test func gemma7bIsTheRealConfig() throws {
        let scenario = try Scenario.load(path: FixturePaths.root + "/../../Scenarios/gemma7b.json")
        let architecture = try #require(try ModelArchitecture.fromConfig(scenario.config))
        #expect(architecture.parameterCount == 8_537_680_896)
        #expect(architecture.tiedAliases == ["lm_head.weight": "model.embed_tokens.weight"])
        let full = try #require(try ScalePlanner(scenario: scenario).synthetic(scale: 1))
        #expect(full.plan.totalSize == 17_075_361_792)
        #expect(full.plan.shards.count == 4)
    }

    @Test func caseInsensitivePaths() throws {
        let folder = try TemporaryFolder("paths")
        defer { folder.remove() }
        try FileManager.default.createDirectory(
            atPath: folder.file("Scenarios/Deep"), withIntermediateDirectories: true)
        _ = try folder.write("Scenarios/Deep/Gemma7B.json", text: "{}")
        #expect(
            PathResolver.resolve(folder.file("scenarios/deep/gemma7b.json"))
                == folder.file("Scenarios/Deep/Gemma7B.json"))
        #expect(
            PathResolver.resolve(folder.file("SCENARIOS/Deep/GEMMA7B.JSON"))
                == folder.file("Scenarios/Deep/Gemma7B.json"))
        // Exact paths are returned untouched; a missing one is returned as typed (so its error names it).
        #expect(
            PathResolver.resolve(folder.file("Scenarios/Deep/Gemma7B.json"))
                == folder.file("Scenarios/Deep/Gemma7B.json"))
        #expect(
            PathResolver.resolve(folder.file("scenarios/deep/llama.json")) == folder.file("scenarios/deep/llama.json"))
        // Ambiguous: two entries equal ignoring case → no guess.
        _ = try folder.write("Scenarios/Deep/gemma7b.JSON", text: "{}")
        #expect(
            PathResolver.resolve(folder.file("scenarios/deep/GEMMA7B.json"))
                == folder.file("scenarios/deep/GEMMA7B.json"))
        // Relative, from the repository root, as the README's command is typed.
        let root = URL(fileURLWithPath: FixturePaths.root).deletingLastPathComponent().deletingLastPathComponent().path
        let previous = FileManager.default.currentDirectoryPath
        #expect(FileManager.default.changeCurrentDirectoryPath(root))
        defer { _ = FileManager.default.changeCurrentDirectoryPath(previous) }
        #expect(PathResolver.resolve("scenarios/gemma7b.json") == "Scenarios/gemma7b.json")
    }
}

extension MemoryMeasuringTests {
    /// The bounds must catch a strategy that lies, in both directions.
    @Suite(.serialized) struct ClaimTests {
        /// `sharded` that also keeps, outside the ledger, a copy of everything it read: the ledger still matches
        /// the formula, so only the kernel's figures can catch it.
        struct HiddenCopyLoad: LoadStrategy {
            var name: StrategyName { .sharded }
            var formula: String { ShardedLoad().formula }
            func predictedPeakBytes(_ figures: MemoryFigures) -> Int { ShardedLoad().predictedPeakBytes(figures) }
            func load(_ plan: LoadPlan, ledger: MemoryLedger, phases: PhaseLog) throws -> LoadedModel {
                let model = try ShardedLoad().load(plan, ledger: ledger, phases: phases)
                // Two unledgered copies of the model, every page written.
                let bytes = plan.figures.modelBytes * 2
                let hidden = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes, alignment: 4096)
                hidden.initializeMemory(as: UInt8.self, repeating: 1)
                Thread.sleep(forTimeInterval: 0.05)
                hidden.deallocate()
                return model
            }
        }

        /// `low-memory` that keeps a ledgered staging copy it does not declare.
        struct UndeclaredCopyLoad: LoadStrategy {
            var name: StrategyName { .lowMemory }
            var formula: String { "M_t + staging" }
            func predictedPeakBytes(_ figures: MemoryFigures) -> Int { figures.modelBytes + figures.stagingBytes }
            func load(_ plan: LoadPlan, ledger: MemoryLedger, phases: PhaseLog) throws -> LoadedModel {
                let extra = try TensorStorage.allocate(byteCount: plan.figures.largestShardBytes, ledger: ledger)
                extra.mutableBytes.initializeMemory(as: UInt8.self, repeating: 0)
                return try withExtendedLifetime(extra) {
                    try SkeletonLoad(name: .lowMemory).load(plan, ledger: ledger, phases: phases)
                }
            }
        }

        static func tinyCheckpoint(_ folder: TemporaryFolder, scale: Double = 1) throws -> String {
            let config = try ModelConfig.parse(Array(tinyModelConfig.utf8), path: "tiny")
            // Larger than the tiny scenario (×10 vocabulary and width): 100+ MB, so a hidden copy is far above the noise
            // other tests running in this process can add.
            var fields = config.fields
            fields["vocab_size"] = JSONValue(40000)
            fields["hidden_size"] = JSONValue(1024)
            fields["intermediate_size"] = JSONValue(1024)
            fields["num_attention_heads"] = JSONValue(8)
            let big = ModelConfig(path: "tiny-x", fields: fields)
            try SyntheticCheckpoint(config: big, dtype: .bf16, maxShardSize: 40_000_000, seed: 3, scale: scale).write(
                to: folder.file("ckpt"))
            return folder.file("ckpt")
        }

        @Test func hiddenCopyFailsTheUpperBound() throws {
            let folder = try TemporaryFolder("claims")
            defer { folder.remove() }
            let measurement = try MeasuredLoad(
                checkpointPath: try Self.tinyCheckpoint(folder), strategy: HiddenCopyLoad(), dtype: nil
            ).run()
            let outcome = ClaimChecker(tolerance: .default).evaluate(measurement)
            #expect(outcome.verdict == .fail)
            #expect(measurement.engine?.ledgerPeakBytes == measurement.predictedPeakBytes)
            let failed = Set(outcome.checks.filter { !$0.passed }.map(\.name))
            #expect(failed.contains("RSS anon peak delta within upper bound"))
            #expect(failed.contains("VmHWM delta within upper bound"))
            #expect(failed.contains("RSS anon agrees with ledger"))
            #expect(!failed.contains("ledger peak equals prediction"))
            #expect(outcome.detail.contains("exceeds"))
        }

        @Test func undeclaredLedgerCopyFailsTheExactCheck() throws {
            let folder = try TemporaryFolder("claims2")
            defer { folder.remove() }
            let measurement = try MeasuredLoad(
                checkpointPath: try Self.tinyCheckpoint(folder), strategy: UndeclaredCopyLoad(), dtype: nil
            ).run()
            let outcome = ClaimChecker(tolerance: .default).evaluate(measurement)
            #expect(outcome.verdict == .fail)
            let exact = try #require(outcome.checks.first { $0.kind == .ledgerEqualsPrediction })
            #expect(!exact.passed)
            #expect(exact.measuredBytes - exact.boundBytes == measurement.figures.largestShardBytes)
        }

        /// A probe that misses memory: the naive path claims two copies; RSS showing one must fail.
        @Test func missedMemoryFailsTheLowerBound() throws {
            let predicted = 2_000_000_000
            var m = Self.measurement(predicted: predicted, ledger: predicted)
            m.peaks[.rssAnon] = predicted / 2
            m.peaks[.vmhwm] = predicted / 2
            let outcome = ClaimChecker(tolerance: .default).evaluate(m)
            #expect(outcome.verdict == .fail)
            #expect(outcome.lowerBoundBytes == predicted - 60_000_000 - 33_554_432)
            #expect(outcome.checks.contains { $0.kind == .reachesLowerBound(.rssAnon) && !$0.passed })
            // The same figures for low-memory (no lower bound) fail only the agreement check.
            m.strategy = .lowMemory
            let lowMemory = ClaimChecker(tolerance: .default).evaluate(m)
            #expect(lowMemory.checks.filter { !$0.passed }.map(\.name) == ["RSS anon agrees with ledger"])
        }

        /// Memory kept after the load beyond the model's own bytes fails the retained claim, whatever the peak.
        @Test func keptMemoryFailsTheRetainedClaim() throws {
            var m = Self.measurement(predicted: 1 << 30, ledger: 1 << 30)
            #expect(ClaimChecker(tolerance: .default).evaluate(m).verdict == .pass)
            m.retained = RetainedMemory(at: .end, rssAnonDeltaBytes: 100 << 20, rssFileDeltaBytes: -4096)
            // the model here owns 0 bytes: 32 MiB of tolerance is all it may keep
            let outcome = ClaimChecker(tolerance: .default).evaluate(m)
            #expect(outcome.verdict == .fail)
            let retained = try #require(outcome.checks.first { $0.kind == .retainedWithinModel })
            #expect(!retained.passed && retained.measuredBytes == 100 << 20 && retained.boundBytes == 32 << 20)
            #expect(outcome.detail.hasPrefix("retained RSS anon delta within the model's own bytes failed"))
            #expect(retained.detail.hasSuffix("vs the model's own 0 B (RssFile Δ −4.00 KiB)"))
            m.retained = nil  // a loader command that never said its load was done: no figure, no check
            #expect(ClaimChecker(tolerance: .default).evaluate(m).checks.allSatisfy { $0.kind != .retainedWithinModel })
        }

        @Test func exactAgreementPasses() throws {
            let m = Self.measurement(predicted: 1 << 30, ledger: 1 << 30)
            let outcome = ClaimChecker(tolerance: .default).evaluate(m)
            #expect(outcome.verdict == .pass)
            #expect(outcome.upperBoundBytes == (1 << 30) + 32_212_255 + 33_554_432)
            #expect(outcome.checks.count == 8)
            #expect(outcome.checks.last?.kind == .retainedWithinModel)
        }

        static func measurement(predicted: Int, ledger: Int) -> RunMeasurement {
            let snapshot = MemoryReading([.rss: 0, .rssAnon: 0, .rssFile: 0, .jemallocAllocated: 0, .ledgerLive: 0])
            let figures = MemoryFigures(parameters: [], checkpointBytes: 0, largestShardBytes: 0)
            let peaks = PeakDeltas(
                MemoryReading([
                    .vmhwm: ledger + 4096, .rss: ledger, .rssAnon: ledger, .rssFile: 0, .jemallocAllocated: ledger,
                    .jemallocActive: ledger,
                    .jemallocResident: ledger, .ledgerLive: ledger, .ledgerSizeClass: ledger,
                ]))
            return RunMeasurement(
                strategy: .naive, dtype: .bf16, dtypeSource: .config, figures: figures, formula: "M_t + M_ck",
                predictedPeakBytes: predicted,
                seconds: 1, baseline: snapshot, end: snapshot, peaks: peaks,
                phases: [],
                sampler: SamplerStats(
                    requestedIntervalSeconds: 0.001, achievedMeanIntervalSeconds: 0.001, samples: 1000,
                    droppedSamples: 0, meanSampleSeconds: 0.0001,
                    maxSampleSeconds: 0.0002, cpuSeconds: 0.1, cpuShareOfLoad: 0.1),
                timeline: ProcessTimeline(columns: ProcessTimeline.engineColumns, points: []), missingKeys: [],
                unexpectedKeys: [],
                outOfMemory: nil, failure: nil, loader: .engine(.init(ledgerPeakBytes: ledger)),
                retained: RetainedMemory(at: .end, reading: snapshot, baseline: snapshot))
        }
    }
}

/// `run` end to end through the executable: isolated children, verdicts, caps, interrupts.
@Suite(.serialized) struct RunCommandTests {
    static func write(_ folder: TemporaryFolder, _ text: String, name: String = "tiny.json") throws -> String {
        try folder.write(name, text: text)
    }

    @Test func tinyScenarioPassesAndWritesResults() throws {
        let folder = try TemporaryFolder("run")
        defer { folder.remove() }
        let scenario = try Self.write(
            folder,
            tinyScenario(
                runs:
                    #"[{"strategy": "naive"}, {"strategy": "sharded"}, {"strategy": "low-memory"}, {"strategy": "load-then-cast", "dtype": "float16"}, {"strategy": "dtype-direct", "dtype": "float16"}]"#
            ))
        let result = try Executable.run([
            "run", scenario, "--out", folder.file("out"), "--work-dir", folder.file("work"),
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let data = try #require(FileManager.default.contents(atPath: folder.file("out/tiny.json")))
        let results = try ResultsCodec.decoder.decode(ScenarioResults.self, from: data)
        #expect(results.complete)
        #expect(results.runs.map(\.verdict) == [.pass, .pass, .pass, .pass, .pass])
        #expect(
            results.runs.map(\.id) == [
                "naive", "sharded", "low-memory", "load-then-cast-float16", "dtype-direct-float16",
            ])
        for run in results.runs {
            let m = try #require(run.measurement)
            #expect(m.engine?.ledgerPeakBytes == m.predictedPeakBytes)
            #expect(m.timeline.points.count <= 2000)
            #expect(m.sampler.samples > 0)
        }
        #expect(
            results.environment.childEnvironment["MALLOC_CONF"]
                == "dirty_decay_ms:0,muzzy_decay_ms:0,background_thread:false")
        #expect(results.checkpoint.generated)
        #expect(!results.checkpoint.reused)
        #expect(result.stdout.contains("naive"))
        // A second run reuses the cached checkpoint.
        let again = try Executable.run(
            [
                "run", scenario, "--out", folder.file("out2"), "--work-dir", folder.file("work"), "--only",
                "low-memory", "--save-baseline", folder.file("base.json"),
            ])
        #expect(again.status == 0)
        let second = try ResultsCodec.decoder.decode(
            ScenarioResults.self,
            from: try #require(FileManager.default.contents(atPath: folder.file("out2/tiny.json"))))
        #expect(second.checkpoint.reused)
        #expect(second.runs.map(\.id) == ["low-memory"])
        // --save-baseline wrote the same results, which a later run gates against.
        #expect(
            FileManager.default.contents(atPath: folder.file("base.json"))
                == FileManager.default.contents(atPath: folder.file("out2/tiny.json")))
        #expect(again.stderr.contains("baseline: \(folder.file("base.json"))"))
        // --only that names no run measures nothing: a usage error listing the run ids.
        let miss = try Executable.run([
            "run", scenario, "--out", folder.file("out3"), "--work-dir", folder.file("work"), "--only", "naiv",
        ])
        #expect(miss.status == 64)
        #expect(
            miss.stderr.contains(
                "--only naiv matches no run of tiny; its runs: naive, sharded, low-memory, load-then-cast-float16, dtype-direct-float16 (or a strategy: dtype-direct, load-then-cast, low-memory, naive, sharded)"
            ),
            "\(miss.stderr)")
        #expect(!FileManager.default.fileExists(atPath: folder.file("out3/tiny.json")))
        // A 100-column terminal gets the narrow summary; FORCE_COLOR colours the verdicts (NO_COLOR emptied: the
        // test runner may set it), and a non-empty NO_COLOR wins over it.
        let narrow = try Executable.run(
            ["run", scenario, "--out", folder.file("out4"), "--work-dir", folder.file("work"), "--only", "low-memory"],
            environment: ["COLUMNS": "100", "FORCE_COLOR": "1", "NO_COLOR": ""])
        #expect(narrow.status == 0)
        let header = try #require(narrow.stdout.split(separator: "\n").first { $0.hasPrefix("run") })
        #expect(
            header.split(separator: " ", omittingEmptySubsequences: true) == [
                "run", "predicted", "VmHWM", "Δ", "retained", "verdict", "seconds", "×", "floor",
            ])
        #expect(narrow.stdout.contains("\u{1B}[32mpass"), "\(narrow.stdout)")
        let plain = try Executable.run(
            ["run", scenario, "--out", folder.file("out5"), "--work-dir", folder.file("work"), "--only", "low-memory"],
            environment: ["FORCE_COLOR": "1", "NO_COLOR": "1"])
        #expect(!plain.stdout.contains("\u{1B}["))
        #expect(plain.stdout.contains("RSS peak Δ anon / file"))
    }

    /// A device-map run whose budgets (percentages of the model) force accelerator, cpu and disk.
    @Test func deviceMapRunUsesAllThreeTiers() throws {
        let folder = try TemporaryFolder("devmap")
        defer { folder.remove() }
        let text = tinyScenario(
            runs: #"[{"strategy": "device-map", "device_map": "auto", "max_memory": {"0": "40%", "cpu": "40%"}}]"#
        )
        .replacingOccurrences(of: #""vocab_size": 8000"#, with: #""vocab_size": 2000"#)
        .replacingOccurrences(of: #""num_hidden_layers": 2"#, with: #""num_hidden_layers": 4"#)
        let scenario = try Self.write(folder, text)
        let result = try Executable.run([
            "run", scenario, "--out", folder.file("out"), "--work-dir", folder.file("work"),
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let results = try ResultsCodec.decoder.decode(
            ScenarioResults.self, from: try #require(FileManager.default.contents(atPath: folder.file("out/tiny.json")))
        )
        let run = try #require(results.runs.first)
        #expect(run.verdict == .pass, "\(run.verdictDetail)")
        let usage = try #require(run.measurement?.engine?.devices)
        let placed = Dictionary(uniqueKeysWithValues: usage.devices.map { ($0.device, $0.placedBytes) })
        #expect((placed[.accelerator(0)] ?? 0) > 0 && (placed[.cpu] ?? 0) > 0 && (placed[.disk] ?? 0) > 0)
        #expect(placed.values.reduce(0, +) == usage.modelBytes)
        // 40% of the model's parameter bytes at bfloat16, as the scenario asked.
        let modelBytes = try #require(run.figures?.modelBytes)
        #expect(usage.figures(.accelerator(0))?.budgetBytes == modelBytes * 40 / 100)
        #expect(run.checks.contains { $0.kind == .diskHoldsTheRest && $0.passed })
        #expect(run.checks.contains { $0.kind == .acceleratorWithinBudget(.accelerator(0)) && $0.passed })
        // bfloat16 checkpoint, bfloat16 target: disk weights are referenced in place, nothing written.
        #expect(usage.offloadWrittenFiles == 0)
        #expect(usage.offloadReferencedBytes == placed[.disk])
        let markdown = try String(contentsOfFile: folder.file("out/tiny.md"), encoding: .utf8)
        #expect(markdown.contains("`hf_device_map`"))
    }

    @Test func placementKeysAreValidated() throws {
        let cases: [(String, String, String)] = [
            (
                #"[{"strategy": "naive", "max_memory": {"0": "1GB"}}]"#, "$.runs[0].max_memory",
                "applies only to the device-map strategy"
            ),
            (
                #"[{"strategy": "device-map", "max_memory": {"gpu": "1GB"}}]"#, "$.runs[0].max_memory.gpu",
                "UnknownBudgetKey: 'gpu'"
            ),
            (
                #"[{"strategy": "device-map", "max_memory": {"0": "lots"}}]"#, "$.runs[0].max_memory.0",
                "InvalidBudget: \"lots\" is not a size"
            ),
            (#"[{"strategy": "device-map", "max_memory": {"0": "x%"}}]"#, "$.runs[0].max_memory.0", "percentage"),
            (
                #"[{"strategy": "device-map", "device_map": "fastest"}]"#, "$.runs[0].device_map",
                "InvalidMode: 'fastest'"
            ),
            (#"[{"strategy": "device-map", "no_split": "LlamaDecoderLayer"}]"#, "$.runs[0].no_split", "array"),
        ]
        for (runs, path, message) in cases {
            do {
                _ = try Scenario.parse(Array(tinyScenario(runs: runs).utf8), file: "s.json")
                Issue.record("accepted \(runs)")
            } catch let error as any ReportableError {
                #expect(error.category == .badData, "\(runs)")
                #expect(error.description.contains("s.json"), "\(error)")
                #expect(error.description.contains(path), "\(error)")
                #expect(error.description.contains(message), "\(error)")
            }
        }
    }

    /// A cap below a run's prediction ends that run as `oom` (exit 1), not the harness.
    @Test func memoryCapBecomesAnOOMVerdict() throws {
        let folder = try TemporaryFolder("oom")
        defer { folder.remove() }
        let scenario = try Self.write(folder, tinyScenario())
        // 32 MiB simulated: each child's ledger cap is 16 MiB; naive needs ~22 MB, low-memory ~11 MB.
        let result = try Executable.run([
            "run", scenario, "--out", folder.file("out"), "--work-dir", folder.file("work"), "--memory-limit", "32MiB",
        ])
        #expect(result.status == 1, "\(result.stderr)")
        let results = try ResultsCodec.decoder.decode(
            ScenarioResults.self, from: try #require(FileManager.default.contents(atPath: folder.file("out/tiny.json")))
        )
        #expect(results.runs.map(\.verdict) == [.oom, .pass])
        let oom = try #require(results.runs.first?.measurement?.outOfMemory)
        #expect(oom.capBytes == 16 << 20)
        #expect(oom.reachedBytes + oom.requestedBytes > oom.capBytes)
        #expect(results.scenario.memoryLimitBytes == 32 << 20)
        #expect(results.runs.first?.verdictDetail.contains("memory cap") == true)
    }

    /// Ctrl-C mid-scenario: the child is ended, the results of the runs that completed stay, valid.
    @Test func interruptKeepsCompletedRuns() throws {
        let folder = try TemporaryFolder("interrupt")
        defer { folder.remove() }
        let scenario = try Self.write(folder, tinyScenario(extra: #", "repeat": 50"#))
        let process = try Executable.start([
            "run", scenario, "--out", folder.file("out"), "--work-dir", folder.file("work"),
        ])
        let resultsPath = folder.file("out/tiny.json")
        let deadline = Date().addingTimeInterval(120)
        var completed = 0
        while Date() < deadline {
            if let data = FileManager.default.contents(atPath: resultsPath),
                let partial = try? ResultsCodec.decoder.decode(ScenarioResults.self, from: data),
                partial.runs.count >= 2
            {
                completed = partial.runs.count
                break
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        #expect(completed >= 2)
        kill(process.processIdentifier, SIGINT)
        process.waitUntilExit()
        #expect(process.terminationStatus == 130)
        let results = try ResultsCodec.decoder.decode(
            ScenarioResults.self, from: try #require(FileManager.default.contents(atPath: resultsPath)))
        let complete = results.complete
        let reason = results.stoppedReason
        let count = results.runs.count
        let verdicts = results.runs.map(\.verdict)
        #expect(!complete)
        #expect(reason == .interrupted)
        #expect(count >= completed && count < 100)
        // Every recorded run completed and passed; the one cut short is not recorded.
        #expect(verdicts.allSatisfy { $0 == .pass })
        // No child is left behind, and no temporary results file.
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: folder.file("out")).filter {
            $0.contains(".tmp-")
        }
        #expect(leftovers.isEmpty)
    }

    @Test func badScenarioExits65WithOneLine() throws {
        let folder = try TemporaryFolder("bad")
        defer { folder.remove() }
        let scenario = try Self.write(folder, tinyScenario(runs: #"[{"strategy": "fast"}]"#))
        let result = try Executable.run(["run", scenario, "--out", folder.file("out")])
        #expect(result.status == 65)
        #expect(result.stderrLines.count == 1)
        #expect(result.stderr.contains("tiny.json: $.runs[0].strategy: unknown strategy 'fast'"))
        let missing = try Executable.run(["run", folder.file("nope.json")])
        #expect(missing.status == 66)
        let badScale = try Executable.run(["run", scenario, "--scale", "2"])
        #expect(badScale.status == 64)
    }
}
