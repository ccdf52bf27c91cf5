import ArgumentParser
import Checkpoint
import Foundation
import Harness
import Models
import ResultsFormat
import TensorEngine

/// `bigmodel-bench bench load`: the floor, every strategy and the Python stack's loaders on one checkpoint,
/// medians of `--repeat` interleaved rounds, with the ratios (``LoadBenchmark``).
struct BenchLoadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract:
            "Times the read floor, every loading strategy and torch/safetensors on one checkpoint, with the ratios.",
        discussion: """
            GB/s is the checkpoint's tensor bytes over a case's seconds (decimal GB). '× floor time' is a case's median \
            seconds over the fastest floor's (1.00× = as fast as reading the files; the same figure as run's × floor); \
            '× torch' is torch safe_open+clone's median seconds over the case's (2.0× = twice as fast). \
            Without --checkpoint a checkpoint of about --size is generated (Llama-3-8B's shape, bfloat16) and removed \
            afterwards. The peers need a Python with torch and safetensors (--python, else $BIGMODEL_BENCH_PYTHON, else the venv \
            scripts/setup --test makes, else python3); without one they are skipped and the report says why.

            Example: bigmodel-bench bench load --checkpoint .bigmodel-bench/checkpoints/gemma7b-bfloat16-x0.390-s0-… --repeat 5

            Examples:
              bigmodel-bench bench load --checkpoint .bigmodel-bench/checkpoints/<name> --repeat 5
            """)

    @Option(help: "An existing checkpoint (folder, index or .safetensors file) to time.")
    var checkpoint: String?

    @Option(
        help: "Without --checkpoint: the generated checkpoint's approximate tensor bytes. (default: 1GB)",
        transform: SizeArgument.parse)
    var size: SizeArgument = SizeArgument(argument: "1GB")!

    @Option(name: .customLong("repeat"), help: "Rounds: every case runs once per round; medians over the rounds.")
    var repeatCount: Int = 5

    @Option(help: "The Python interpreter of the peers.")
    var python: String?

    @Flag(help: "Skip the torch and safetensors peers.")
    var noPeers = false

    @Option(
        help:
            "warm: the page cache filled once before the rounds; cold: every file evicted (posix_fadvise DONTNEED) before every case."
    )
    var cache: CacheArgument = .warm

    // Repeated rather than comma-separated: floor names hold commas.
    @Option(
        help: ArgumentHelp(
            "Time only this case (repeat for more), e.g. --only 'floor, 16 in flight' --only low-memory.",
            valueName: "name"))
    var only: [String] = []

    @Flag(help: "Print the figures as JSON.")
    var json = false

    @Option(help: "Folder for a generated checkpoint (removed afterwards).")
    var workDir: String = ".bigmodel-bench/bench"

    func validate() throws {
        if repeatCount < 1 || repeatCount > 100 { throw ValidationError("--repeat must be in 1…100") }
    }

    func run() throws {
        try reportingErrors {
            let generated = checkpoint == nil ? try BenchCheckpoint.generate(size: size.bytes, workDir: workDir) : nil
            defer { if let generated { try? FileManager.default.removeItem(atPath: generated) } }
            var options = LoadBenchmark.Options(
                checkpoint: checkpoint ?? generated ?? "", repeats: repeatCount, python: python, peers: !noPeers)
            options.cache = cache.mode
            options.only = only.isEmpty ? nil : only
            let report = try LoadBenchmark(options: options).run(progress: { printProgress("bench load: " + $0) })
            print(
                json
                    ? String(decoding: try ResultsCodec.encode(report), as: UTF8.self)
                    : LoadBenchmarkTable.render(report), terminator: "")
        }
    }
}

/// The checkpoint `bench load` generates when none is given.
enum BenchCheckpoint {
    /// Llama-3-8B's shape (meta-llama/Meta-Llama-3-8B config.json), bfloat16.
    static let config =
        #"{"model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336, "num_attention_heads": 32, "num_key_value_heads": 8, "num_hidden_layers": 32, "vocab_size": 128256, "tie_word_embeddings": false, "torch_dtype": "bfloat16", "initializer_range": 0.02}"#

    static func generate(size: Int, workDir: String) throws -> String {
        let config = try ModelConfig.parse(Array(config.utf8), path: "Llama-3-8B")
        let full = try SyntheticCheckpoint(config: config, dtype: .bf16, maxShardSize: 5_000_000_000, seed: 0, scale: 1)
        let scale = min(1, Double(size) / Double(full.plan.totalSize))
        let synthetic = try SyntheticCheckpoint(
            config: config, dtype: .bf16, maxShardSize: 5_000_000_000, seed: 0, scale: scale)
        let folder = workDir + "/llama3-8b-x\(ByteSize.fixed(scale, digits: 4))-\(getpid())"
        try? FileManager.default.createDirectory(atPath: workDir, withIntermediateDirectories: true)
        try FreeSpace.require(synthetic.plan.totalSize * 2, at: workDir)
        let written = try synthetic.write(to: folder)
        printProgress(
            "bench load: generated Llama-3-8B's shape at scale \(ByteSize.fixed(scale, digits: 4)) (\(ByteSize.decimal(written.tensorBytes))) in \(ByteSize.fixed(written.seconds, digits: 2)) s"
        )
        return folder
    }
}

/// `bench load`'s table: one row per case.
enum LoadBenchmarkTable {
    static func render(_ report: LoadBenchmark.Report) -> String {
        let fastestFloor = fastestFloor(report)
        let floor = fastestFloor?.median ?? 0
        let torch = report.cases.first { $0.name == "torch safe_open+clone" }?.median
        // The fastest peer that ends with owned copies: a peer of mapped views is compared with mmap by eye.
        let bestPeer = report.cases.filter { $0.kind == .peer && $0.median > 0 && $0.ownsCopies != false }
            .map(\.median).min()
        let gb = Double(report.tensorBytes) / 1e9
        var rows = [
            [
                "case", "median s", "min – max s", "GB/s", "× floor time", "× torch", "× best copying peer",
                "memory peak",
            ]
        ]
        for c in report.cases {
            let median = c.median
            rows.append([
                c.name, ByteSize.fixed(median, digits: 3),
                "\(ByteSize.fixed(c.seconds.min() ?? 0, digits: 3)) – \(ByteSize.fixed(c.seconds.max() ?? 0, digits: 3))",
                median > 0 ? ByteSize.fixed(gb / median, digits: 2) : "-",
                median > 0 && floor > 0 ? ByteSize.fixed(median / floor, digits: 2) + "×" : "-",
                median > 0 ? torch.map { ByteSize.fixed($0 / median, digits: 2) + "×" } ?? "-" : "-",
                median > 0 ? bestPeer.map { ByteSize.fixed($0 / median, digits: 2) + "×" } ?? "-" : "-",
                peak(c),
            ])
        }
        var out =
            "bench load: \(report.checkpoint): \(report.tensorBytes) tensor bytes (\(ByteSize.decimal(report.tensorBytes))) in \(report.files) file(s), "
        out +=
            "\(report.cores) cores, medians of \(report.repeats) interleaved rounds after \(report.warmupRounds) uncounted, "
        out +=
            report.cache == .cold
            ? "page cache cold: every file evicted before every case\n" : "page cache warm\n"
        out += TextTable.render(rows, rightAligned: [1, 2, 3, 4, 5, 6, 7])
        if let fastestFloor {
            out +=
                "× floor time: a case's median over the fastest floor's, \(fastestFloor.name) (\(ByteSize.fixed(floor, digits: 3)) s)\n"
        }
        out += phaseLines(report, gigabytes: gb)
        out += firstTouchLines(report)
        if let why = report.peersSkipped { out += "peers skipped: \(why)\n" }
        for (peer, why) in (report.peersUnavailable ?? [:]).sorted(by: { $0.key < $1.key }) {
            out += "\(peer.hasPrefix("floor") ? "" : "peer ")\(peer) unavailable: \(why)\n"
        }
        out +=
            "memory peak: strategies the ledger's peak (= or ≠ its formula); peers their process's peak RSS, interpreter and imports included (VmHWM reset after the levelling write where there is one, else ru_maxrss)\n"
        return out
    }

    /// The floor case with the lowest median: the best this machine did at reading the files, which every
    /// "× floor time" is over (warm, one pread per core usually; cold, whichever queue depth or O_DIRECT won).
    static func fastestFloor(_ report: LoadBenchmark.Report) -> LoadBenchmark.Case? {
        report.cases.filter { $0.kind == .floor && $0.median > 0 }.min { $0.median < $1.median }
    }

    static func peak(_ c: LoadBenchmark.Case) -> String {
        if let ledger = c.ledgerPeakBytes {
            return ByteSize.binary(ledger) + (ledger == c.predictedPeakBytes ? " (= formula)" : " (≠ formula)")
        }
        return c.maxRSSBytes.map { ByteSize.binary($0) + " max RSS" } ?? "-"
    }

    /// The floor for fresh memory, and whether the host takes freed memory back (why it can be far below the
    /// read floor, and why naive, which holds the most, suffers most).
    static func firstTouchLines(_ report: LoadBenchmark.Report) -> String {
        var out = ""
        if let touch = report.firstTouch, let first = touch.bytesPerSecond(pass: 0) {
            out +=
                "first touch (before the rounds): \(ByteSize.decimal(touch.bytes)) of fresh madvise(MADV_HUGEPAGE) memory, naive's peak, "
            out += "written on every core at \(ByteSize.fixed(first / 1e9, digits: 2)) GB/s"
            if let again = touch.bytesPerSecond(pass: 1) {
                out += "; again at once \(ByteSize.fixed(again / 1e9, digits: 2)) GB/s"
            }
            out += " — no phase that fills fresh memory beats it\n"
        }
        if report.memoryLeveled == true {
            out +=
                "before every case, fresh memory as large as its peak was written and freed, outside its time, so that no case pays the host's first touch for memory another case left\n"
        }
        if let reporting = report.freePageReporting {
            out += "this VM reports freed memory to its host (virtio-balloon free page reporting"
            out += reporting.order.map { ", blocks of 2^\($0) pages" } ?? ""
            out += "): pages freed a while ago fault in at the host's first-touch cost"
            out += report.reportedBytesDuringRun.map { "; \(ByteSize.binary($0)) reported during this run" } ?? ""
            out += "\n"
        }
        return out
    }

    /// The phases that are throughputs of their own: random init (model bytes written) and the read phases.
    static func phaseLines(_ report: LoadBenchmark.Report, gigabytes: Double) -> String {
        var out = ""
        // Both as GB/s: the floor reads the checkpoint's bytes, the first touch writes its own.
        let floor = fastestFloor(report).map { gigabytes / $0.median } ?? 0
        let touch = report.firstTouch?.bytesPerSecond(pass: 0).map { $0 / 1e9 }
        for c in report.cases where c.kind == .strategy {
            for key in ["init", "read checkpoint", "read shard"] {
                guard let values = c.phases?[key], !values.isEmpty else { continue }
                let median = LoadBenchmark.median(values)
                // init writes the model (M_t); the read phases read the checkpoint.
                let bytes = key == "init" ? Double(c.modelBytes ?? 0) / 1e9 : gigabytes
                let what = key == "init" ? "random init of the model (M_t written)" : key
                let rate = bytes / max(median, 1e-9)
                out +=
                    "  \(c.name) \(what): median \(ByteSize.fixed(median, digits: 3)) s, \(ByteSize.fixed(rate, digits: 2)) GB/s"
                if floor > 0 { out += ", \(ByteSize.fixed(floor / rate, digits: 2))× the floor's time" }
                if let touch = touch { out += ", \(ByteSize.fixed(rate / touch, digits: 2))× first touch" }
                out += "\n"
            }
        }
        return out
    }
}
