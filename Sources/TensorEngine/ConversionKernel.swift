import CHalfKernels

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One conversion direction as a loop over a run of elements, the unit of work a thread is handed.
///
/// Loads and stores are unaligned (`loadUnaligned` / `storeBytes`): a tensor inside a safetensors file sits
/// at whatever offset its header gives, so a mapped source need not be aligned to its element size. On
/// x86-64 an unaligned vector load costs the same as an aligned one, so nothing is lost by it.
///
/// Plain Swift loops rather than SIMD types: LLVM auto-vectorises them (Swift's generic `SIMD8` code measured
/// thirty times slower), and although the package targets baseline x86-64 (SSE2, four 32-bit lanes),
/// F32 → BF16 and the widening directions already run at memcpy speed on one core. F32 → F16 and BF16 → F16
/// are compute-bound in Swift (about 11–13 GB/s moved per core), so on a CPU with F16C they go to the C
/// target `CHalfKernels` (`vcvtps2ph`, eight lanes), which gives the same bits.
enum ConversionKernel: Sendable {
    /// Same type on both sides: torch's `.to(same dtype)` is a copy. Counted in bytes, so that sub-byte
    /// types (F4, F6) copy too.
    case copyBytes
    case float32ToBFloat16
    case float32ToFloat16
    case float32ToFloat64
    case float16ToFloat32
    case float16ToBFloat16
    case float16ToFloat64
    case bfloat16ToFloat32
    case bfloat16ToFloat16
    case bfloat16ToFloat64
    case float64ToFloat32
    case float64ToFloat16
    case float64ToBFloat16

    /// The kernel for a direction, or nil when the engine does not convert between those types.
    init?(from source: DType, to destination: DType) {
        if source == destination {
            self = .copyBytes
            return
        }
        switch (source, destination) {
        case (.f32, .bf16): self = .float32ToBFloat16
        case (.f32, .f16): self = .float32ToFloat16
        case (.f32, .f64): self = .float32ToFloat64
        case (.f16, .f32): self = .float16ToFloat32
        case (.f16, .bf16): self = .float16ToBFloat16
        case (.f16, .f64): self = .float16ToFloat64
        case (.bf16, .f32): self = .bfloat16ToFloat32
        case (.bf16, .f16): self = .bfloat16ToFloat16
        case (.bf16, .f64): self = .bfloat16ToFloat64
        case (.f64, .f32): self = .float64ToFloat32
        case (.f64, .f16): self = .float64ToFloat16
        case (.f64, .bf16): self = .float64ToBFloat16
        default: return nil
        }
    }

    /// Bytes one element takes in the source (1 for a byte copy).
    var sourceWidth: Int {
        switch self {
        case .copyBytes: return 1
        case .float16ToFloat32, .float16ToBFloat16, .float16ToFloat64,
            .bfloat16ToFloat32, .bfloat16ToFloat16, .bfloat16ToFloat64:
            return 2
        case .float32ToBFloat16, .float32ToFloat16, .float32ToFloat64: return 4
        case .float64ToFloat32, .float64ToFloat16, .float64ToBFloat16: return 8
        }
    }

    /// Bytes one element takes in the destination (1 for a byte copy).
    var destinationWidth: Int {
        switch self {
        case .copyBytes: return 1
        case .float32ToBFloat16, .float32ToFloat16, .float16ToBFloat16,
            .bfloat16ToFloat16, .float64ToFloat16, .float64ToBFloat16:
            return 2
        case .float16ToFloat32, .bfloat16ToFloat32, .float64ToFloat32: return 4
        case .float32ToFloat64, .float16ToFloat64, .bfloat16ToFloat64: return 8
        }
    }

    /// Converts `count` elements starting at `source` into `destination`. The pointers are already offset
    /// to the first element of the run.
    func run(source: UnsafeRawPointer, destination: UnsafeMutableRawPointer, count: Int) {
        run(source: source, destination: destination, count: count, hardware: Self.hardwareHalf)
    }

    /// Whether this CPU converts to binary16 in hardware (F16C, `CHalfKernels`): F32 → F16 and BF16 → F16 then
    /// run at memory speed instead of ~6 GB/s of source per core; the results are the same bits.
    static let hardwareHalf = bmb_half_kernels_available() != 0

    /// `run`, choosing the F16C kernels or the Swift ones (tests compare the two on this CPU).
    func run(source: UnsafeRawPointer, destination: UnsafeMutableRawPointer, count: Int, hardware: Bool) {
        switch self {
        case .float32ToFloat16 where hardware:
            bmb_float32_to_float16(source, destination, count)
        case .bfloat16ToFloat16 where hardware:
            bmb_bfloat16_to_float16(source, destination, count)
        case .copyBytes:
            memcpy(destination, source, count)
        case .float32ToBFloat16:
            Self.map(source, destination, count) { (x: UInt32) in ConversionBits.bfloat16(fromFloat32: x) }
        case .float32ToFloat16:
            Self.map(source, destination, count) { (x: UInt32) in ConversionBits.float16(fromFloat32: x) }
        case .float32ToFloat64:
            Self.map(source, destination, count) { (x: UInt32) in ConversionBits.float64(fromFloat32: x) }
        case .float16ToFloat32:
            Self.map(source, destination, count) { (x: UInt16) in ConversionBits.float32(fromFloat16: x) }
        case .float16ToBFloat16:
            Self.map(source, destination, count) { (x: UInt16) in ConversionBits.bfloat16(fromFloat16: x) }
        case .float16ToFloat64:
            Self.mapThroughFloat32(
                source, destination, count,
                { (x: UInt16) in ConversionBits.float32(fromFloat16: x) },
                { (x: UInt32) in ConversionBits.float64(fromFloat32: x) })
        case .bfloat16ToFloat32:
            Self.map(source, destination, count) { (x: UInt16) in ConversionBits.float32(fromBFloat16: x) }
        case .bfloat16ToFloat16:
            Self.map(source, destination, count) { (x: UInt16) in ConversionBits.float16(fromBFloat16: x) }
        case .bfloat16ToFloat64:
            Self.map(source, destination, count) { (x: UInt16) in
                ConversionBits.float64(fromFloat32: ConversionBits.float32(fromBFloat16: x))
            }
        case .float64ToFloat32:
            Self.map(source, destination, count) { (x: UInt64) in ConversionBits.float32(fromFloat64: x) }
        case .float64ToFloat16:
            Self.mapThroughFloat32(
                source, destination, count,
                { (x: UInt64) in ConversionBits.float32(fromFloat64: x) },
                { (x: UInt32) in ConversionBits.float16(fromFloat32: x) })
        case .float64ToBFloat16:
            Self.mapThroughFloat32(
                source, destination, count,
                { (x: UInt64) in ConversionBits.float32(fromFloat64: x) },
                { (x: UInt32) in ConversionBits.bfloat16(fromFloat32: x) })
        }
    }

    /// The element loop every direction shares. Forced inline so that each call site is specialised with its
    /// transform inlined: a straight-line loop body LLVM's loop vectoriser can widen.
    @inline(__always)
    private static func map<Source: FixedWidthInteger, Destination: FixedWidthInteger>(
        _ source: UnsafeRawPointer, _ destination: UnsafeMutableRawPointer, _ count: Int,
        _ transform: (Source) -> Destination
    ) {
        let sourceStride = MemoryLayout<Source>.stride
        let destinationStride = MemoryLayout<Destination>.stride
        for index in 0..<count {
            let value = source.loadUnaligned(fromByteOffset: index &* sourceStride, as: Source.self)
            destination.storeBytes(
                of: transform(value), toByteOffset: index &* destinationStride, as: Destination.self)
        }
    }

    /// Elements staged per block by `mapThroughFloat32`: 8 KiB of binary32, which stays in L1.
    private static let stagingCount = 2048

    /// Two passes through a small binary32 buffer instead of one fused loop. A loop mixing 8-byte and
    /// 2-byte elements vectorises poorly (the 8-byte side limits it to two lanes); split, each pass runs at
    /// its own full width, which made F16 → F64, F64 → F16 and F64 → BF16 1.25 to 1.7 times faster.
    @inline(__always)
    private static func mapThroughFloat32<Source: FixedWidthInteger, Destination: FixedWidthInteger>(
        _ source: UnsafeRawPointer, _ destination: UnsafeMutableRawPointer, _ count: Int,
        _ first: (Source) -> UInt32, _ second: (UInt32) -> Destination
    ) {
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: stagingCount) { staging in
            guard let stagingStart = staging.baseAddress else { return }
            var done = 0
            while done < count {
                let blockCount = min(stagingCount, count - done)
                map(
                    source + done * MemoryLayout<Source>.stride, UnsafeMutableRawPointer(stagingStart), blockCount,
                    first)
                map(
                    UnsafeRawPointer(stagingStart), destination + done * MemoryLayout<Destination>.stride, blockCount,
                    second)
                done += blockCount
            }
        }
    }
}
