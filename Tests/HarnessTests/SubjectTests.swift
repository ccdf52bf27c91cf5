import Foundation
import TestSupport
import Testing

@testable import Harness
@testable import Loading
@testable import OSLayer
@testable import Probes
@testable import ResultsFormat
@testable import TensorEngine

#if canImport(Glibc)
import Glibc
#endif

@Suite struct SubjectParsingTests {
    /// `--only` takes a run's id, its strategy, or the id less `@<subject>`: the name the engine's row has.
    @Test func onlySelectsARunByItsNameWithoutTheSubject() {
        let run = Scenario.Run(
            id: "dtype-direct-float16@transformers", strategy: .dtypeDirect, dtype: .f16, placement: nil,
            subject: .transformers)
        #expect(run.isSelected(by: "dtype-direct-float16@transformers"))
        #expect(run.isSelected(by: "dtype-direct-float16"))
        #expect(run.isSelected(by: "dtype-direct"))
        #expect(!run.isSelected(by: "dtype-direct-bfloat16"))
        #expect(!run.isSelected(by: "dtype-direct-float16@safetensors"))
        let engine = Scenario.Run(id: "naive", strategy: .naive, dtype: nil, placement: nil)
        #expect(engine.isSelected(by: "naive"))
        #expect(!engine.isSelected(by: "naive@transformers"))
    }

    @Test func subjectsAndTheirIds() throws {
        let text = tinyScenario(
            runs: #"""
                [{"strategy": "naive"}, {"strategy": "low-memory", "subject": "transformers", "touch": false},
                 {"strategy": "naive", "subject": {"command": ["python3", "l.py", "{checkpoint}", "{dtype}"]}}]
                """#, extra: #", "python": "/opt/py/bin/python", "subject_tolerance": {"relative": 0.2}"#)
        let scenario = try Scenario.parse(Array(text.utf8), file: "s.json")
        #expect(scenario.runs.map(\.id) == ["naive", "low-memory@transformers", "naive@command"])
        #expect(
            scenario.runs.map(\.subject) == [
                .engine, .transformers, .command(["python3", "l.py", "{checkpoint}", "{dtype}"]),
            ])
        #expect(scenario.runs.map(\.touch) == [true, false, true])
        #expect(scenario.python == "/opt/py/bin/python")
        #expect(scenario.subjectTolerance == Scenario.Tolerance(relative: 0.2, absoluteBytes: 128 << 20))
        #expect(scenario.tolerance(for: scenario.runs[0]) == .default)
        let both = scenario.withSubjects([.engine, .transformers])
        #expect(
            both.runs.map(\.id) == [
                "naive", "naive@transformers", "low-memory", "low-memory@transformers", "naive", "naive@transformers",
            ])
        #expect(
            Subject.expand(
                ["{checkpoint}/x", "{dtype}", "{config}", "{offload}"], checkpoint: "/c", dtype: .f16,
                config: "/c/config.json", offload: nil)
                == ["/c/x", "float16", "/c/config.json", ""])
    }

    @Test(arguments: [
        (
            #"[{"strategy": "naive", "subject": "pytorch"}]"#, "$.runs[0].subject",
            "must be \"engine\", \"transformers\", \"safetensors\", \"runai-streamer\", \"fastsafetensors\" or {\"command\": [...]}, not \"pytorch\""
        ),
        (
            #"[{"strategy": "naive", "subject": {"command": []}}]"#, "$.runs[0].subject.command",
            "must be a non-empty array of strings"
        ),
        (#"[{"strategy": "naive", "subject": {"cmd": ["x"]}}]"#, "$.runs[0].subject.cmd", "unknown key"),
        (#"[{"strategy": "naive", "touch": "yes"}]"#, "$.runs[0].touch", "must be true or false, not a string"),
    ])
    func badSubjects(runs: String, path: String, message: String) {
        #expect {
            _ = try Scenario.parse(Array(tinyScenario(runs: runs).utf8), file: "s.json")
        } throws: { error in
            guard let error = error as? ScenarioError else { return false }
            return error.path == path && error.detail.contains(message)
        }
    }

    /// The parent's assembly of a loader's figures: deltas over its baseline, VmHWM less its code pages,
    /// where the bytes were held.
    @Test func subjectMeasurementFromWhatTheProbeSaw() throws {
        let mebibyte = 1 << 20
        func reading(_ rss: Int, _ anon: Int, _ file: Int, hwm: Int, checkpoint: Int) -> MemoryReading {
            MemoryReading([
                .rss: rss * mebibyte, .rssAnon: anon * mebibyte, .rssFile: file * mebibyte, .vmhwm: hwm * mebibyte,
                .rssFileCheckpoint: checkpoint * mebibyte,
            ])
        }
        let baseline = reading(500, 300, 200, hwm: 500, checkpoint: 0)
        let loaded = reading(620, 310, 310, hwm: 640, checkpoint: 80)
        let final = reading(740, 310, 430, hwm: 760, checkpoint: 200)
        let samples = [
            MemorySample(
                seconds: 1,
                reading: MemoryReading([.rss: 600 * mebibyte, .rssAnon: 315 * mebibyte, .rssFile: 280 * mebibyte]),
                phase: 0)
        ]
        var sampled = RSSSamplerResult(
            samples: samples, droppedSamples: 0, statusReadFailures: 0, jemallocAvailable: false,
            overhead: SamplerOverhead(
                sampleCount: 1, requestedIntervalSeconds: 0.001, meanIntervalSeconds: 0, meanSecondsPerSample: 0,
                maxSecondsPerSample: 0,
                threadCPUSeconds: 0, wallSeconds: 0, overrunCount: 0))
        sampled.droppedSamples = 0
        var outcome = ChildRunner.Outcome()
        outcome.exit = ChildExit(
            termination: .exited(code: 0),
            resourceUsage: ChildResourceUsage(maxRSSBytes: 0, userCPUSeconds: 0, systemCPUSeconds: 0))
        outcome.hello = .init(pid: 1, subject: "transformers", versions: ["transformers": "5.24.0"])
        outcome.subjectResult = SubjectResult(dtype: "bfloat16", loadSeconds: 2)
        outcome.observation = ExternalProbe.Observation(
            baseline: baseline, baselineSeconds: 0.5, endOfLoad: loaded, endOfLoadSeconds: 2.5, final: final,
            finalSeconds: 3, phases: [],
            sampled: sampled, marked: true)
        let figures = MemoryFigures(
            parameters: [
                .init(
                    byteCount: 200 * mebibyte, float32ByteCount: 400 * mebibyte, isCast: true, convertedSourceBytes: nil
                )
            ],
            checkpointBytes: 200 * mebibyte, largestShardBytes: 200 * mebibyte)
        let run = Scenario.Run(
            id: "low-memory@transformers", strategy: .lowMemory, dtype: nil, placement: nil, subject: .transformers)
        let prediction = ScalePlanner.RunPrediction(
            run: run, dtype: .bf16, figures: figures, predictedPeakBytes: 200 * mebibyte, formula: "M_t + staging",
            request: nil)
        let result = Judge(tolerance: .default).judge(
            run: run, repeatIndex: 0, outcome: outcome.assembled(run: run, prediction: prediction), floor: nil)
        let m = try #require(result.measurement)
        #expect(m.engine == nil)
        #expect(m.peaks[.jemallocAllocated] == nil)
        #expect(m.peaks[.rssAnon] == 15 * mebibyte)  // the sample's 315 over 300
        #expect(m.peaks[.rssFile] == 230 * mebibyte)
        #expect(m.peaks[.vmhwm] == 260 * mebibyte)  // 760 at the end over the baseline's 500
        #expect(m.outside?.loadPeaks?[.vmhwm] == 140 * mebibyte)
        // Non-checkpoint file pages: 200 at the baseline, 230 at the end.
        #expect(m.outside?.codePagesBytes == 30 * mebibyte)
        #expect(m.judgedPeaks[.vmhwm] == 230 * mebibyte)
        #expect(m.outside?.residency == .filePages)
        #expect(result.verdict == .pass)
        #expect(result.subject == .transformers)
        #expect(
            result.checks.map(\.name) == [
                "VmHWM delta less code pages within upper bound", "RSS anon peak delta within upper bound",
                "retained RSS anon delta within the model's own bytes",
            ])
        #expect(
            result.verdictDetail.hasSuffix(
                "held only as file pages: RssAnon Δ 15.00 MiB, the mapped checkpoint's pages RssFile Δ 230.00 MiB (200.00 MiB of it the checkpoint's, by smaps)"
            ))
    }
}

/// Real loaders through the executable.
@Suite(.serialized) struct SubjectRunTests {
    static let example = FixturePaths.root + "/../../examples/two_copy_loader.py"

    /// A ~230 MB bfloat16 model: two copies (460 MB) are far above one plus the loader tolerance (350 MB).
    static func scenario(_ runs: String) -> String {
        tinyScenario(runs: runs)
            .replacingOccurrences(of: #""hidden_size": 256"#, with: #""hidden_size": 1024"#)
            .replacingOccurrences(of: #""intermediate_size": 688"#, with: #""intermediate_size": 2816"#)
            .replacingOccurrences(
                of: #""num_attention_heads": 4, "num_key_value_heads": 2"#,
                with: #""num_attention_heads": 8, "num_key_value_heads": 8"#
            )
            .replacingOccurrences(
                of: #""num_hidden_layers": 2, "vocab_size": 8000"#,
                with: #""num_hidden_layers": 4, "vocab_size": 32000"#
            )
            .replacingOccurrences(of: #""max_shard_size": "4MB""#, with: #""max_shard_size": "100MB""#)
    }

    static func results(_ folder: TemporaryFolder) throws -> ScenarioResults {
        try ResultsCodec.decoder.decode(
            ScenarioResults.self, from: try #require(FileManager.default.contents(atPath: folder.file("out/tiny.json")))
        )
    }

    /// The example loader as naive and as low-memory, and with `--keep-state-dict` as naive: its peak passes and
    /// its retained memory, read at its `loaded` event, fails — the state dict is still alive.
    @Test(.enabled(if: TestPython.hasNumpy, "no python with numpy")) func twoCopyLoaderFailsLowMemoryAndPassesNaive()
        throws
    {
        let folder = try TemporaryFolder("twocopy")
        defer { folder.remove() }
        let command = #"{"command": ["\#(TestPython.path)", "\#(Self.example)", "{checkpoint}"]}"#
        let keeps = #"{"command": ["\#(TestPython.path)", "\#(Self.example)", "{checkpoint}", "--keep-state-dict"]}"#
        let scenario = try folder.write(
            "tiny.json",
            text: Self.scenario(
                #"[{"id": "as-naive", "strategy": "naive", "subject": \#(command)}, {"id": "as-low-memory", "strategy": "low-memory", "subject": \#(command)}, {"id": "keeps", "strategy": "naive", "subject": \#(keeps)}]"#
            ))
        let run = try Executable.run(["run", scenario, "--out", folder.file("out"), "--work-dir", folder.file("work")])
        #expect(run.status == 1, "\(run.stderr)")
        let results = try Self.results(folder)
        #expect(results.runs.map(\.verdict) == [.pass, .fail, .fail])
        let lowMemory = try #require(results.runs.dropFirst().first)
        #expect(
            Set(lowMemory.checks.filter { !$0.passed }.map(\.name)) == [
                "VmHWM delta within upper bound", "RSS anon peak delta within upper bound",
            ])
        let naive = try #require(results.runs.first?.measurement)
        #expect(naive.predictedPeakBytes == 2 * naive.figures.modelBytes)
        #expect(naive.engine == nil)
        #expect(naive.outside?.residency == .anonymous)
        #expect(naive.outside?.peakSource?.hasPrefix("the last VmHWM sampled before the program exited") == true)
        let model = naive.figures.modelBytes
        #expect(naive.retained?.at == .loaded && (naive.retained?.rssAnonDeltaBytes ?? .max) < model + model / 10)
        let kept = try #require(results.runs.last)
        #expect(
            kept.checks.filter { !$0.passed }.map(\.name) == ["retained RSS anon delta within the model's own bytes"])
        #expect(kept.measurement?.retained?.at == .loaded)
        #expect((kept.measurement?.retained?.rssAnonDeltaBytes ?? 0) >= 2 * model)
        #expect(results.schemaVersion == 2)
        let written = try parseJSON(try fileText(folder.file("out/tiny.json")))
        #expect(try ReportFixtures.schema("results.schema.json").validate(written) == [])
    }

    @Test func missingInterpreterOrPackageExits69BeforeMeasuring() throws {
        let folder = try TemporaryFolder("nopython")
        defer { folder.remove() }
        let scenario = try folder.write(
            "tiny.json", text: tinyScenario(runs: #"[{"strategy": "low-memory", "subject": "transformers"}]"#))
        let missing = try Executable.run([
            "run", scenario, "--out", folder.file("out"), "--work-dir", folder.file("work"), "--python",
            "/nonexistent/python3",
        ])
        #expect(missing.status == 69)
        #expect(
            missing.stderrLines == [
                "bigmodel-bench: error: the Python interpreter for the transformers subject '/nonexistent/python3' was not found or is not executable; give --python PATH, the scenario's \"python\", or BIGMODEL_BENCH_PYTHON"
            ])
        // An interpreter without torch: a stand-in that answers the version check as such a python would.
        let stub = try folder.write(
            "python",
            text:
                "#!/bin/sh\necho '{\"python\": \"3.11\", \"torch\": \"MISSING ModuleNotFoundError: No module named torch\", \"transformers\": \"4.57.0\", \"safetensors\": \"0.8.0\"}'\n"
        )
        chmod(stub, 0o755)
        let noTorch = try Executable.run([
            "run", scenario, "--out", folder.file("out"), "--work-dir", folder.file("work"), "--python", stub,
        ])
        #expect(noTorch.status == 69)
        #expect(noTorch.stderrLines.count == 1)
        #expect(
            noTorch.stderr.contains(
                "the transformers subject needs torch, which \(stub) cannot import: torch (ModuleNotFoundError: No module named torch); install with: \(stub) -m pip install torch"
            ))
        // Nothing was generated or measured.
        #expect(!FileManager.default.fileExists(atPath: folder.file("work/checkpoints")))
        #expect(!FileManager.default.fileExists(atPath: folder.file("out/tiny.json")))
    }

    /// `--attribute` without memray in the interpreter: exit 69 before anything is measured, naming the pip package.
    @Test func attributeWithoutMemrayExits69() throws {
        let folder = try TemporaryFolder("nomemray")
        defer { folder.remove() }
        let scenario = try folder.write(
            "tiny.json", text: tinyScenario(runs: #"[{"strategy": "low-memory", "subject": "transformers"}]"#))
        let stub = try folder.write(
            "python",
            text:
                "#!/bin/sh\necho '{\"python\": \"3.11\", \"memray\": \"MISSING ModuleNotFoundError: No module named memray\", \"torch\": \"2.9\", \"transformers\": \"4.57.0\", \"safetensors\": \"0.8.0\"}'\n"
        )
        chmod(stub, 0o755)
        let run = try Executable.run([
            "run", scenario, "--out", folder.file("out"), "--work-dir", folder.file("work"), "--python", stub,
            "--attribute",
        ])
        #expect(run.status == 69)
        #expect(
            run.stderrLines == [
                "bigmodel-bench: error: the transformers subject needs memray, which \(stub) cannot import: memray (ModuleNotFoundError: No module named memray); install with: \(stub) -m pip install memray (or run scripts/setup --test, which makes ~/.cache/bigmodel-bench/python)"
            ])
        #expect(!FileManager.default.fileExists(atPath: folder.file("out/tiny.json")))
    }

    /// transformers' dtype=float16 load of a ~230 MB model under memray (no touch: memray's native stacks make
    /// it slow): the stacks at its high-water mark name transformers' and torch's frames, the top ones hold most
    /// of memray's peak, and the capture is gone afterwards.
    @Test(
        .enabled(
            if: TestPython.hasTransformers && TestPython.imports("memray"), "no python with transformers and memray"))
    func attributionNamesTheFramesThatHoldThePeak() throws {
        let folder = try TemporaryFolder("attribute")
        defer { folder.remove() }
        let scenario = try folder.write(
            "tiny.json",
            text: Self.scenario(
                #"[{"strategy": "dtype-direct", "dtype": "float16", "subject": "transformers", "touch": false}]"#))
        let run = try Executable.run([
            "run", scenario, "--out", folder.file("out"), "--work-dir", folder.file("work"), "--python",
            TestPython.path, "--attribute",
        ])
        #expect(run.status == 0 || run.status == 1, "\(run.stderr)")
        let m = try #require(try Self.results(folder).runs.first?.measurement?.outside)
        #expect(m.attributionFailure == nil)
        let attribution = try #require(m.attribution)
        #expect(attribution.stacks.count == 8 && attribution.stackCount >= 8)
        #expect(attribution.stacks.map(\.bytes) == attribution.stacks.map(\.bytes).sorted(by: >))
        #expect(attribution.topShare > 0.5, "top stacks hold \(attribution.topShare) of \(attribution.peakBytes)")
        let top = attribution.stacks.prefix(2).flatMap(\.frames).compactMap(\.file)
        #expect(top.contains { $0.hasPrefix("transformers/") || $0.hasPrefix("torch/") }, "\(top)")
        // The biggest stack is the model's own float16 tensors or the mapped checkpoint, each ≈ its bytes.
        let model = try #require(try Self.results(folder).runs.first?.measurement?.figures.modelBytes)
        #expect(Double(attribution.stacks[0].bytes) > 0.9 * Double(model))
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.file("work/attribution/tiny")).isEmpty)
        let report = try fileText(folder.file("out/tiny.md"))
        #expect(report.contains("#### Where the peak comes from (memray)"))
        let written = try parseJSON(try fileText(folder.file("out/tiny.json")))
        #expect(try ReportFixtures.schema("results.schema.json").validate(written) == [])
    }

    @Test(.enabled(if: TestPython.hasTransformers, "no python with torch and transformers"))
    func transformersLoadsUnderTheSameClaims() throws {
        let folder = try TemporaryFolder("transformers")
        defer { folder.remove() }
        let scenario = try folder.write(
            "tiny.json",
            text: tinyScenario(
                runs:
                    #"[{"strategy": "naive"}, {"strategy": "low-memory"}, {"strategy": "dtype-direct", "dtype": "float16"}]"#
            ))
        let run = try Executable.run([
            "run", scenario, "--out", folder.file("out"), "--work-dir", folder.file("work"), "--subject",
            "engine,transformers", "--python", TestPython.path,
        ])
        #expect(run.status == 0 || run.status == 1, "\(run.stderr)")
        let results = try Self.results(folder)
        #expect(
            results.runs.map(\.id) == [
                "naive", "naive@transformers", "low-memory", "low-memory@transformers", "dtype-direct-float16",
                "dtype-direct-float16@transformers",
            ])
        for pair in stride(from: 0, to: results.runs.count, by: 2) {
            let engine = try #require(results.runs[pair].measurement)
            let loader = try #require(results.runs[pair + 1].measurement, "\(results.runs[pair + 1].verdictDetail)")
            #expect(results.runs[pair].verdict == .pass)
            #expect(results.runs[pair + 1].verdict != .error, "\(results.runs[pair + 1].verdictDetail)")
            // Held to exactly the engine's claim, from the same headers.
            #expect(loader.predictedPeakBytes == engine.predictedPeakBytes)
            #expect(loader.figures == engine.figures)
            #expect(
                loader.engine == nil && loader.peaks[.jemallocAllocated] == nil
                    && loader.end[.ledgerLive] == nil)
            #expect(loader.outside?.subjectVersions?["transformers"] != nil)
            #expect(
                (loader.peaks[.rssAnon] ?? 0) > 0 && loader.outside?.endOfLoad != nil
                    && loader.outside?.codePagesBytes != nil
                    && loader.outside?.residency != nil)
            #expect(loader.phases.map(\.name).last == "touch")
            #expect(loader.timeline.columns == ProcessTimeline.kernelColumns)
        }
        #expect(results.runs[3].measurement?.dtype == .bf16)
        #expect(results.runs[5].measurement?.dtype == .f16)
        let markdown = try String(contentsOfFile: folder.file("out/tiny.md"), encoding: .utf8)
        #expect(markdown.contains("## Loaders side by side"))
    }
}
