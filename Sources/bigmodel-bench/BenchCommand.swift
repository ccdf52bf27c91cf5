import ArgumentParser
import OSLayer
import TensorEngine

/// `bigmodel-bench bench …`: micro-benchmarks whose figures go into the report by hand, kept apart from the
/// memory measurements so they never run as part of one.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks that print figures",
        discussion: "Examples: bigmodel-bench bench convert; bigmodel-bench bench load --size 1GB --repeat 5",
        subcommands: [BenchConvertCommand.self, BenchLoadCommand.self]
    )
}

/// `bigmodel-bench bench convert`: how fast the dtype conversion kernels run, next to a memcpy of the same
/// size, so it is visible how far each is from the machine's memory bandwidth and what the threads buy.
struct BenchConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Times F32→BF16, F32→F16, BF16→F16 and BF16→F32 conversions against a memcpy floor.",
        discussion: "Example: bigmodel-bench bench convert --size 256MiB --repeat 7"
    )

    @Option(help: "Bytes of source data each conversion reads (e.g. 256MiB, 1GB).")
    var size: String = "256MiB"

    @Option(name: .customLong("repeat"), help: "Timed runs per measurement; the median is printed.")
    var repeatCount: Int = 7

    @Option(help: "Threads for the threaded runs (default: every core).")
    var threads: Int?

    func validate() throws {
        guard let bytes = ByteSize.parseOrNil(size) else {
            throw ValidationError("invalid --size '\(size)': \(ByteSize.example)")
        }
        guard bytes >= 8 else { throw ValidationError("--size must be at least 8 bytes") }
        guard repeatCount >= 1 else { throw ValidationError("--repeat must be at least 1") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    func run() throws {
        let sourceBytes: Int
        do { sourceBytes = try ByteSize.parse(size) } catch { throw ValidationError(error.description) }
        // Whole 8-byte units so that every direction converts whole elements.
        let byteCount = sourceBytes / 8 * 8
        let threadCount = threads ?? DTypeConversion.defaultThreadCount

        let ledger = MemoryLedger()
        let floatSource = try TensorStorage.allocate(byteCount: byteCount, ledger: ledger)
        let bfloatSource = try TensorStorage.allocate(byteCount: byteCount, ledger: ledger)
        // The widest result (BF16 → F32) is twice the source.
        let destination = try TensorStorage.allocate(byteCount: 2 * byteCount, ledger: ledger)
        BenchmarkData.fillFloat32(floatSource.mutableBytes)
        // BF16 source: the same values rounded, written twice so it is as many bytes as the F32 source.
        let bfloatBytes = bfloatSource.mutableBytes
        for copy in 0..<2 {
            let range = (copy * byteCount / 2)..<((copy + 1) * byteCount / 2)
            DTypeConversion.convert(
                floatSource.bytes, from: .f32, into: UnsafeMutableRawBufferPointer(rebasing: bfloatBytes[range]),
                to: .bf16)
        }
        // Fault the destination's pages in now, so no timed run pays for first touch.
        destination.mutableBytes.initializeMemory(as: UInt8.self, repeating: 0)

        print(
            "bench convert: \(ByteSize.binary(byteCount)) of source per run, median of \(repeatCount) runs, "
                + "\(threadCount) thread(s) vs 1 thread")
        print(
            "GB/s = (source bytes read + destination bytes written) / seconds, decimal GB (10^9 bytes); "
                + "'of memcpy' = GB/s relative to the memcpy floor (F32 → F32, i.e. memcpy in the same chunks and threads)"
        )
        print(BenchmarkRow.header)

        let memcpyRow = measure(
            name: "memcpy floor", sourceBytes: byteCount, destinationBytes: byteCount,
            threads: threadCount, floor: nil
        ) { threads in
            DTypeConversion.convert(
                floatSource.bytes, from: .f32,
                into: UnsafeMutableRawBufferPointer(rebasing: destination.mutableBytes[0..<byteCount]), to: .f32,
                threads: threads)
        }
        print(memcpyRow.line)

        let directions: [(DType, DType, TensorStorage)] = [
            (.f32, .bf16, floatSource), (.f32, .f16, floatSource),
            (.bf16, .f16, bfloatSource), (.bf16, .f32, bfloatSource),
        ]
        for (from, to, source) in directions {
            let elements = byteCount / (from.byteWidth ?? 1)
            let written = elements * (to.byteWidth ?? 1)
            let output = UnsafeMutableRawBufferPointer(rebasing: destination.mutableBytes[0..<written])
            let row = measure(
                name: "\(from) → \(to)", sourceBytes: byteCount, destinationBytes: written,
                threads: threadCount, floor: memcpyRow.bytesPerSecond
            ) { threads in
                DTypeConversion.convert(source.bytes, from: from, into: output, to: to, threads: threads)
            }
            print(row.line)
        }
    }

    /// One untimed run (caches, page tables), then `repeatCount` timed runs threaded and as many on one
    /// thread; medians, so one run disturbed by the OS does not move the figure.
    private func measure(
        name: String, sourceBytes: Int, destinationBytes: Int, threads: Int, floor: Double?,
        _ body: (Int) -> Void
    ) -> BenchmarkRow {
        body(threads)
        let clock = ContinuousClock()
        let threaded = median((0..<repeatCount).map { _ in seconds(clock.measure { body(threads) }) })
        let single = median((0..<repeatCount).map { _ in seconds(clock.measure { body(1) }) })
        return BenchmarkRow(
            name: name, movedBytes: sourceBytes + destinationBytes, seconds: threaded, singleThreadSeconds: single,
            memcpyBytesPerSecond: floor)
    }

    private func seconds(_ duration: Duration) -> Double { duration.inSeconds }

    private func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }
}

/// One printed line of `bench convert`.
private struct BenchmarkRow {
    let name: String
    let movedBytes: Int
    let seconds: Double
    let singleThreadSeconds: Double
    /// nil for the memcpy row itself.
    let memcpyBytesPerSecond: Double?

    var bytesPerSecond: Double { Double(movedBytes) / seconds }

    static let header =
        pad("direction", 14) + pad("median s", 11) + pad("GB/s", 8) + pad("1-thread s", 12)
        + pad("1-thread GB/s", 15) + pad("speed-up", 10) + "of memcpy"

    var line: String {
        let singleRate = Double(movedBytes) / singleThreadSeconds
        let ratio = memcpyBytesPerSecond.map { ByteSize.fixed(100 * bytesPerSecond / $0, digits: 0) + "%" } ?? "100%"
        return Self.pad(name, 14) + Self.pad(ByteSize.fixed(seconds, digits: 6), 11)
            + Self.pad(ByteSize.fixed(bytesPerSecond / 1e9, digits: 2), 8)
            + Self.pad(ByteSize.fixed(singleThreadSeconds, digits: 6), 12)
            + Self.pad(ByteSize.fixed(singleRate / 1e9, digits: 2), 15)
            + Self.pad(ByteSize.fixed(singleThreadSeconds / seconds, digits: 2) + "×", 10) + ratio
    }

    private static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
    }
}

/// Deterministic benchmark input: the same bytes every run, so figures are comparable across builds.
private enum BenchmarkData {
    /// Normal-ish values (a sum of four uniforms, centred and scaled like initialised weights) with a few
    /// specials sprinkled in (±0, ±inf, NaN, a subnormal, 65504, 65520) so the kernels' rare paths are live.
    static func fillFloat32(_ bytes: UnsafeMutableRawBufferPointer) {
        let count = bytes.count / 4
        let specials: [Float] = [0, -0.0, .infinity, -.infinity, .nan, Float(bitPattern: 0x0000_0001), 65504, 65520]
        var state: UInt64 = 0x5EED_0FB1_6F1E_1D00
        for index in 0..<count {
            var value: Float
            if index % 4099 == 0 {
                value = specials[(index / 4099) % specials.count]
            } else {
                var sum: Float = 0
                for _ in 0..<4 {
                    state &+= 0x9E37_79B9_7F4A_7C15
                    var z = state
                    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
                    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
                    sum += Float(z >> 40) / Float(1 << 24)
                }
                value = (sum - 2) * 0.05
            }
            bytes.storeBytes(of: value.bitPattern, toByteOffset: index * 4, as: UInt32.self)
        }
    }
}
