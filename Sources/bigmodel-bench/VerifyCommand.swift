import ArgumentParser
import Checkpoint
import TensorEngine

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract:
            "Run every check on a checkpoint and read every byte; print ok and the totals, or the first error (exit 65).",
        discussion: "Examples: bigmodel-bench verify /tmp/model")

    @Argument(help: "A .safetensors file, a model.safetensors.index.json, or a checkpoint folder.", completion: .file())
    var path: String

    func run() throws {
        try reportingErrors {
            let checkpoint = try Checkpoint(path: path)
            // verify asks whether the checkpoint is exactly what it claims: what `inspect` and `load` only warn about
            // is a failure here (README, "Checkpoints: what the reader enforces").
            if let first = checkpoint.inconsistencies.first { throw first }
            let bytes = try checkpoint.verify()
            print(
                "ok: \(checkpoint.files.count) file(s), \(checkpoint.tensors.count) tensors, \(checkpoint.totalParameters) parameters, "
                    + "\(bytes) tensor bytes read (\(ByteSize.binary(bytes))), largest shard \(checkpoint.largestShardBytes) bytes"
            )
        }
    }
}
