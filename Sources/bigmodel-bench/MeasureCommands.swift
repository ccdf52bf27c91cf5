import ArgumentParser
import Checkpoint
import Foundation
import Harness
import Loading
import Probes
import TensorEngine

/// The measured child of `run`: one strategy, in a fresh process, every probe on. Not for direct use.
struct MeasureRunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "measure-run", abstract: "(internal) Run one strategy under every probe and write the measurement.", shouldDisplay: false)

    @Argument var checkpoint: String
    @Option var strategy: String
    @Option var dtype: DTypeArgument?
    @Option var result: String
    @Option var sampleIntervalMs: Double = 1
    @Option(help: "Cap on the ledger's live RAM bytes.") var ledgerBudget: Int?
    @OptionGroup var placement: DeviceMapOptions
    @Option var offloadFolder: String?

    func run() throws {
        try reportingErrors {
            guard let name = StrategyName(rawValue: strategy) else { throw UsageError("unknown strategy '\(strategy)'; known: \(StrategyName.names)") }
            let interval = Duration.microseconds(Int64((sampleIntervalMs * 1000).rounded()))
            let strategy: any LoadStrategy =
                name == .deviceMap ? DeviceMapLoad(request: try placement.request(), offloadFolder: offloadFolder) : name.strategy
            let measured = MeasuredLoad(
                checkpointPath: checkpoint, strategy: strategy, dtype: try dtype?.castTarget(), sampleInterval: interval, ledgerBudget: ledgerBudget
            ) { phase, bytes in
                FileHandle.standardError.write(Data("phase\t\(phase)\t\(bytes)\n".utf8))
            }
            let measurement = try measured.run()
            let data = try JSONEncoder.results.encode(measurement)
            try AtomicFile.write([UInt8](data), to: result, sync: false)
        }
    }
}

/// The floor child of `run`: the same bytes read the fastest plain way.
struct MeasureFloorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "measure-floor", abstract: "(internal) Time reading files into fresh huge-page memory with large preads.", shouldDisplay: false)

    @Option var result: String
    @Flag(help: "Evict the files from the page cache before each pass (a cold floor).") var cold = false
    @Argument var files: [String]

    func run() throws {
        try reportingErrors {
            // The fastest of three passes: the floor is what the machine can do, not what it did while busy.
            var passes: [ReadFloorResult] = []
            for _ in 0..<3 {
                if cold { for file in files { try PageCache.evict(path: file) } }
                passes.append(try ReadFloor.measure(paths: files))
            }
            let floor = passes.min { $0.seconds < $1.seconds } ?? passes[0]
            let info = FloorInfo(
                bytes: floor.bytes, seconds: floor.seconds, gigabytesPerSecond: floor.bytesPerSecond / 1e9,
                method: "64 MiB preads into fresh madvise(MADV_HUGEPAGE) buffers, one file at a time, " + (cold ? "page cache evicted before each pass" : "page cache warm")
                    + "; fastest of 3 passes ("
                    + passes.map { ByteSize.fixed($0.seconds, digits: 3) + " s" }.joined(separator: ", ") + ")")
            try AtomicFile.write([UInt8](try JSONEncoder.results.encode(info)), to: result, sync: false)
        }
    }
}

/// Probes stays free of TensorEngine; the CLI maps its system-call failures to the I/O exit status.
extension SystemCallError: ReportableError {
    public var exitStatus: ExitStatus { .ioError }
}
