import ArgumentParser
import Checkpoint
import Foundation
import Models
import OSLayer
import OrderedCollections
import Probes
import StrictJSON
import TensorEngine

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Write a Hugging Face–compatible checkpoint of a model with synthetic weights.",
        discussion: """
            The folder holds config.json (with the dtype), the shards and the index, split in the model's parameter \
            order with tied weights stored once — the same weight_map save_pretrained writes for that config, dtype \
            and shard size. Values are deterministic in the seed. --scale F shrinks every tensor's first dimension \
            to max(1, round(d0·F)) and the shard size by F, keeping names, layers and shard count.

            Examples:
              bigmodel-bench generate --config config.json --out /tmp/model --dtype bfloat16
              bigmodel-bench generate --config config.json --scale 0.25 --scaling layers --dry-run
            """)

    @Option(help: "The model's config.json (model_type llama, mistral, gemma or qwen2).")
    var config: String

    @Option(
        name: .customLong("out"),
        help: "The destination folder (must not exist, or be empty). Not needed with --dry-run.")
    var out: String?

    @Option(help: "Weight dtype (default: the config's dtype, else float32).")
    var dtype: DTypeArgument?

    @Option(help: "Largest shard in tensor bytes at full size. (default: 5GB)", transform: SizeArgument.parse)
    var maxShardSize: SizeArgument = SizeArgument(argument: "5GB")!

    @Option(help: "Seed of the synthetic values.")
    var seed: UInt64 = 0

    @Option(help: "Shrink factor in (0, 1].")
    var scale: Double = 1

    @Option(
        help:
            "How to shrink: rows (every tensor's first dimension; only bigmodel-bench loads it) or layers (num_hidden_layers: a real smaller model any loader can load).",
        transform: SyntheticCheckpoint.Scaling.parseNamed)
    var scaling: SyntheticCheckpoint.Scaling = .rows

    @Flag(help: "Print the shard plan and write nothing.")
    var dryRun = false

    @Flag(help: "With --dry-run: print the plan as JSON.")
    var json = false

    func run() throws {
        try reportingErrors {
            let modelConfig = try ModelConfig.load(path: config)
            let target = try dtype?.castTarget() ?? Self.configDType(modelConfig) ?? .f32
            let synthetic = try SyntheticCheckpoint(
                config: modelConfig, dtype: target, maxShardSize: maxShardSize.bytes, seed: seed, scale: scale,
                scaling: scaling)
            let plan = synthetic.plan
            if dryRun {
                if json {
                    print(JSONWriter.pretty.string(Self.planJSON(plan, synthetic: synthetic)))
                } else {
                    print(Self.planText(plan, synthetic: synthetic), terminator: "")
                }
                return
            }
            guard let out else { throw UsageError("--out DIR is required unless --dry-run is given") }
            try FreeSpace.require(plan.totalSize + (plan.shards.count + 2) * 1 << 20, at: out)
            let progress = ProgressLine(total: plan.totalSize, label: "generate")
            let summary = try synthetic.write(
                to: out, progress: progress.update, isCancelled: InterruptTrap().isInterrupted)
            progress.finish()
            let rate = summary.seconds > 0 ? Double(summary.tensorBytes) / summary.seconds / 1e9 : 0
            print(
                "wrote \(summary.files.count) file(s) to \(summary.folder): \(summary.tensorBytes) tensor bytes "
                    + "(\(ByteSize.decimal(summary.tensorBytes))) in \(ByteSize.fixed(summary.seconds, digits: 2)) s, \(ByteSize.fixed(rate, digits: 2)) GB/s"
            )
        }
    }

    static func planJSON(_ plan: ShardPlan, synthetic: SyntheticCheckpoint) -> JSONValue {
        .object([
            "model_type": .string(synthetic.architecture.modelType),
            "dtype": .string(synthetic.dtype.torchName),
            "scale": JSONValue(synthetic.scale),
            "max_shard_size": JSONValue(plan.maxShardSize),
            "total_size": JSONValue(plan.totalSize),
            "total_parameters": JSONValue(plan.totalParameters),
            "files": .array(
                plan.shards.map { shard in
                    .object([
                        "name": .string(shard.fileName),
                        "tensors": JSONValue(shard.tensors.count),
                        "tensor_bytes": JSONValue(shard.byteCount),
                    ])
                }),
        ])
    }

    static func planText(_ plan: ShardPlan, synthetic: SyntheticCheckpoint) -> String {
        var rows = [["file", "tensors", "tensor bytes", "size"]]
        for shard in plan.shards {
            rows.append([
                shard.fileName, String(shard.tensors.count), String(shard.byteCount), ByteSize.decimal(shard.byteCount),
            ])
        }
        var out =
            "\(synthetic.architecture.className) in \(synthetic.dtype.torchName), scale \(synthetic.scale), max shard \(plan.maxShardSize) bytes\n"
        out += TextTable.render(rows, rightAligned: [1, 2, 3])
        out +=
            "total_size \(plan.totalSize) (\(ByteSize.decimal(plan.totalSize)), \(ByteSize.binary(plan.totalSize))), total_parameters \(plan.totalParameters)\n"
        return out
    }

    /// The config's floating dtype; a non-floating one (`torch_dtype: "int8"`) is bad data, not a reason to write
    /// float32 silently and rewrite the config.
    static func configDType(_ config: ModelConfig) throws -> DType? {
        guard let dtype = try config.dtype() else { return nil }
        guard dtype.isConvertible else {
            throw ModelConfigError(
                path: config.path, field: "torch_dtype",
                "is \(dtype.torchName), not a floating dtype the weights can be generated in (\(DType.convertibleTorchNames)); give --dtype"
            )
        }
        return dtype
    }
}

/// Free-space checks before writing big files.
enum FreeSpace {
    /// Throws an I/O error (74) when the filesystem holding `path` (or its nearest existing parent) has fewer
    /// than `bytes` available (Probes' `statvfs` reading).
    static func require(_ bytes: Int, at path: String) throws {
        var probe = URL(fileURLWithPath: path).standardizedFileURL
        while !FileManager.default.fileExists(atPath: probe.path), probe.path != "/" { probe.deleteLastPathComponent() }
        guard let disk = try? DiskSpace.of(path: probe.path) else { return }
        if disk.readOnly {
            throw FileIOError(path: path, operation: "write", reason: "\(probe.path) is on a read-only file system")
        }
        let free = disk.availableBytes
        if free < bytes {
            throw FileIOError(
                path: path, operation: "write",
                reason:
                    "needs \(bytes) bytes (\(ByteSize.decimal(bytes))) but only \(free) (\(ByteSize.decimal(free))) are available"
            )
        }
    }
}
