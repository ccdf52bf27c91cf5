import Foundation
import OrderedCollections
import ResultsFormat
import TestSupport
import Testing

@testable import Checkpoint
@testable import Models
@testable import StrictJSON
@testable import TensorEngine

/// The llama fixture resharded at 200KB (200,000 bytes), split in the model's registration order
/// (embed_tokens; per layer q, k, v, o, gate, up, down, input_layernorm, post_attention_layernorm; norm;
/// lm_head): worked by hand from the tensor sizes (embed 131072, q/o 16384, k/v 8192, MLP 49152, norms 256).
private let llamaShardsAt200KB: [[String]] = [
    [
        "model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.k_proj.weight",
        "model.layers.0.self_attn.v_proj.weight", "model.layers.0.self_attn.o_proj.weight",
    ],  // 180,224 bytes; + gate (49,152) would exceed 200,000
    [
        "model.layers.0.mlp.gate_proj.weight", "model.layers.0.mlp.up_proj.weight",
        "model.layers.0.mlp.down_proj.weight",
        "model.layers.0.input_layernorm.weight", "model.layers.0.post_attention_layernorm.weight",
        "model.layers.1.self_attn.q_proj.weight", "model.layers.1.self_attn.k_proj.weight",
        "model.layers.1.self_attn.v_proj.weight",
        "model.layers.1.self_attn.o_proj.weight",
    ],  // 197,120 bytes
    [
        "model.layers.1.mlp.gate_proj.weight", "model.layers.1.mlp.up_proj.weight",
        "model.layers.1.mlp.down_proj.weight",
        "model.layers.1.input_layernorm.weight", "model.layers.1.post_attention_layernorm.weight", "model.norm.weight",
    ],  // 148,224 bytes; + lm_head (131,072) would exceed
    ["lm_head.weight"],  // 131,072 bytes
]

/// True when the test interpreter (`BIGMODEL_BENCH_PYTHON`, else python3) imports safetensors and numpy. When it does not, the interop test is
/// disabled through `.enabled(if:)` (Swift Testing then reports it as skipped, with the comment given there),
/// and this line says so in the log.
private enum PythonSafetensors {
    static let available: Bool = {
        let ok = runTool(TestPython.path, ["-c", "import safetensors, safetensors.numpy, numpy"])?.status == 0
        if !ok {
            print("CLITests: SKIPPED the Python interop test: \(TestPython.path) cannot import safetensors and numpy")
        }
        return ok
    }()
}

@Suite("CLI end to end")
struct CLITests {
    static let malformed = MalformedFixtures.rules.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }

    @Test func executableIsFound() throws {
        let path = try #require(Executable.path)
        #expect(path.hasSuffix("/bigmodel-bench"))
    }

    /// `bench load` on the sharded gemma fixture (369,280 tensor bytes in 4 files): every case once per
    /// round, each strategy's ledger peak its formula's bytes, the first touch of naive's peak (M_t + M_ck).
    @Test func benchLoadTimesEveryCaseOnTheFixture() throws {
        let path = FixturePaths.path("gemma-tiny-bf16-sharded")
        let result = try Executable.run([
            "bench", "load", "--checkpoint", path, "--repeat", "2", "--no-peers", "--json", "--cache", "cold",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let report = try JSONParser().parse(Array(result.stdout.utf8))
        #expect(report["tensor_bytes"]?.numberValue?.intValue == 369_280)
        #expect(report["files"]?.numberValue?.intValue == 4)
        #expect(report["repeats"]?.numberValue?.intValue == 2)
        #expect(report["peers_skipped"]?.stringValue == "--no-peers")
        #expect(report["cache"]?.stringValue == "cold")
        #expect(report["first_touch"]?["bytes"]?.numberValue?.intValue == 738_560)
        #expect(report["first_touch"]?["seconds"]?.arrayValue?.count == 2)
        let cases = report["cases"]?.arrayValue ?? []
        #expect(
            cases.map { $0["name"]?.stringValue } == [
                "floor", "floor, 16 in flight", "floor, O_DIRECT, 16 in flight", "naive", "sharded", "low-memory",
                "dtype-direct→float16", "load-then-cast→float16", "mmap",
            ])
        #expect(
            cases.map { $0["ledger_peak_bytes"]?.numberValue?.intValue } == [
                nil, nil, nil, 738_560, 500_352, 369_280, 500_352, 869_632, 0,
            ])
        #expect(cases.allSatisfy { $0["seconds"]?.arrayValue?.count == 2 })
        #expect(cases.allSatisfy { $0["ledger_peak_bytes"] == $0["predicted_peak_bytes"] })

        let table = try Executable.run(["bench", "load", "--checkpoint", path, "--repeat", "1", "--no-peers"])
        #expect(table.status == 0, "\(table.stderr)")
        #expect(table.stdout.contains("369280 tensor bytes (369.28 KB) in 4 file(s)"))
        #expect(table.stdout.contains("uncounted, page cache warm\n"))
        #expect(
            table.stdout.contains("first touch (before the rounds): 738.56 KB of fresh madvise(MADV_HUGEPAGE) memory"))
        #expect(table.stdout.contains("naive read checkpoint: median "))
        #expect(table.stdout.contains("× first touch"))
        #expect(table.stdout.contains("× floor time: a case's median over the fastest floor's, floor"))

        let only = try Executable.run([
            "bench", "load", "--checkpoint", path, "--repeat", "1", "--no-peers", "--json", "--only", "low-memory",
            "--only", "floor, O_DIRECT, 16 in flight",
        ])
        #expect(only.status == 0, "\(only.stderr)")
        let selected = try JSONParser().parse(Array(only.stdout.utf8))["cases"]?.arrayValue ?? []
        #expect(selected.map { $0["name"]?.stringValue } == ["floor, O_DIRECT, 16 in flight", "low-memory"])
        let unknown = try Executable.run(["bench", "load", "--checkpoint", path, "--only", "lowmemory"])
        #expect(unknown.status == 64)
        #expect(
            unknown.stderr.contains(
                "--only lowmemory names no case; the cases: floor, floor, 16 in flight, floor, O_DIRECT, 16 in flight, naive"
            ))
    }

    @Test(arguments: CLITests.malformed)
    func malformedFixture(name: String, rule: String) throws {
        let path = FixturePaths.path("malformed/" + name)
        for command in ["inspect", "verify"] {
            let result = try Executable.run([command, path])
            #expect(result.status == 65, "\(command) \(name)")
            #expect(result.stdout == "", "\(command) \(name)")
            #expect(result.stderrLines.count == 1, "\(command) \(name): \(result.stderr)")
            let line = String(result.stderrLines.first ?? "")
            #expect(line.hasPrefix("bigmodel-bench: error: "), "\(line)")
            // The file (for folders: the folder, inside the index's path) and the rule's name.
            #expect(line.contains(name.hasSuffix("/") ? path : path + ":"), "\(line)")
            #expect(line.contains(" \(rule): "), "\(line)")
        }
    }

    @Test func versionAndReadableDefaults() throws {
        let version = try Executable.run(["--version"])
        #expect(version.status == 0)
        #expect(version.stdout == "0.1.0\n")
        // Help text wraps at the terminal's width: compare with the whitespace folded.
        func words(_ text: String) -> String { text.split(whereSeparator: \.isWhitespace).joined(separator: " ") }
        let help = words(try Executable.run(["generate", "--help"]).stdout)
        #expect(help.contains("Largest shard in tensor bytes at full size. (default: 5GB)"), "\(help)")
        #expect(!help.contains("SizeArgument"))
        let run = words(try Executable.run(["run", "--help"]).stdout)
        #expect(
            run.contains("Folder for the results. (default: Reports)") && !run.contains("(default Reports/)"), "\(run)")
    }

    /// `fit` at 16, 24 and 80 GiB for gemma7b (17.08 GB of bfloat16 weights in 4 shards of ≤ 5 GB): the
    /// predicted peaks are the ledger formulas at full size (naive 2 × M_t, sharded M_t + S, low-memory M_t …).
    @Test func fitAnswersForGemma7bAtThreeSizes() throws {
        let scenario = ReportFixtures.repositoryRoot + "/Scenarios/gemma7b.json"
        // 16 GiB: the model (15.90 GiB) alone fits, not with the tolerance: low-memory is tight, the two-copy paths
        // do not fit; device-map fits only by leaving weights on disk, so it is not the pick while another path loads.
        let small = try Executable.run(["fit", scenario, "--memory", "16GiB"])
        #expect(small.status == 0, "\(small.stdout)\(small.stderr)")
        #expect(
            small.stdout.contains("pick: low-memory, 15.90 GiB predicted, 99.67 MiB to spare (tight"), "\(small.stdout)"
        )
        #expect(
            small.stdout.contains(
                "naive                       1         31.81 GiB  31.81 GiB  −15.81 GiB  does not fit"))
        let none = try Executable.run(["fit", scenario, "--memory", "4GiB"])
        #expect(none.status == 1)
        #expect(none.stdout.contains("no path fits in 4.00 GiB"), "\(none.stdout)")
        let medium = try Executable.run(["fit", scenario, "--memory", "24GiB", "--json"])
        #expect(medium.status == 0, "\(medium.stderr)")
        let answer = try parseJSON(medium.stdout)
        let paths = try #require(answer["paths"]?.arrayValue)
        let status = Dictionary(
            uniqueKeysWithValues: paths.compactMap { p in
                p["path"]?.stringValue.map { ($0, p["status"]?.stringValue ?? "") }
            })
        #expect(status["naive"] == "does_not_fit")
        #expect(status["low-memory"] == "fits")
        #expect(answer["pick"]?.stringValue == "low-memory")
        let model = try #require(answer["model_bytes"]?.numberValue?.intValue)
        let low = try #require(
            paths.first { $0["path"]?.stringValue == "low-memory" }?["predicted_peak_bytes"]?.numberValue?.intValue)
        let naive = try #require(
            paths.first { $0["path"]?.stringValue == "naive" }?["predicted_peak_bytes"]?.numberValue?.intValue)
        #expect(
            model == 17_075_361_792 && naive == 2 * model && low >= model && low < model + (64 << 20),
            "\(model) \(naive) \(low)")
        let large = try Executable.run(["fit", scenario, "--memory", "80GiB"])
        #expect(large.status == 0)
        #expect(!large.stdout.contains("does not fit"), "\(large.stdout)")
        let ranks = try Executable.run(["fit", scenario, "--memory", "80GiB", "--ranks", "8", "--json"])
        let eight = try parseJSON(ranks.stdout)
        #expect(eight["pick"]?.stringValue == "mmap", "\(ranks.stdout)")
    }

    /// `fit --calibration`: each path at the target's checkpoint bytes by the sweep's line (slope × bytes +
    /// fixed), with the line's error and the formula beside, labelled as such; the smoke sweep is the calibration.
    @Test func fitWithACalibrationSizesEachLoadersPathsByTheirLines() throws {
        let scenario = ReportFixtures.repositoryRoot + "/Scenarios/gemma7b.json"
        let calibration = ReportFixtures.path(ReportFixtures.sweep)
        let fits = try #require(try ReportFixtures.load(ReportFixtures.sweep).fits)
        let result = try Executable.run(["fit", scenario, "--calibration", calibration, "--memory", "24GiB", "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let answer = try parseJSON(result.stdout)
        #expect(answer["source"]?.stringValue == "calibration")
        let bytes = try #require(answer["checkpoint_bytes"]?.numberValue?.intValue)
        let paths = try #require(answer["paths"]?.arrayValue)
        #expect(
            paths.compactMap { $0["path"]?.stringValue } == ["naive", "low-memory", "dtype-direct-float16", "mmap"])
        for path in paths {
            let run = try #require(path["path"]?.stringValue)
            let line = try #require(fits.first { $0.run == run && $0.figure == .vmhwmDelta })
            #expect(path["predicted_vmhwm_bytes"]?.numberValue?.intValue == line.predictedBytes(at: bytes))
            let anon = try #require(fits.first { $0.run == run && $0.figure == .rssAnonPeakDelta })
            #expect(path["predicted_anon_bytes"]?.numberValue?.intValue == anon.predictedBytes(at: bytes))
            #expect(path["subject"]?.stringValue == "engine")
            #expect(path["uncertainty_bytes"]?.numberValue?.intValue != nil)
        }
        let status = Dictionary(
            uniqueKeysWithValues: paths.compactMap { p in
                p["path"]?.stringValue.map { ($0, p["status"]?.stringValue ?? "") }
            })
        #expect(
            status == ["naive": "does_not_fit", "low-memory": "fits", "dtype-direct-float16": "fits", "mmap": "fits"])
        #expect(answer["picks"]?["engine"]?.stringValue == "low-memory")
        // Eight ranks: mmap's pages are the page cache's, counted once, so it is the one that fits.
        let ranks = try Executable.run([
            "fit", scenario, "--calibration", calibration, "--memory", "24GiB", "--ranks", "8",
        ])
        #expect(ranks.status == 0, "\(ranks.stdout)")
        #expect(ranks.stdout.contains("pick for engine: mmap"), "\(ranks.stdout)")
        let text = try Executable.run(["fit", scenario, "--calibration", calibration, "--memory", "24GiB"])
        #expect(text.stdout.contains("predicted by the lines measured in \(calibration) (smoke, "), "\(text.stdout)")
        #expect(text.stdout.contains("pick for engine: low-memory"))
        let formulas = try Executable.run(["fit", scenario, "--memory", "24GiB"])
        #expect(formulas.stdout.contains("predicted by the formulas"))
        let notASweep = try Executable.run([
            "fit", scenario, "--calibration", ReportFixtures.path(ReportFixtures.smoke),
        ])
        #expect(notASweep.status == 65)
        #expect(
            notASweep.stderrLines == [
                "bigmodel-bench: error: \(ReportFixtures.path(ReportFixtures.smoke)): $.fits: NotACalibration: has no fitted lines: a calibration is the results of a sweep (run --scales 0.25,0.5,0.75,1)"
            ])
    }

    @Test func missingPathIsNoInput() throws {
        for command in ["inspect", "verify"] {
            let result = try Executable.run([command, "/nonexistent-cptests/model"])
            #expect(result.status == 66)
            #expect(
                result.stderr
                    == "bigmodel-bench: error: /nonexistent-cptests/model: open failed: no such file or directory\n")
        }
        let out = try TemporaryFolder("cli")
        defer { out.remove() }
        let reshard = try Executable.run(["reshard", "/nonexistent-cptests/model", "--out", out.file("x")])
        #expect(reshard.status == 66)
    }

    @Test func usageErrors() throws {
        let llama = FixturePaths.path("llama-tiny-f32-single")
        let unknownFlag = try Executable.run(["inspect", "--bogus", llama])
        #expect(unknownFlag.status == 64)
        #expect(unknownFlag.stderr.contains("Unknown option '--bogus'"))
        #expect(try Executable.run(["verify"]).status == 64)  // missing argument
        #expect(try Executable.run(["frobnicate"]).status == 64)  // unknown subcommand
        #expect(try Executable.run(["reshard", llama]).status == 64)  // --out is required

        let out = try TemporaryFolder("cli")
        defer { out.remove() }
        for size in ["5XB", "0", "1.5", "-1GB", "5 GB"] {
            let result = try Executable.run(["reshard", llama, "--out", out.file("x"), "--max-shard-size=\(size)"])
            #expect(result.status == 64, "\(size)")
            #expect(result.stderr.contains("'\(size)'"), "\(size): \(result.stderr)")
            #expect(result.stderr.contains("5GB"), "the message shows an example: \(result.stderr)")
        }
        #expect(try out.contents() == [])
    }

    /// Closed sets are parsed into their enums: one line naming the option, the value and every accepted value.
    @Test func closedSetsAreTypedOptions() throws {
        let llama = FixturePaths.path("llama-tiny-f32-single")
        let strategy = try Executable.run(["load", llama, "--strategy", "fast"])
        #expect(strategy.status == 64)
        #expect(
            strategy.stderrLines.first
                == "Error: The value 'fast' is invalid for '--strategy <strategy>': use one of naive, sharded, low-memory, dtype-direct, load-then-cast, device-map, mmap"
        )
        let scaling = try Executable.run([
            "generate", "--config", llama + "/config.json", "--scaling", "cols", "--dry-run",
        ])
        #expect(scaling.status == 64)
        #expect(
            scaling.stderrLines.first
                == "Error: The value 'cols' is invalid for '--scaling <scaling>': use one of rows, layers")
        let scenario = FixturePaths.repository + "/Scenarios/smoke.json"
        for (arguments, line) in [
            (
                ["run", scenario, "--scale", "0"],
                "Error: The value '0' is invalid for '--scale <scale>': a scale is a number in (0, 1] or 'fit'"
            ),
            (
                ["measure-rank", scenario, "--run-id", "naive", "--out", "x", "--subject", "engine,torch"],
                "Error: The value 'engine,torch' is invalid for '--subject <subject>': takes one or more of engine, transformers, safetensors, runai-streamer, fastsafetensors, comma-separated (a command subject is given in the scenario)"
            ),
            (
                ["compare", scenario, scenario, "--threshold=-1%"],
                "Error: The value '-1%' is invalid for '--threshold <threshold>': use a percentage such as 5% or 2.5"
            ),
            (
                ["compare", scenario, scenario, "--absolute", "lots"],
                "Error: The value 'lots' is invalid for '--absolute <absolute>': not a size; use a number of bytes or a size such as 5GB, 1.5GiB or 500MB"
            ),
        ] {
            let result = try Executable.run(arguments)
            #expect(result.status == 64, "\(arguments)")
            #expect(result.stderrLines.first.map(String.init) == line, "\(result.stderr)")
        }
    }

    @Test func inspectJSONOfGemma() throws {
        let result = try Executable.run(["inspect", "--json", FixturePaths.path("gemma-tiny-bf16-sharded")])
        #expect(result.status == 0)
        #expect(result.stderr == "")
        let json = try JSONParser().parse(Array(result.stdout.utf8))
        #expect(json["format"] == .string("sharded"))
        #expect(json["total_size"]?.numberValue?.intValue == 369_280)
        #expect(json["total_parameters"]?.numberValue?.intValue == 184_640)
        #expect(json["largest_shard_bytes"]?.numberValue?.intValue == 131_072)
        let files = try #require(json["files"]?.arrayValue)
        #expect(files.count == 4)
        #expect(files.compactMap { $0["name"]?.stringValue } == ShardPlan.fileNames(count: 4))
        #expect(files.compactMap { $0["bytes"]?.numberValue?.intValue } == [131_208, 86_664, 87_128, 66_440])
        #expect(files.compactMap { $0["tensor_bytes"]?.numberValue?.intValue } == [131_072, 86_016, 86_272, 65_920])
        #expect(json["metadata"]?["model-00001-of-00004.safetensors"] == .object(["format": .string("pt")]))
        let tensors = try #require(json["tensors"]?.arrayValue)
        #expect(tensors.count == 20)
        #expect(tensors.allSatisfy { $0["sha256"] == nil })
        let expected = Dictionary(
            uniqueKeysWithValues: try expectedTensors("gemma-tiny-bf16-sharded").map { ($0.name, $0) })
        for tensor in tensors {
            let name = try #require(tensor["name"]?.stringValue)
            let want = try #require(expected[name])
            #expect(tensor["dtype"]?.stringValue == want.dtype)
            #expect(tensor["shape"]?.arrayValue?.compactMap { $0.numberValue?.intValue } == want.shape)
            #expect(tensor["nbytes"]?.numberValue?.intValue == want.nbytes)
            #expect(tensor["file"]?.stringValue == want.file)
        }
    }

    @Test(arguments: ["gemma-tiny-bf16-sharded", "llama-tiny-f32-single", "dtypes/dtypes.safetensors"])
    func inspectDigests(fixture: String) throws {
        let result = try Executable.run(["inspect", "--json", "--digests", FixturePaths.path(fixture)])
        #expect(result.status == 0)
        let json = try JSONParser().parse(Array(result.stdout.utf8))
        var digests: [String: String] = [:]
        for tensor in try #require(json["tensors"]?.arrayValue) {
            digests[try #require(tensor["name"]?.stringValue)] = tensor["sha256"]?.stringValue
        }
        let folder = fixture.hasSuffix(".safetensors") ? "dtypes" : fixture
        let expected = try expectedTensors(folder)
        #expect(digests.count == expected.count)
        #expect(digests == Dictionary(uniqueKeysWithValues: expected.map { ($0.name, $0.sha256) }))
    }

    @Test func inspectTextAndVerify() throws {
        let gemma = FixturePaths.path("gemma-tiny-bf16-sharded")
        let text = try Executable.run(["inspect", gemma])
        #expect(text.status == 0)
        let lines = text.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 6 + 1 + 2 + 20 + 1)  // 6 summary lines, a blank, the table header and rule, 20 rows, ""
        #expect(lines.last == "")
        #expect(lines[0] == "checkpoint   \(gemma) (sharded)")
        #expect(lines[1] == "files        4")
        #expect(lines[2] == "tensors      20 (BF16 × 20)")
        #expect(lines[3] == "parameters   184640")
        #expect(lines[4] == "tensor bytes 369280 (360.63 KiB, 369.28 KB)")
        #expect(lines[5] == "largest shard model-00001-of-00004.safetensors: 131072 tensor bytes (128.00 KiB)")

        let verify = try Executable.run(["verify", gemma])
        #expect(verify.status == 0)
        #expect(verify.stderr == "")
        #expect(
            verify.stdout
                == "ok: 4 file(s), 20 tensors, 184640 parameters, 369280 tensor bytes read (360.63 KiB), largest shard 131072 bytes\n"
        )
    }

    /// What transformers tolerates in a folder, `inspect` and `load` warn about and `verify` refuses (65): a
    /// `total_size` that disagrees with the shards, an index beside `model.safetensors` (here one that does not
    /// parse), a shard-named file the index does not name. Nothing is written.
    @Test func verifyRefusesInconsistentFolders() throws {
        let folder = try TemporaryFolder("cli")
        defer { folder.remove() }
        func shard(_ name: String, in dir: String) throws {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try writeSafetensors(
                [(TensorSpec(name: "a", dtype: .f32, shape: [2]), float32Bytes([1, 2]))], metadata: ["format": "pt"],
                to: dir + "/" + name)
        }
        let index = #"{"metadata": {"total_size": 8}, "weight_map": {"a": "model-00001-of-00001.safetensors"}}"#
        let total = folder.file("total")
        try shard("model-00001-of-00001.safetensors", in: total)
        try index.replacingOccurrences(of: "8}", with: "9}").write(
            toFile: total + "/" + ShardIndex.fileName, atomically: true, encoding: .utf8)
        let beside = folder.file("beside")
        try shard("model.safetensors", in: beside)
        try "{not json".write(toFile: beside + "/" + ShardIndex.fileName, atomically: true, encoding: .utf8)
        let stray = folder.file("stray")
        try shard("model-00001-of-00001.safetensors", in: stray)
        try shard("model-00002-of-00002.safetensors", in: stray)
        try index.write(toFile: stray + "/" + ShardIndex.fileName, atomically: true, encoding: .utf8)
        let cases = [
            (
                total,
                "model.safetensors.index.json: TotalSizeMismatch: metadata.total_size is 9 but the shards hold 8 tensor bytes"
            ),
            (
                beside,
                beside
                    + "/model.safetensors.index.json: IndexBesideSingleFile: model.safetensors is beside it, so transformers loads model.safetensors and never reads this index, which does not parse ("
            ),
            (
                stray,
                stray
                    + "/model-00002-of-00002.safetensors: UnlistedShard: a shard file by its name that model.safetensors.index.json does not name: no load reads it"
            ),
        ]
        for (path, line) in cases {
            let before = try FileManager.default.contentsOfDirectory(atPath: path).sorted()
            let verify = try Executable.run(["verify", path])
            #expect(verify.status == 65, "\(path): \(verify.stderr)")
            #expect(verify.stderrLines.count == 1)
            #expect(verify.stderr.hasPrefix("bigmodel-bench: error: " + line), "\(verify.stderr)")
            #expect(verify.stdout.isEmpty)
            let inspect = try Executable.run(["inspect", path])
            #expect(inspect.status == 0, "\(inspect.stderr)")
            #expect(inspect.stderr.hasPrefix("bigmodel-bench: warning: " + line), "\(inspect.stderr)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: path).sorted() == before)
        }
        // The consistent folder passes.
        let good = folder.file("good")
        try shard("model-00001-of-00001.safetensors", in: good)
        try index.write(toFile: good + "/" + ShardIndex.fileName, atomically: true, encoding: .utf8)
        let ok = try Executable.run(["verify", good])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(ok.stderr.isEmpty)
    }

    /// Checks a resharded folder against the source fixture's expected.json: every tensor's bytes are the
    /// source's, `verify` passes, and the index is exactly what ShardPlan serialises.
    private func checkResharded(_ out: String, source fixture: String) throws -> Checkpoint {
        let verify = try Executable.run(["verify", out])
        #expect(verify.status == 0, "\(verify.stderr)")
        let checkpoint = try Checkpoint(path: out)
        #expect(checkpoint.warnings == [])
        var digests: [String: String] = [:]
        try checkpoint.verify(digests: true) { digests[$0] = $1 }
        let expected = try expectedTensors(fixture)
        #expect(digests == Dictionary(uniqueKeysWithValues: expected.map { ($0.name, $0.sha256) }))
        for (name, location) in checkpoint.tensors {
            let want = try #require(expected.first { $0.name == name })
            #expect(location.tensor.dtype.rawValue == want.dtype)
            #expect(location.tensor.shape == want.shape)
        }
        for file in checkpoint.files { #expect(file.header.metadata == ["format": "pt"]) }
        return checkpoint
    }

    @Test func reshardLlamaAt200KB() throws {
        let parent = try TemporaryFolder("cli-reshard")
        defer { parent.remove() }
        let source = FixturePaths.path("llama-tiny-f32-single")
        let out = parent.file("llama-200KB")
        let result = try Executable.run(["reshard", source, "--out", out, "--max-shard-size", "200KB"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.hasPrefix("wrote 8 file(s) to \(out): 656640 tensor bytes in "))
        // Only the destination is left beside it: no staging folder.
        #expect(try parent.contents() == ["llama-200KB"])
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: out).sorted() == [
                "config.json", "expected.json", "generation_config.json", "model-00001-of-00004.safetensors",
                "model-00002-of-00004.safetensors",
                "model-00003-of-00004.safetensors", "model-00004-of-00004.safetensors", "model.safetensors.index.json",
            ])

        let checkpoint = try checkResharded(out, source: "llama-tiny-f32-single")
        #expect(checkpoint.format == .sharded)
        #expect(checkpoint.totalSize == 656_640)
        #expect(checkpoint.largestShardBytes == 197_120)
        #expect(checkpoint.files.map(\.header.dataByteCount) == [180_224, 197_120, 148_224, 131_072])
        // Shard boundaries: the hand-worked split, which is also what ShardPlan gives in the model's order.
        for (i, names) in llamaShardsAt200KB.enumerated() {
            #expect(Set(checkpoint.files[i].tensors.keys) == Set(names), "shard \(i + 1)")
        }
        let sourceCheckpoint = try Checkpoint(path: source)
        let order = try #require(try ModelOrder.parameterOrder(for: sourceCheckpoint))
        #expect(order == llamaShardsAt200KB.flatMap { $0 })
        let plan = ShardPlan(tensors: order.map { sourceCheckpoint.tensors[$0]!.tensor.spec }, maxShardSize: 200_000)
        #expect(plan.shards.map { $0.tensors.map(\.name) } == llamaShardsAt200KB)
        // The index is well-formed and byte-identical to transformers' serialisation of that plan.
        let indexBytes = try fileBytes(out + "/" + ShardIndex.fileName)
        #expect(indexBytes == plan.index?.serialized())
        let index = try ShardIndex.parse(indexBytes, path: "index")
        #expect(index.totalSize == 656_640)
        #expect(index.totalParameters == 164_160)
        #expect(index.weightMap.count == 21)
        // Companion files (every non-weight file, the fixture's expected.json included) are copied byte for
        // byte (no --dtype: config.json unchanged).
        for name in ["config.json", "generation_config.json", "expected.json"] {
            #expect(try fileBytes(out + "/" + name) == fileBytes(source + "/" + name), "\(name)")
        }
    }

    @Test func reshardIntoFolderWithTrailingSlash() throws {
        let parent = try TemporaryFolder("cli-reshard")
        defer { parent.remove() }
        // Regression: "--out DIR/" used to stage inside DIR, then remove DIR with the staged files (exit 74).
        let new = parent.file("new") + "/"
        let first = try Executable.run([
            "reshard", FixturePaths.path("dtypes/dtypes.safetensors"), "--out", new, "--max-shard-size", "1KB",
        ])
        #expect(first.status == 0, "\(first.stderr)")
        try FileManager.default.createDirectory(atPath: parent.file("empty"), withIntermediateDirectories: false)
        let second = try Executable.run([
            "reshard", FixturePaths.path("dtypes/dtypes.safetensors"), "--out", parent.file("empty") + "//",
        ])
        #expect(second.status == 0, "\(second.stderr)")
        #expect(try parent.contents() == ["empty", "new"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: parent.file("empty")) == ["model.safetensors"])
        #expect(try checkResharded(parent.file("new"), source: "dtypes").files.count == 5)
        // "--out ." from inside an empty folder: it used to stage inside ".", remove it, and fail (exit 74).
        try FileManager.default.createDirectory(atPath: parent.file("here"), withIntermediateDirectories: false)
        let dot = try Executable.run(
            ["reshard", FixturePaths.path("dtypes/dtypes.safetensors"), "--out", "."], in: parent.file("here"))
        #expect(dot.status == 0, "\(dot.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: parent.file("here")) == ["model.safetensors"])
        #expect(try parent.contents() == ["empty", "here", "new"])  // no staging folder left anywhere
        let single = try checkResharded(parent.file("empty"), source: "dtypes")
        #expect(single.format == .single)
        #expect(single.totalSize == 8_635)
    }

    @Test func reshardDTypesAt1KBSplitsInSourceOrder() throws {
        let parent = try TemporaryFolder("cli-reshard")
        defer { parent.remove() }
        let out = parent.file("dtypes-1KB")
        let result = try Executable.run([
            "reshard", FixturePaths.path("dtypes/dtypes.safetensors"), "--out", out, "--max-shard-size", "1KB",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let checkpoint = try checkResharded(out, source: "dtypes")
        // Source data order (no config.json, so no model order): i64 40, f64 4096, empty 0, f32 2048,
        // scalar 4, i32 64, bf16 1024, f16 1024, i16 48, f8_e4m3 128, f8_e5m2 128, i8 15, u8 7, bool 9, with a
        // maximum of 1,000: f64, f32, bf16 and f16 exceed it and get shards of their own, emitted at once;
        // everything else fits in the one shard still being filled (443 bytes), which comes last.
        let groups = ShardPlan.split(
            sizes: [40, 4096, 0, 2048, 4, 64, 1024, 1024, 48, 128, 128, 15, 7, 9], maxShardSize: 1000)
        #expect(groups == [[1], [3], [6], [7], [0, 2, 4, 5, 8, 9, 10, 11, 12, 13]])
        #expect(checkpoint.files.map(\.header.dataByteCount) == [4096, 2048, 1024, 1024, 443])
        #expect(
            checkpoint.files.map { Set($0.tensors.keys) } == [
                ["f64"], ["f32"], ["bf16"], ["f16"],
                ["i64", "empty", "scalar", "i32", "i16", "f8_e4m3", "f8_e5m2", "i8", "u8", "bool"],
            ])
        #expect(checkpoint.largestShardBytes == 4096)
        // A single-file source with no config.json beside it: no companion files.
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: out).filter { !$0.hasSuffix(".safetensors") } == [
                ShardIndex.fileName
            ])
    }

    @Test func reshardIntoNonEmptyFolderIsRefused() throws {
        let out = try TemporaryFolder("cli-reshard")
        defer { out.remove() }
        try out.write("keep.txt", text: "do not touch")
        let result = try Executable.run([
            "reshard", FixturePaths.path("llama-tiny-f32-single"), "--out", out.path, "--max-shard-size", "200KB",
        ])
        #expect(result.status == 64)
        #expect(result.stderrLines.count == 1)
        #expect(result.stderr.contains("already exists and is not an empty folder"))
        #expect(try out.contents() == ["keep.txt"])
        #expect(try fileBytes(out.file("keep.txt")) == Array("do not touch".utf8))
        // A file in the way is refused the same way.
        let file = out.file("keep.txt")
        let onFile = try Executable.run(["reshard", FixturePaths.path("llama-tiny-f32-single"), "--out", file])
        #expect(onFile.status == 64)
        #expect(try fileBytes(file) == Array("do not touch".utf8))
        // No staging folder was left beside the destination.
        let parent = URL(fileURLWithPath: out.path).deletingLastPathComponent().path
        let base = URL(fileURLWithPath: out.path).lastPathComponent
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: parent).filter { $0.hasPrefix(".\(base).partial") }
                == [])
    }

    @Test func reshardGemmaToOneFile() throws {
        let parent = try TemporaryFolder("cli-reshard")
        defer { parent.remove() }
        let out = parent.file("gemma-one")
        let result = try Executable.run(["reshard", FixturePaths.path("gemma-tiny-bf16-sharded"), "--out", out])
        #expect(result.status == 0, "\(result.stderr)")
        let checkpoint = try checkResharded(out, source: "gemma-tiny-bf16-sharded")
        #expect(checkpoint.format == .single)
        #expect(checkpoint.fileNames == ["model.safetensors"])
        #expect(checkpoint.totalSize == 369_280)
        #expect(!FileManager.default.fileExists(atPath: out + "/" + ShardIndex.fileName))
        // Back to 100KB: the fixture's own shards, byte for byte (save_pretrained's layout, index included).
        let again = parent.file("gemma-100KB")
        let second = try Executable.run(["reshard", out, "--out", again, "--max-shard-size", "100KB"])
        #expect(second.status == 0, "\(second.stderr)")
        for name in ShardPlan.fileNames(count: 4) + [ShardIndex.fileName, "config.json", "generation_config.json"] {
            #expect(
                try fileBytes(again + "/" + name) == fileBytes(FixturePaths.path("gemma-tiny-bf16-sharded/" + name)),
                "\(name)")
        }
    }

    /// Loads every file `reshard` wrote with the reference implementation (Python safetensors 0.8) and
    /// compares each tensor's bytes with the source's digests.
    @Test(
        .enabled(
            if: PythonSafetensors.available,
            "python3 with safetensors + numpy is needed for the interop check; skipped otherwise"))
    func pythonLoadsReshardedFiles() throws {
        let parent = try TemporaryFolder("cli-python")
        defer { parent.remove() }
        let cases = [
            ("llama-tiny-f32-single", FixturePaths.path("llama-tiny-f32-single"), "200KB"),
            ("gemma-tiny-bf16-sharded", FixturePaths.path("gemma-tiny-bf16-sharded"), "50KB"),
            ("dtypes", FixturePaths.path("dtypes/dtypes.safetensors"), "1KB"),
        ]
        let script = """
            import hashlib, json, os, sys
            import numpy as np
            import safetensors, safetensors.numpy
            folder = sys.argv[1]
            out = {}
            for name in sorted(os.listdir(folder)):
                if not name.endswith(".safetensors"):
                    continue
                path = os.path.join(folder, name)
                raw = open(path, "rb").read()
                for tensor, info in safetensors.deserialize(raw):
                    out[tensor] = {"file": name, "dtype": info["dtype"], "shape": list(info["shape"]),
                                   "sha256": hashlib.sha256(bytes(info["data"])).hexdigest()}
                # numpy can represent these dtypes; compare its view of the bytes too.
                with safetensors.safe_open(path, framework="np") as f:
                    assert f.metadata() == {"format": "pt"}, f.metadata()
                    for tensor in f.keys():
                        if out[tensor]["dtype"] in ("F64", "F32", "F16", "I64", "I32", "I16", "I8", "U8", "BOOL"):
                            array = f.get_tensor(tensor)
                            assert hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest() == out[tensor]["sha256"], tensor
                            out[tensor]["numpy"] = True
            index = os.path.join(folder, "model.safetensors.index.json")
            if os.path.exists(index):
                data = json.load(open(index))
                assert set(data["weight_map"]) == set(out), "index and shards disagree"
                assert all(out[t]["file"] == f for t, f in data["weight_map"].items()), "index maps a tensor elsewhere"
                assert data["metadata"]["total_size"] == sum(os.path.getsize(os.path.join(folder, f)) - 8 - int.from_bytes(open(os.path.join(folder, f), "rb").read(8), "little") for f in set(data["weight_map"].values()))
            print(json.dumps(out, sort_keys=True))
            """
        for (fixture, source, size) in cases {
            let out = parent.file(fixture)
            let reshard = try Executable.run(["reshard", source, "--out", out, "--max-shard-size", size])
            #expect(reshard.status == 0, "\(reshard.stderr)")
            let python = try #require(runTool(TestPython.path, ["-c", script, out]))
            #expect(python.status == 0, "\(fixture): \(python.stderr)")
            let loaded = try #require(try JSONParser().parse(Array(python.stdout.utf8)).objectValue)
            let expected = try expectedTensors(fixture)
            #expect(loaded.count == expected.count, "\(fixture)")
            for tensor in expected {
                let got = try #require(loaded[tensor.name], "\(fixture): \(tensor.name)")
                #expect(got["sha256"]?.stringValue == tensor.sha256, "\(tensor.name)")
                #expect(got["dtype"]?.stringValue == tensor.dtype, "\(tensor.name)")
                #expect(
                    got["shape"]?.arrayValue?.compactMap { $0.numberValue?.intValue } == tensor.shape, "\(tensor.name)")
                if tensor.dtype != "BF16" && !tensor.dtype.hasPrefix("F8") {
                    #expect(got["numpy"] == .bool(true), "\(tensor.name) checked through numpy")
                }
            }
        }
    }
}

/// `run CHECKPOINT_DIR`: the folder is the whole command.
@Suite struct FolderRunTests {
    @Test(arguments: [
        ("gemma-tiny-bf16-sharded", "float16"), ("llama-tiny-f32-single", "bfloat16"),
    ])
    func aCheckpointFolderRunsEveryStrategy(fixture: String, other: String) throws {
        let out = try TemporaryFolder("folder-run")
        defer { out.remove() }
        let folder = FixturePaths.path(fixture)
        let run = try Executable.run([
            "run", folder, "--out", out.file("out"), "--work-dir", out.file("work"), "--save-scenario",
            out.file("saved.json"),
        ])
        #expect(run.status == 0, "\(run.stderr)")
        let results = try ResultsFile.load(path: out.file("out/\(fixture).json"))
        #expect(results.scenario.name == fixture)
        #expect(
            results.runs.map(\.id) == [
                "naive", "sharded", "low-memory", "mmap", "dtype-direct-\(other)", "load-then-cast-\(other)",
            ])
        #expect(results.runs.allSatisfy { $0.verdict == .pass }, "\(results.runs.map(\.verdictDetail))")
        #expect(results.scale.chosen == 1)
        #expect(FileManager.default.fileExists(atPath: out.file("out/\(fixture).md")))
        // The saved scenario is the one run: running it gives the same runs.
        let saved = try fileText(out.file("saved.json"))
        #expect(saved.contains(#""checkpoint": {"path": "\#(URL(fileURLWithPath: folder).standardizedFileURL.path)"}"#))
        let again = try Executable.run([
            "run", out.file("saved.json"), "--out", out.file("again"), "--work-dir", out.file("work"), "--only",
            "low-memory",
        ])
        #expect(again.status == 0, "\(again.stderr)")
        // A scenario file is already a file to edit.
        let refused = try Executable.run([
            "run", out.file("saved.json"), "--save-scenario", out.file("x.json"), "--out", out.file("x"),
        ])
        #expect(refused.status == 64)
        #expect(
            refused.stderrLines == [
                "bigmodel-bench: error: --save-scenario applies to a checkpoint folder; \(out.file("saved.json")) is not one"
            ])
    }
}
