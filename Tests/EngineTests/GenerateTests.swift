import Foundation
import TestSupport
import Testing

@testable import Checkpoint
@testable import Loading
@testable import Models
@testable import OSLayer
@testable import StrictJSON
@testable import TensorEngine

/// `generate`: the same files, index and weight_map `save_pretrained` writes for a config, dtype and shard size.
@Suite struct GenerateTests {
    @Test func gemmaFixtureLayoutIsReproduced() throws {
        let folder = try TemporaryFolder("gen-gemma")
        defer { folder.remove() }
        let config = try ModelConfig.load(path: FixturePaths.path("gemma-tiny-bf16-sharded/config.json"))
        let synthetic = try SyntheticCheckpoint(config: config, dtype: .bf16, maxShardSize: 100_000, seed: 7, scale: 1)
        try synthetic.write(to: folder.file("out"))
        // The index is byte-identical: same weight_map, total_size 369280, total_parameters 184640.
        #expect(
            try fileBytes(folder.file("out/model.safetensors.index.json"))
                == fileBytes(FixturePaths.path("gemma-tiny-bf16-sharded/model.safetensors.index.json")))
        // Every shard holds the same tensors with the same shapes at the same offsets (headers identical).
        for name in ShardPlan.fileNames(count: 4) {
            let ours = try SafetensorsFile(path: folder.file("out/" + name))
            let theirs = try SafetensorsFile(path: FixturePaths.path("gemma-tiny-bf16-sharded/" + name))
            #expect(ours.header == theirs.header, "\(name)")
            #expect(ours.fileSize == theirs.fileSize)
        }
        // config.json keeps every field and says bfloat16.
        let written = try ModelConfig.load(path: folder.file("out/config.json"))
        #expect(try written.dtype() == .bf16)
        #expect(written.fields.count == config.fields.count)
    }

    @Test func llamaFixtureLayoutIsReproduced() throws {
        let folder = try TemporaryFolder("gen-llama")
        defer { folder.remove() }
        let config = try ModelConfig.load(path: FixturePaths.path("llama-tiny-f32-single/config.json"))
        try SyntheticCheckpoint(config: config, dtype: .f32, maxShardSize: 5_000_000_000, seed: 0, scale: 1).write(
            to: folder.file("out"))
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: folder.file("out")).sorted() == [
                "config.json", "model.safetensors",
            ])
        let ours = try SafetensorsFile(path: folder.file("out/model.safetensors"))
        let theirs = try SafetensorsFile(path: FixturePaths.path("llama-tiny-f32-single/model.safetensors"))
        #expect(ours.header == theirs.header)
        #expect(ours.fileSize == 658_792)
    }

    /// Values: deterministic in the seed, N(0, 0.02²) weights, zero-initialised Gemma norms, zeroed padding row.
    @Test func valuesFollowTransformersInit() throws {
        let folder = try TemporaryFolder("gen-values")
        defer { folder.remove() }
        let config = try ModelConfig.load(path: FixturePaths.path("gemma-tiny-bf16-sharded/config.json"))
        let synthetic = try SyntheticCheckpoint(config: config, dtype: .f32, maxShardSize: 100_000, seed: 1, scale: 1)
        try synthetic.write(to: folder.file("a"))
        try synthetic.write(to: folder.file("b"))
        let a = try Checkpoint(path: folder.file("a"))
        let b = try Checkpoint(path: folder.file("b"))
        var digestsA: [String] = []
        var digestsB: [String] = []
        try a.verify(digests: true) { digestsA.append($1) }
        try b.verify(digests: true) { digestsB.append($1) }
        #expect(digestsA == digestsB)

        let embed = try #require(a.tensors["model.embed_tokens.weight"])
        var bytes = [UInt8](repeating: 0, count: embed.tensor.byteCount)
        try bytes.withUnsafeMutableBytes { try a.files[embed.fileIndex].read(embed.tensor, into: $0) }
        let values = bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        // pad_token_id 0: row 0 (64 values) is zero, as nn.Embedding(padding_idx=0) leaves it.
        #expect(values[0..<64].allSatisfy { $0 == 0 })
        let rest = values[64...]
        let mean = rest.reduce(0.0) { $0 + Double($1) } / Double(rest.count)
        let std = (rest.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(rest.count))
            .squareRoot()
        #expect(abs(mean) < 0.001)
        #expect(abs(std - 0.02) < 0.0005)
        let norm = try #require(a.tensors["model.norm.weight"])
        var normBytes = [UInt8](repeating: 1, count: norm.tensor.byteCount)
        try normBytes.withUnsafeMutableBytes { try a.files[norm.fileIndex].read(norm.tensor, into: $0) }
        #expect(normBytes.allSatisfy { $0 == 0 })

        let other = try SyntheticCheckpoint(config: config, dtype: .f32, maxShardSize: 100_000, seed: 2, scale: 1)
        try other.write(to: folder.file("c"))
        var digestsC: [String] = []
        try Checkpoint(path: folder.file("c")).verify(digests: true) { digestsC.append($1) }
        #expect(digestsC != digestsA)
    }

    /// The seed document's BioMistral-7B layout: Mistral-7B in float32 with 5GB shards.
    @Test func mistral7bDryRunGivesTheSeedDocumentLayout() throws {
        let result = try Executable.run([
            "generate", "--config", Self.mistralConfigPath(), "--dtype", "float32", "--max-shard-size", "5GB",
            "--dry-run", "--json",
        ])
        #expect(result.status == 0)
        let plan = try JSONParser().parse(result.stdout)
        #expect(plan["total_size"]?.numberValue?.intValue == 28_966_928_384)
        #expect(plan["total_parameters"]?.numberValue?.intValue == 7_241_732_096)
        let files = try #require(plan["files"]?.arrayValue)
        #expect(files.count == 6)
        #expect(files.first?["name"]?.stringValue == "model-00001-of-00006.safetensors")
        #expect(
            files.compactMap { $0["tensor_bytes"]?.numberValue?.intValue } == [
                4_987_191_296, 4_899_110_912, 4_999_806_976, 4_999_806_976, 4_832_002_048, 4_249_010_176,
            ])
    }

    /// --scale keeps names, layers and shard count; first dimensions become max(1, round(d0·F)).
    @Test func scalingKeepsNamesLayersAndShardCount() throws {
        let config = try Self.gemma7bConfig()
        let full = try SyntheticCheckpoint(config: config, dtype: .bf16, maxShardSize: 5_000_000_000, seed: 0, scale: 1)
        let half = try SyntheticCheckpoint(
            config: config, dtype: .bf16, maxShardSize: 5_000_000_000, seed: 0, scale: 0.5)
        #expect(full.plan.totalSize == 17_075_361_792)  // 8,537,680,896 parameters, as google/gemma-7b's index says
        #expect(full.plan.shards.count == 4)
        #expect(half.plan.shards.count == 4)
        #expect(half.maxShardSize == 2_500_000_000)
        #expect(half.architecture.parameters.map(\.name) == full.architecture.parameters.map(\.name))
        let embed = try #require(half.architecture.parameters.first)
        #expect(embed.shape == [128_000, 3072])
        let q = try #require(
            half.architecture.parameters.first { $0.name == "model.layers.27.self_attn.q_proj.weight" })
        #expect(q.shape == [2048, 3072])
        // Python's round: half to even (0.5 → 0, 1.5 → 2, 2.5 → 2), never below 1.
        #expect(ModelArchitecture.scaledDimension(5, by: 0.1) == 1)
        #expect(ModelArchitecture.scaledDimension(25, by: 0.1) == 2)
        #expect(ModelArchitecture.scaledDimension(35, by: 0.1) == 4)
        #expect(ModelArchitecture.scaledDimension(3, by: 0.001) == 1)
    }

    @Test func badConfigsExit65NamingTheField() throws {
        let folder = try TemporaryFolder("gen-bad")
        defer { folder.remove() }
        let cases: [(String, String)] = [
            (
                #"{"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 4, "num_hidden_layers": 2}"#,
                "field 'vocab_size': missing"
            ),
            (
                #"{"model_type": "llama", "hidden_size": "64", "intermediate_size": 128, "num_attention_heads": 4, "num_hidden_layers": 2, "vocab_size": 10}"#,
                "field 'hidden_size': is a string"
            ),
            (
                #"{"model_type": "llama", "hidden_size": 64, "intermediate_size": -1, "num_attention_heads": 4, "num_hidden_layers": 2, "vocab_size": 10}"#,
                "field 'intermediate_size': is -1"
            ),
            (#"{"model_type": "gpt2", "n_embd": 64}"#, "field 'model_type': 'gpt2' is not an architecture"),
            (#"{"model_type": "llama", "torch_dtype": "float17"}"#, "field 'torch_dtype': unknown dtype 'float17'"),
            ("[1, 2]", "not an object"),
        ]
        for (index, (text, message)) in cases.enumerated() {
            let path = try folder.write("c\(index).json", text: text)
            let result = try Executable.run(["generate", "--config", path, "--out", folder.file("o\(index)")])
            #expect(result.status == 65, "\(text)")
            #expect(result.stderrLines.count == 1)
            #expect(result.stderr.contains(message), "\(result.stderr)")
            #expect(!FileManager.default.fileExists(atPath: folder.file("o\(index)")))
        }
        // An integer dtype is a usage error.
        let ok = try folder.write(
            "ok.json",
            text:
                #"{"model_type": "llama", "hidden_size": 8, "intermediate_size": 16, "num_attention_heads": 2, "num_hidden_layers": 1, "vocab_size": 10}"#
        )
        let integer = try Executable.run(["generate", "--config", ok, "--out", folder.file("int"), "--dtype", "int8"])
        #expect(integer.status == 64)
    }

    /// reshard --dtype: floating tensors converted bit-exactly as torch converts them, in model order, with the
    /// config's dtype updated; a conversion chunk smaller than a tensor changes nothing.
    @Test func reshardConvertsLikeTorch() throws {
        let folder = try TemporaryFolder("reshard-dtype")
        defer { folder.remove() }
        let source = try Checkpoint(path: FixturePaths.path("llama-tiny-f32-single"))
        let resharder = try Resharder(
            source: source, maxShardSize: 100_000, dtype: .bf16, order: try ModelOrder.parameterOrder(for: source))
        try resharder.write(to: folder.file("out"))
        let out = try Checkpoint(path: folder.file("out"))
        #expect(out.format == .sharded)
        #expect(out.totalSize == 328_320)
        #expect(out.tensors.values.allSatisfy { $0.tensor.dtype == .bf16 })
        let root = try JSONParser().parse(try fileBytes(FixturePaths.path("llama-tiny-f32-single/expected.json")))
        var checked = 0
        try out.verify(digests: true) { name, digest in
            #expect(digest == root["converted"]?[name]?["bfloat16"]?.stringValue, "\(name)")
            checked += 1
        }
        #expect(checked == 21)
        #expect(try ModelConfig.load(path: folder.file("out/config.json")).dtype() == .bf16)
        // The split follows the model's registration order (embed first, lm_head last), as save_pretrained's.
        let index = try #require(out.index)
        #expect(index.weightMap["model.embed_tokens.weight"] == ShardPlan.fileNames(count: out.files.count).first)
        #expect(index.weightMap["lm_head.weight"] == ShardPlan.fileNames(count: out.files.count).last)
        // An integer target is a usage error.
        #expect(throws: UsageError.self) { try Resharder(source: source, maxShardSize: 100_000, dtype: .i8) }
    }

    static func mistralConfigPath() throws -> String {
        let folder = try TemporaryFolder("mistral")
        return try folder.write(
            "config.json",
            text:
                #"{"model_type": "mistral", "hidden_size": 4096, "intermediate_size": 14336, "num_attention_heads": 32, "num_key_value_heads": 8, "num_hidden_layers": 32, "vocab_size": 32000, "tie_word_embeddings": false, "torch_dtype": "bfloat16"}"#
        )
    }

    static func gemma7bConfig() throws -> ModelConfig {
        let scenario = try JSONParser().parse(try fileBytes(FixturePaths.root + "/../../Scenarios/gemma7b.json"))
        let fields = try #require(scenario["model"]?["config"]?.objectValue)
        return ModelConfig(path: "gemma7b", fields: fields)
    }
}
