import Foundation
import OrderedCollections
import TestSupport
import Testing

@testable import Checkpoint
@testable import OSLayer
@testable import StrictJSON
@testable import TensorEngine

/// Writes a shard holding F32 tensors `names`, each [2] = 8 bytes.
@discardableResult
private func writeShard(
    _ folder: TemporaryFolder, _ file: String, _ names: [String],
    metadata: OrderedDictionary<String, String>? = ["format": "pt"]
) throws -> String {
    let path = folder.file(file)
    try writeSafetensors(
        names.map { (TensorSpec(name: $0, dtype: .f32, shape: [2]), float32Bytes([1, 2])) }, metadata: metadata,
        to: path)
    return path
}

private func writeIndex(_ folder: TemporaryFolder, _ map: [(String, String)], totalSize: Int? = nil) throws {
    let entries = map.map { "\"\($0.0)\": \"\($0.1)\"" }.joined(separator: ", ")
    let size = totalSize ?? map.count * 8
    try folder.write(
        ShardIndex.fileName, text: "{\"metadata\": {\"total_size\": \(size)}, \"weight_map\": {\(entries)}}")
}

private func checkpointError(_ path: String) throws -> CheckpointError {
    try #require(throws: CheckpointError.self) { try Checkpoint(path: path) }
}

@Suite("Checkpoint folders")
struct CheckpointFolderTests {
    @Test func gemmaShardedFixture() throws {
        let folder = FixturePaths.path("gemma-tiny-bf16-sharded")
        for path in [folder, folder + "/", folder + "/model.safetensors.index.json"] {
            let checkpoint = try Checkpoint(path: path)
            #expect(checkpoint.format == .sharded)
            #expect(checkpoint.totalSize == 369_280)
            #expect(checkpoint.totalParameters == 184_640)
            #expect(checkpoint.largestShardBytes == 131_072)
            #expect(checkpoint.largestTensorBytes == 131_072)
            #expect(checkpoint.files.count == 4)
            #expect(checkpoint.fileNames == ShardPlan.fileNames(count: 4))
            #expect(checkpoint.tensors.count == 20)
            #expect(checkpoint.warnings == [])
            #expect(checkpoint.index?.totalSize == 369_280)
            #expect(checkpoint.configPath != nil)
            // Shard order, then data order within a shard.
            #expect(checkpoint.tensors.keys.first == "model.embed_tokens.weight")
            #expect(checkpoint.tensors.keys.last == "model.norm.weight")
            #expect(checkpoint.tensors["model.layers.1.mlp.gate_proj.weight"]?.fileIndex == 2)
        }
    }

    @Test func llamaSingleFixture() throws {
        let folder = FixturePaths.path("llama-tiny-f32-single")
        for path in [folder, folder + "/model.safetensors"] {
            let checkpoint = try Checkpoint(path: path)
            #expect(checkpoint.format == .single)
            #expect(checkpoint.index == nil)
            #expect(checkpoint.totalSize == 656_640)
            #expect(checkpoint.totalParameters == 164_160)
            #expect(checkpoint.largestShardBytes == 656_640)
            #expect(checkpoint.largestTensorBytes == 131_072)
            #expect(checkpoint.fileNames == ["model.safetensors"])
            #expect(checkpoint.tensors.count == 21)
            #expect(checkpoint.folder == folder)
            #expect(checkpoint.configPath == folder + "/config.json")
        }
    }

    @Test func dtypesFixtureFile() throws {
        let checkpoint = try Checkpoint(path: FixturePaths.path("dtypes/dtypes.safetensors"))
        #expect(checkpoint.format == .single)
        #expect(checkpoint.totalSize == 8_635)
        #expect(checkpoint.totalParameters == 2_381)
        #expect(checkpoint.largestShardBytes == 8_635)
        #expect(checkpoint.largestTensorBytes == 4_096)
        #expect(checkpoint.fileNames == ["dtypes.safetensors"])
        #expect(checkpoint.configPath == nil)
    }

    @Test(arguments: ["gemma-tiny-bf16-sharded", "llama-tiny-f32-single"])
    func verifyDigestsMatchExpected(folder: String) throws {
        let checkpoint = try Checkpoint(path: FixturePaths.path(folder))
        var digests: [String: String] = [:]
        // A small buffer forces several reads per large tensor.
        let bytes = try checkpoint.verify(digests: true, bufferBytes: 10_000) { digests[$0] = $1 }
        #expect(bytes == checkpoint.totalSize)
        let expected = try expectedTensors(folder)
        #expect(digests == Dictionary(uniqueKeysWithValues: expected.map { ($0.name, $0.sha256) }))
    }

    @Test func indexListsATensorMissingFromItsShard() throws {
        let folder = try TemporaryFolder("ckpt")
        defer { folder.remove() }
        try writeShard(folder, "model-00001-of-00001.safetensors", ["a"])
        try writeIndex(folder, [("a", "model-00001-of-00001.safetensors"), ("b", "model-00001-of-00001.safetensors")])
        let error = try checkpointError(folder.path)
        #expect(error.rule == .tensorNotInShard)
        #expect(error.location == "b")
        #expect(error.source == folder.file("model-00001-of-00001.safetensors"))
    }

    @Test func shardTensorNotInIndex() throws {
        let folder = try TemporaryFolder("ckpt")
        defer { folder.remove() }
        try writeShard(folder, "model-00001-of-00001.safetensors", ["a", "b"])
        try writeIndex(folder, [("a", "model-00001-of-00001.safetensors")])
        let error = try checkpointError(folder.path)
        #expect(error.rule == .tensorNotInIndex)
        #expect(error.location == "b")
    }

    @Test func shardTensorMappedToAnotherShard() throws {
        let folder = try TemporaryFolder("ckpt")
        defer { folder.remove() }
        try writeShard(folder, "model-00001-of-00002.safetensors", ["a"])
        try writeShard(folder, "model-00002-of-00002.safetensors", ["a", "b"])
        try writeIndex(folder, [("a", "model-00002-of-00002.safetensors"), ("b", "model-00002-of-00002.safetensors")])
        // Shard 1 is opened only if the index names it; here it does not, so shard 2 alone is consistent.
        #expect(try Checkpoint(path: folder.path).tensors.count == 2)
        try writeIndex(folder, [("a", "model-00002-of-00002.safetensors"), ("b", "model-00001-of-00002.safetensors")])
        let error = try checkpointError(folder.path)
        #expect(error.rule == .tensorNotInIndex)
        #expect(error.location == "a")
        #expect(error.source == folder.file("model-00001-of-00002.safetensors"))
    }

    @Test func symlinkEscapingTheFolder() throws {
        let outside = try TemporaryFolder("outside")
        defer { outside.remove() }
        let target = try writeShard(outside, "real.safetensors", ["a"])
        let folder = try TemporaryFolder("ckpt")
        defer { folder.remove() }
        try FileManager.default.createSymbolicLink(
            atPath: folder.file("model-00001-of-00001.safetensors"), withDestinationPath: target)
        try writeIndex(folder, [("a", "model-00001-of-00001.safetensors")])
        let error = try checkpointError(folder.path)
        #expect(error.rule == .shardOutsideFolder)
        #expect(error.source == folder.file(ShardIndex.fileName))

        // A link that stays inside the folder is fine, and so is reaching the folder itself through a link.
        try FileManager.default.removeItem(atPath: folder.file("model-00001-of-00001.safetensors"))
        try FileManager.default.createDirectory(atPath: folder.file("blobs"), withIntermediateDirectories: true)
        try writeShard(folder, "blobs/abc123", ["a"])
        try FileManager.default.createSymbolicLink(
            atPath: folder.file("model-00001-of-00001.safetensors"), withDestinationPath: "blobs/abc123")
        #expect(try Checkpoint(path: folder.path).tensors.count == 1)
        try FileManager.default.createSymbolicLink(
            atPath: outside.file("link-to-ckpt"), withDestinationPath: folder.path)
        #expect(try Checkpoint(path: outside.file("link-to-ckpt")).tensors.count == 1)

        // A sibling folder whose name extends the checkpoint's is still outside ("/x/ckpt" vs "/x/ckpt-2").
        let sibling = folder.path + "-2"
        try FileManager.default.createDirectory(atPath: sibling, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: sibling) }
        try FileManager.default.moveItem(atPath: folder.file("blobs/abc123"), toPath: sibling + "/abc123")
        try FileManager.default.removeItem(atPath: folder.file("model-00001-of-00001.safetensors"))
        try FileManager.default.createSymbolicLink(
            atPath: folder.file("model-00001-of-00001.safetensors"), withDestinationPath: sibling + "/abc123")
        #expect(try checkpointError(folder.path).rule == .shardOutsideFolder)
    }

    @Test(arguments: ["ABSOLUTE", "../x.safetensors", "sub/../model.safetensors", ""])
    func shardNamesOutsideTheFolder(name: String) throws {
        let folder = try TemporaryFolder("ckpt")
        defer { folder.remove() }
        // The absolute name points at a real, valid shard inside the folder itself: refused by name anyway.
        let real = try writeShard(folder, "model.safetensors", ["a"])
        let shardName = name == "ABSOLUTE" ? real : name
        try writeIndex(folder, [("a", shardName)])
        // Opened through the index: a folder holding model.safetensors opens as a single file, as transformers does.
        let error = try checkpointError(folder.file(ShardIndex.fileName))
        #expect(error.rule == .shardOutsideFolder)
    }

    @Test func shardInASubfolder() throws {
        let folder = try TemporaryFolder("ckpt")
        defer { folder.remove() }
        try FileManager.default.createDirectory(atPath: folder.file("sub"), withIntermediateDirectories: true)
        try writeShard(folder, "sub/model-00001-of-00001.safetensors", ["a"])
        try writeIndex(folder, [("a", "sub/model-00001-of-00001.safetensors")])
        let checkpoint = try Checkpoint(path: folder.path)
        #expect(checkpoint.fileNames == ["sub/model-00001-of-00001.safetensors"])
    }

    @Test func folderWithoutCheckpoint() throws {
        let folder = try TemporaryFolder("ckpt")
        defer { folder.remove() }
        let empty = try checkpointError(folder.path)
        #expect(empty.rule == .noCheckpoint)
        #expect(empty.source == folder.path)
        try folder.write("config.json", text: "{}")
        try writeShard(folder, "model-00001-of-00001.safetensors", ["a"])  // a shard without an index is not found
        #expect(try checkpointError(folder.path).rule == .noCheckpoint)
        #expect(empty.category == .badData)
    }

    @Test func missingPathIsNoInput() throws {
        let error = try #require(throws: FileIOError.self) { try Checkpoint(path: "/nonexistent-cptests/model") }
        #expect(error.isMissing)
        #expect(error.category == .missingInput)
    }

    @Test func unsupportedFormat() throws {
        let folder = try TemporaryFolder("ckpt")
        defer { folder.remove() }
        try writeShard(folder, "model.safetensors", ["a"], metadata: ["format": "np"])
        let error = try checkpointError(folder.path)
        #expect(error.rule == .unsupportedFormat)
        #expect(error.source == folder.file("model.safetensors"))
        // The formats transformers loads, and no format at all, are accepted.
        for format in ["pt", "tf", "flax", "mlx"] {
            try writeShard(folder, "model.safetensors", ["a"], metadata: ["format": format])
            #expect(try Checkpoint(path: folder.path).tensors.count == 1, "\(format)")
        }
        try writeShard(folder, "model.safetensors", ["a"], metadata: nil)
        #expect(try Checkpoint(path: folder.path).tensors.count == 1)
        try writeShard(folder, "model.safetensors", ["a"], metadata: ["other": "x"])
        #expect(try Checkpoint(path: folder.path).tensors.count == 1)
        // In a sharded checkpoint too.
        try FileManager.default.removeItem(atPath: folder.file("model.safetensors"))
        try writeShard(folder, "model-00001-of-00001.safetensors", ["a"], metadata: ["format": "PT"])
        try writeIndex(folder, [("a", "model-00001-of-00001.safetensors")])
        #expect(try checkpointError(folder.path).rule == .unsupportedFormat)
    }

    @Test func wrongTotalSizeIsAWarning() throws {
        let folder = try TemporaryFolder("ckpt")
        defer { folder.remove() }
        try writeShard(folder, "model-00001-of-00002.safetensors", ["a"])
        try writeShard(folder, "model-00002-of-00002.safetensors", ["b"])
        try writeIndex(
            folder, [("a", "model-00001-of-00002.safetensors"), ("b", "model-00002-of-00002.safetensors")],
            totalSize: 999)
        let checkpoint = try Checkpoint(path: folder.path)
        #expect(checkpoint.inconsistencies.map(\.rule) == [.totalSizeMismatch])
        #expect(
            checkpoint.warnings == [
                "model.safetensors.index.json: TotalSizeMismatch: metadata.total_size is 999 but the shards hold 16 tensor bytes"
            ])
        #expect(checkpoint.totalSize == 16)
        #expect(checkpoint.largestShardBytes == 8)
        // The right figure gives no warning.
        try writeIndex(
            folder, [("a", "model-00001-of-00002.safetensors"), ("b", "model-00002-of-00002.safetensors")],
            totalSize: 16)
        #expect(try Checkpoint(path: folder.path).warnings == [])
    }

    @Test func invalidIndexAndBadShard() throws {
        let folder = try TemporaryFolder("ckpt")
        defer { folder.remove() }
        try folder.write(ShardIndex.fileName, text: "{\"weight_map\": {\"a\": 1}}")
        let invalid = try checkpointError(folder.path)
        #expect(invalid.rule == .invalidIndex)
        #expect(invalid.location == "a")
        // A malformed shard reports the safetensors rule, naming the shard.
        try folder.write("model-00001-of-00001.safetensors", [1, 2, 3])
        try writeIndex(folder, [("a", "model-00001-of-00001.safetensors")])
        let shard = try #require(throws: SafetensorsError.self) { try Checkpoint(path: folder.path) }
        #expect(shard.rule == .headerTooSmall)
        #expect(shard.source == folder.file("model-00001-of-00001.safetensors"))
    }
}
