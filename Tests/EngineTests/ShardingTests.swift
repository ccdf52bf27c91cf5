import Foundation
import OrderedCollections
import TestSupport
import Testing

@testable import Checkpoint
@testable import StrictJSON
@testable import TensorEngine

@Suite("Sharding")
struct ShardingTests {
    @Test func hubExampleSplit() {
        // huggingface_hub: sizes 4, 10, 30, 2, 2 with max 10 → [l1] [l3] [l2] [l4, l5]; the oversized tensor
        // gets its own shard at once, numbered before the shard still being filled.
        #expect(ShardPlan.split(sizes: [4, 10, 30, 2, 2], maxShardSize: 10) == [[0], [2], [1], [3, 4]])
    }

    @Test func splitBoundaries() {
        // Strictly greater: a shard filled to exactly the maximum is not split.
        #expect(ShardPlan.split(sizes: [5, 5], maxShardSize: 10) == [[0, 1]])
        #expect(ShardPlan.split(sizes: [5, 5, 5], maxShardSize: 10) == [[0, 1], [2]])
        #expect(ShardPlan.split(sizes: [10, 1], maxShardSize: 10) == [[0], [1]])
        #expect(ShardPlan.split(sizes: [10], maxShardSize: 10) == [[0]])
        #expect(ShardPlan.split(sizes: [6, 5], maxShardSize: 10) == [[0], [1]])
        // Larger than the maximum: alone, even as the first or last tensor.
        #expect(ShardPlan.split(sizes: [11], maxShardSize: 10) == [[0]])
        #expect(ShardPlan.split(sizes: [11, 11], maxShardSize: 10) == [[0], [1]])
        #expect(ShardPlan.split(sizes: [3, 11, 3], maxShardSize: 10) == [[1], [0, 2]])
        #expect(ShardPlan.split(sizes: [3, 11], maxShardSize: 10) == [[1], [0]])
        // Empty tensors never open a shard.
        #expect(ShardPlan.split(sizes: [0, 0, 10, 0], maxShardSize: 10) == [[0, 1, 2, 3]])
        // No tensors at all: one empty shard.
        #expect(ShardPlan.split(sizes: [], maxShardSize: 10) == [[]])
    }

    @Test func fileNames() {
        #expect(ShardPlan.fileNames(count: 1) == ["model.safetensors"])
        #expect(
            ShardPlan.fileNames(count: 4) == [
                "model-00001-of-00004.safetensors", "model-00002-of-00004.safetensors",
                "model-00003-of-00004.safetensors", "model-00004-of-00004.safetensors",
            ])
        let six = ShardPlan.fileNames(count: 6)
        #expect(six.count == 6)
        #expect(six.first == "model-00001-of-00006.safetensors")
        #expect(six.last == "model-00006-of-00006.safetensors")
        // Python's {:05d} widens past five digits.
        let many = ShardPlan.fileNames(count: 100_000)
        #expect(many.count == 100_000)
        #expect(many[0] == "model-00001-of-100000.safetensors")
        #expect(many[99_998] == "model-99999-of-100000.safetensors")
        #expect(many[99_999] == "model-100000-of-100000.safetensors")
    }

    /// The Gemma fixture's tensors in the model's registration order (embed_tokens; per layer q, k, v, o,
    /// gate, up, down, input_layernorm, post_attention_layernorm; norm), with their fixture specs.
    static func gemmaSpecsInModelOrder() throws -> [TensorSpec] {
        let expected = Dictionary(
            uniqueKeysWithValues: try expectedTensors("gemma-tiny-bf16-sharded").map { ($0.name, $0) })
        var names = ["model.embed_tokens.weight"]
        for layer in 0..<2 {
            for part in [
                "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj",
                "mlp.up_proj",
                "mlp.down_proj", "input_layernorm", "post_attention_layernorm",
            ] {
                names.append("model.layers.\(layer).\(part).weight")
            }
        }
        names.append("model.norm.weight")
        return try names.map { name in
            let tensor = try #require(expected[name], "\(name)")
            return TensorSpec(
                name: name, dtype: try #require(DType(safetensorsName: tensor.dtype)), shape: tensor.shape)
        }
    }

    @Test func gemmaPlanReproducesTheFixture() throws {
        let specs = try Self.gemmaSpecsInModelOrder()
        #expect(specs.count == 20)
        let plan = ShardPlan(tensors: specs, maxShardSize: 100_000)
        #expect(plan.shards.map(\.fileName) == ShardPlan.fileNames(count: 4))
        #expect(plan.shards.map(\.byteCount) == [131_072, 86_016, 86_272, 65_920])
        #expect(plan.shards.map { $0.tensors.count } == [1, 6, 8, 5])
        #expect(plan.totalSize == 369_280)
        #expect(plan.totalParameters == 184_640)
        #expect(plan.largestShardBytes == 131_072)
        #expect(!plan.isSingleFile)

        let fixtureBytes = try fileBytes(FixturePaths.path("gemma-tiny-bf16-sharded/model.safetensors.index.json"))
        let fixture = try ShardIndex.parse(fixtureBytes, path: "index")
        // Same mapping (the fixture lists it sorted, the plan in split order).
        #expect(
            Dictionary(uniqueKeysWithValues: plan.weightMap.map { ($0.key, $0.value) })
                == Dictionary(uniqueKeysWithValues: fixture.weightMap.map { ($0.key, $0.value) }))
        let index = try #require(plan.index)
        #expect(index.serialized() == fixtureBytes)
        #expect(fixtureBytes.last == 0x0A)
        #expect(fixtureBytes.count == 1701)

        // Each planned shard holds exactly the tensors of the fixture's shard file.
        for shard in plan.shards {
            let file = try SafetensorsFile(path: FixturePaths.path("gemma-tiny-bf16-sharded/" + shard.fileName))
            #expect(Set(file.tensors.keys) == Set(shard.tensors.map(\.name)), "\(shard.fileName)")
            #expect(file.header.dataByteCount == shard.byteCount)
        }
    }

    @Test func singleShardHasNoIndex() throws {
        let specs = try Self.gemmaSpecsInModelOrder()
        let plan = ShardPlan(tensors: specs, maxShardSize: 369_280)
        #expect(plan.isSingleFile)
        #expect(plan.shards.map(\.fileName) == ["model.safetensors"])
        #expect(plan.index == nil)
        // One byte less and the last tensor (norm, 128 bytes) spills into a second shard.
        let split = ShardPlan(tensors: specs, maxShardSize: 369_279)
        #expect(split.shards.map { $0.tensors.map(\.name) }.last == ["model.norm.weight"])
    }

    @Test func indexParsesAndSerializesLikeTransformers() throws {
        let fixtureBytes = try fileBytes(FixturePaths.path("gemma-tiny-bf16-sharded/model.safetensors.index.json"))
        let index = try ShardIndex.parse(fixtureBytes, path: "index")
        #expect(index.totalSize == 369_280)
        #expect(index.totalParameters == 184_640)
        #expect(index.weightMap.count == 20)
        #expect(index.shardFileNames == ShardPlan.fileNames(count: 4))
        #expect(index.serialized() == fixtureBytes)

        // Other metadata entries survive, sorted with the rest; older float total_size is accepted when integral.
        let custom = try ShardIndex.parse(
            Array(#"{"weight_map":{"b":"s2","a":"s1"},"metadata":{"zeta":[1],"total_size":1.6e1,"alpha":"x"}}"#.utf8),
            path: "i")
        #expect(custom.totalSize == 16)
        #expect(custom.totalParameters == nil)
        #expect(custom.shardFileNames == ["s1", "s2"])
        let text = String(decoding: custom.serialized(), as: UTF8.self)
        #expect(
            text
                == "{\n  \"metadata\": {\n    \"alpha\": \"x\",\n    \"total_size\": 16,\n    \"zeta\": [\n      1\n    ]\n  },\n  \"weight_map\": {\n    \"a\": \"s1\",\n    \"b\": \"s2\"\n  }\n}\n"
        )
        // metadata may be absent or null.
        #expect(try ShardIndex.parse(Array(#"{"weight_map":{},"metadata":null}"#.utf8), path: "i").totalSize == nil)
    }

    @Test(arguments: [
        #"[]"#,
        #"{"metadata":{}}"#,
        #"{"weight_map":[]}"#,
        #"{"weight_map":{"a":1}}"#,
        #"{"weight_map":{"a":null}}"#,
        #"{"weight_map":{"a":"s","a":"t"}}"#,
        #"{"weight_map":{},"metadata":[]}"#,
        #"{"weight_map":{},"metadata":{"total_size":-1}}"#,
        #"{"weight_map":{},"metadata":{"total_size":1.5}}"#,
        #"{"weight_map":{},"metadata":{"total_size":"16"}}"#,
        #"{"weight_map":{},"metadata":{"total_parameters":1e30}}"#,
        #"{"weight_map":{},}"#,
    ])
    func invalidIndexes(text: String) throws {
        let error = try #require(throws: CheckpointError.self) {
            try ShardIndex.parse(Array(text.utf8), path: "bad.index.json")
        }
        #expect(error.rule == .invalidIndex)
        #expect(error.source == "bad.index.json")
    }
}
