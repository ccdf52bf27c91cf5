import Foundation
import OSLayer
import TestSupport
import Testing

@testable import Harness
@testable import ResultsFormat

/// The fast loaders (safetensors, Run:ai Model Streamer, fastsafetensors) as subjects: named like any subject,
/// driven by `python/bigmodel_bench_fast_loaders.py`, held to the run's claim.
@Suite(.serialized) struct FastLoaderTests {
    @Test func fastLoadersAreSubjectsByName() throws {
        let scenario = try Scenario.parse(
            Array(
                tinyScenario(
                    runs:
                        #"[{"strategy": "low-memory", "subject": "runai-streamer"}, {"strategy": "device-map", "device_map": "auto", "max_memory": {"cpu": "50%"}}]"#
                ).utf8), file: "t.json")
        #expect(scenario.runs.map(\.id) == ["low-memory@runai-streamer", "device-map"])
        #expect(scenario.runs[0].subject == .fastLoader(.runaiStreamer))
        // --subject: a fast loader places no modules, so it has no device-map run.
        let all = scenario.withSubjects([.engine, .fastLoader(.safetensors), .fastLoader(.fastsafetensors)])
        #expect(
            all.runs.map(\.id) == [
                "low-memory", "low-memory@safetensors", "low-memory@fastsafetensors", "device-map",
            ])
        #expect(throws: ScenarioError.self) {
            try Scenario.parse(
                Array(
                    tinyScenario(
                        runs:
                            #"[{"strategy": "device-map", "device_map": "auto", "subject": "fastsafetensors"}]"#
                    ).utf8), file: "t.json")
        }
        let encoded = String(decoding: try ResultsCodec.encode(Subject.fastLoader(.runaiStreamer)), as: UTF8.self)
        #expect(encoded == "\"runai-streamer\"\n")
        #expect(try ResultsCodec.decode(Subject.self, from: Array(encoded.utf8)) == .fastLoader(.runaiStreamer))
    }

    @Test func aMissingFastLoaderIsExit69NamingItsPipPackage() throws {
        let folder = try TemporaryFolder("nofast")
        defer { folder.remove() }
        let scenario = try folder.write(
            "tiny.json", text: tinyScenario(runs: #"[{"strategy": "low-memory", "subject": "runai-streamer"}]"#))
        // An interpreter that has torch but not the streamer: a stand-in answering the check as such a python would.
        let stub = try folder.write(
            "python",
            text:
                "#!/bin/sh\necho '{\"python\": \"3.11\", \"torch\": \"2.15\", \"runai_model_streamer\": \"MISSING ModuleNotFoundError: No module named runai_model_streamer\"}'\n"
        )
        chmod(stub, 0o755)
        let run = try Executable.run([
            "run", scenario, "--out", folder.file("out"), "--work-dir", folder.file("work"), "--python", stub,
        ])
        #expect(run.status == 69)
        #expect(
            run.stderrLines == [
                "bigmodel-bench: error: the runai-streamer subject needs runai_model_streamer, which \(stub) cannot import: runai_model_streamer (ModuleNotFoundError: No module named runai_model_streamer); install with: \(stub) -m pip install runai-model-streamer (or run scripts/setup --test, which makes ~/.cache/bigmodel-bench/python)"
            ])
        #expect(!FileManager.default.fileExists(atPath: folder.file("work/checkpoints")))
    }

    /// The ~230 MB model with every fast loader held to the low-memory claim (one copy) and the naive one.
    @Test(.enabled(if: TestPython.hasFastLoaders, "no python with the fast loaders"))
    func eachFastLoaderIsMeasuredUnderTheSameClaims() throws {
        let folder = try TemporaryFolder("fast")
        defer { folder.remove() }
        let scenario = try folder.write(
            "tiny.json", text: SubjectRunTests.scenario(#"[{"strategy": "low-memory"}, {"strategy": "mmap"}]"#))
        let run = try Executable.run([
            "run", scenario, "--subject", "engine,safetensors,runai-streamer,fastsafetensors", "--out",
            folder.file("out"), "--work-dir", folder.file("work"),
        ])
        let results = try SubjectRunTests.results(folder)
        #expect(
            results.runs.map(\.id) == [
                "low-memory", "low-memory@safetensors", "low-memory@runai-streamer", "low-memory@fastsafetensors",
                "mmap", "mmap@safetensors", "mmap@runai-streamer", "mmap@fastsafetensors",
            ])
        let model = try #require(results.runs.first?.figures?.modelBytes)
        for result in results.runs where result.strategy == .lowMemory {
            let m = try #require(result.measurement, "\(result.id): \(result.verdictDetail)")
            #expect(result.verdict == .pass, "\(result.id): \(result.verdictDetail)")
            // One copy, held as the process's own memory.
            let anon = try #require(m.peaks[.rssAnon])
            #expect(anon >= model - (8 << 20) && anon < model + model / 5, "\(result.id): \(anon) vs \(model)")
            if !result.loader.isEngine { #expect(m.outside?.residency == .anonymous) }
        }
        // mmap: only safetensors' views are the mapped file's pages; the others own a copy, so their RssAnon
        // breaks mmap's claim (it owns nothing) and the verdict says so.
        let views = try #require(results.runs.first { $0.id == "mmap@safetensors" })
        #expect(views.verdict == .pass, "\(views.verdictDetail)")
        #expect(views.measurement?.outside?.residency == .filePages, "\(views.verdictDetail)")
        #expect(
            views.measurement?.outside?.notes?.contains("mmap: get_tensor's views of the mapped shards, not cloned")
                == true)
        for id in ["mmap@runai-streamer", "mmap@fastsafetensors"] {
            let owned = try #require(results.runs.first { $0.id == id })
            #expect(owned.verdict == .fail, "\(id): \(owned.verdictDetail)")
        }
        #expect(run.status == 1, "\(run.stderr)")
        let versions = try #require(results.runs.first { $0.id == "low-memory@runai-streamer" }?.measurement?.outside)
        #expect(versions.subjectVersions?["runai-streamer"] != nil)
    }
}
