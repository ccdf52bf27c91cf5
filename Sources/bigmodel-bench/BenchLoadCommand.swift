import ArgumentParser
import Checkpoint
import Foundation
import Loading
import Models
import StrictJSON
import TensorEngine

/// `bigmodel-bench bench load`: the generator's write speed and each strategy's load speed on a generated
/// checkpoint of about `--size` (the Llama-3-8B shape, scaled), in this process, median of `--repeat` runs.
struct BenchLoadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Times generate and every loading strategy on a generated checkpoint (default about 1 GB).")

    @Option(help: "Approximate checkpoint size (tensor bytes), e.g. 1GB.")
    var size: SizeArgument = SizeArgument(argument: "1GB")!

    @Option(name: .customLong("repeat"), help: "Timed runs per strategy; the median is printed.")
    var repeatCount: Int = 3

    @Option(help: "Folder for the generated checkpoint (removed afterwards).")
    var workDir: String = ".bigmodel-bench/bench"

    /// Llama-3-8B's shape (meta-llama/Meta-Llama-3-8B config.json), bfloat16.
    static let config = #"{"model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336, "num_attention_heads": 32, "num_key_value_heads": 8, "num_hidden_layers": 32, "vocab_size": 128256, "tie_word_embeddings": false, "torch_dtype": "bfloat16", "initializer_range": 0.02}"#

    func run() throws {
        try reportingErrors {
            let config = try ModelConfig.parse(Array(Self.config.utf8), path: "Llama-3-8B")
            let full = try SyntheticCheckpoint(config: config, dtype: .bf16, maxShardSize: 5_000_000_000, seed: 0, scale: 1)
            let scale = min(1, Double(size.bytes) / Double(full.plan.totalSize))
            let synthetic = try SyntheticCheckpoint(config: config, dtype: .bf16, maxShardSize: 5_000_000_000, seed: 0, scale: scale)
            let folder = workDir + "/llama3-8b-x\(ByteSize.fixed(scale, digits: 4))-\(getpid())"
            try? FileManager.default.createDirectory(atPath: workDir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: folder) }
            try FreeSpace.require(synthetic.plan.totalSize * 2, at: workDir)

            let written = try synthetic.write(to: folder)
            let bytes = written.tensorBytes
            print("bench load: Llama-3-8B shape at scale \(ByteSize.fixed(scale, digits: 4)), bfloat16, \(synthetic.plan.shards.count) shards, \(bytes) tensor bytes (\(ByteSize.decimal(bytes)))")
            print("GB/s = checkpoint tensor bytes / seconds (decimal GB); median of \(repeatCount) runs; in-process, page cache warm after the first read")
            print("generate (synthetic values, fsync per file): \(ByteSize.fixed(written.seconds, digits: 3)) s, \(ByteSize.fixed(Double(bytes) / written.seconds / 1e9, digits: 2)) GB/s")

            let checkpoint = try Checkpoint(path: folder)
            _ = try checkpoint.verify()  // warm the page cache so every strategy starts equal
            var rows = [["strategy", "dtype", "median s", "GB/s", "ledger peak", "predicted"]]
            let cases: [(StrategyName, DType?)] = [(.naive, nil), (.sharded, nil), (.lowMemory, nil), (.loadThenCast, .f16), (.dtypeDirect, .f16)]
            for (name, dtype) in cases {
                var times: [Double] = []
                var peak = 0
                var predicted = 0
                for _ in 0..<repeatCount {
                    let plan = try LoadPlan(checkpoint: checkpoint, requested: dtype)
                    let ledger = MemoryLedger()
                    let start = ContinuousClock.now
                    let model = try name.strategy.load(plan, ledger: ledger, phases: PhaseLog(ledger: ledger))
                    times.append((ContinuousClock.now - start).inSeconds)
                    withExtendedLifetime(model) {}
                    peak = ledger.peakBytes
                    predicted = name.strategy.predictedPeakBytes(plan.figures)
                }
                let median = times.sorted()[times.count / 2]
                rows.append([
                    name.rawValue, dtype?.torchName ?? "auto", ByteSize.fixed(median, digits: 3), ByteSize.fixed(Double(bytes) / median / 1e9, digits: 2),
                    ByteSize.binary(peak), peak == predicted ? "= predicted" : "≠ \(ByteSize.binary(predicted))",
                ])
            }
            print(TextTable.render(rows, rightAligned: [2, 3, 4]), terminator: "")
        }
    }
}
