import ArgumentParser
import Checkpoint
import Models
import TensorEngine

struct ReshardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reshard",
        abstract:
            "Rewrite a checkpoint with another shard size and/or floating dtype, streaming (never holding the checkpoint).",
        discussion: """
            Tensors are split in the source's order (shard order, then data order within a shard), or in the model's \
            parameter order when the source's config.json names a known architecture, exactly as save_pretrained \
            splits. Only floating tensors are converted; integer and bool tensors are copied as they are. \
            config.json is copied with its dtype updated; other non-weight files are copied verbatim.

            Examples:
              bigmodel-bench reshard /tmp/model --out /tmp/model-2GB --max-shard-size 2GB
            """)

    @Argument(help: "The source checkpoint (file or folder).", completion: .file())
    var source: String

    @Option(name: .customLong("out"), help: "The destination folder (must not exist, or be empty).")
    var out: String

    @Option(
        help: "Largest shard, in tensor bytes (e.g. 5GB, 2GiB, 100KB). Default: 5GB, save_pretrained's 4.x default.",
        transform: SizeArgument.parse)
    var maxShardSize: SizeArgument = SizeArgument(argument: "5GB")!

    @Option(help: "Convert floating tensors to this dtype (float16, bfloat16, float32, float64).")
    var dtype: DTypeArgument?

    func run() throws {
        try reportingErrors {
            let target = try dtype?.castTarget()
            let checkpoint = try Checkpoint(path: source)
            let order = try ModelOrder.parameterOrder(for: checkpoint)
            let resharder = try Resharder(
                source: checkpoint, maxShardSize: maxShardSize.bytes, dtype: target, order: order)
            try FreeSpace.require(resharder.plan.totalSize + (resharder.plan.shards.count + 2) << 20, at: out)
            let progress = ProgressLine(total: resharder.plan.totalSize, label: "reshard")
            let trap = InterruptTrap()
            let summary = try resharder.write(to: out, progress: progress.update, isCancelled: trap.isInterrupted)
            progress.finish()
            print(
                "wrote \(summary.files.count) file(s) to \(summary.folder): \(summary.tensorBytes) tensor bytes in \(ByteSize.fixed(summary.seconds, digits: 2)) s"
            )
        }
    }
}
