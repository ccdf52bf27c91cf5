import TestSupport
import Testing

@testable import TensorEngine

// MARK: - Helpers

/// Converts `input` element by element through the public API and returns the destination elements.
private func convert<Source: FixedWidthInteger, Destination: FixedWidthInteger>(
    _ input: [Source], from source: DType, to destination: DType, as _: Destination.Type, threads: Int = 1
) -> [Destination] {
    var output = [Destination](repeating: 0, count: input.count)
    input.withUnsafeBytes { sourceBytes in
        output.withUnsafeMutableBytes { destinationBytes in
            DTypeConversion.convert(
                sourceBytes, from: source, into: destinationBytes, to: destination, threads: threads)
        }
    }
    return output
}

private func hex<Value: FixedWidthInteger>(_ value: Value) -> String {
    let digits = String(value, radix: 16, uppercase: true)
    return "0x" + String(repeating: "0", count: max(0, Value.bitWidth / 4 - digits.count)) + digits
}

/// Converts every input of a table at once and expects each output to be exactly the listed bits.
private func expectBits<Source: FixedWidthInteger, Destination: FixedWidthInteger>(
    _ table: KeyValuePairs<Source, Destination>, from source: DType, to destination: DType,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    let outputs = convert(table.map(\.key), from: source, to: destination, as: Destination.self)
    for (index, (input, expected)) in table.enumerated() {
        #expect(
            outputs[index] == expected,
            "\(source)→\(destination): \(hex(input)) gave \(hex(outputs[index])), expected \(hex(expected))",
            sourceLocation: sourceLocation)
    }
}

/// Bytes of `count` elements of `dtype`: half raw random bit patterns (every NaN, inf and subnormal
/// encoding is reachable), half values in the range model weights take, so both halves of every kernel's
/// selects are exercised.
private func mixedBytes(_ dtype: DType, count: Int, seed: UInt64) -> [UInt8] {
    var random = SplitMix64(seed: seed)
    var bytes: [UInt8] = []
    bytes.reserveCapacity(count * (dtype.byteWidth ?? 1))
    for index in 0..<count {
        let raw = random.next()
        let value = Double(Int64(truncatingIfNeeded: raw) >> 40) / Double(1 << 20)  // about ±8
        let bits: UInt64
        switch dtype {
        case .f64: bits = index % 2 == 0 ? raw : value.bitPattern
        case .f32: bits = UInt64(index % 2 == 0 ? UInt32(truncatingIfNeeded: raw) : Float(value).bitPattern)
        case .f16, .bf16: bits = UInt64(UInt16(truncatingIfNeeded: raw))
        default: bits = raw
        }
        for byte in 0..<(dtype.byteWidth ?? 1) { bytes.append(UInt8(truncatingIfNeeded: bits >> (8 * byte))) }
    }
    return bytes
}

private func convertBytes(_ input: [UInt8], from source: DType, to destination: DType, threads: Int?) -> [UInt8] {
    let count = input.count / (source.byteWidth ?? 1) * (destination.byteWidth ?? 1)
    var output = [UInt8](repeating: 0xA5, count: count)
    input.withUnsafeBytes { sourceBytes in
        output.withUnsafeMutableBytes { destinationBytes in
            DTypeConversion.convert(
                sourceBytes, from: source, into: destinationBytes, to: destination, threads: threads)
        }
    }
    return output
}

/// nil when equal; otherwise how many bytes differ and where the first is. Large buffers are compared
/// through this rather than `==` inside `#expect`, which would print megabytes of array on a failure.
private func byteDifference(_ actual: [UInt8], _ expected: [UInt8]) -> String? {
    guard actual.count == expected.count else { return "\(actual.count) bytes, expected \(expected.count)" }
    let differing = actual.indices.filter { actual[$0] != expected[$0] }
    guard let first = differing.first else { return nil }
    return "\(differing.count) of \(actual.count) bytes differ, first at offset \(first): "
        + "\(hex(actual[first])) instead of \(hex(expected[first]))"
}

private let convertibleTypes: [DType] = [.f64, .f32, .f16, .bf16]

private let allDirections: [(DType, DType)] = convertibleTypes.flatMap { source in
    convertibleTypes.map { (source, $0) }
}

/// Names stored once but present twice in the state dict; `expected.json` lists the tied name under
/// `converted` with the digests of the tensor it is tied to.
private let tiedTargets = ["lm_head.weight": "model.embed_tokens.weight"]

/// Everything `DTypeConversion` promises, one suite so `--filter Conversion` selects exactly these.
@Suite("DTypeConversion")
struct ConversionTests {
    // MARK: - Fixture digests (torch's own output)

    @Test(
        "Every converted digest in a fixture's expected.json matches torch bit for bit",
        arguments: ["dtypes", "gemma-tiny-bf16-sharded", "llama-tiny-f32-single"])
    func conversionMatchesTorchFixtureDigests(folder: String) throws {
        let expectations = try ConversionExpectations(folder: folder)
        var files: [String: ConversionFixtureFile] = [:]
        var checkedDigests = 0

        // The fixtures must cover what they claim: all four float sources in dtypes, every stored tensor (and
        // every tied name) in the model folders.
        if folder == "dtypes" {
            #expect(Set(expectations.converted.keys) == ["f64", "f32", "f16", "bf16"])
        } else {
            #expect(Set(expectations.converted.keys) == Set(expectations.tensors.keys).union(expectations.tied))
            #expect(expectations.tied.allSatisfy { tiedTargets[$0] != nil })
        }

        for (name, digests) in expectations.converted.sorted(by: { $0.key < $1.key }) {
            let storedName = expectations.tied.contains(name) ? try #require(tiedTargets[name]) : name
            let stored = try #require(expectations.tensors[storedName], "\(folder): no stored tensor for \(name)")
            if files[stored.file] == nil {
                files[stored.file] = try ConversionFixtureFile(path: FixturePaths.path(folder + "/" + stored.file))
            }
            let file = try #require(files[stored.file])
            let (dtype, bytes) = try file.tensorBytes(storedName)
            // The test reader itself must hand over exactly the stored bytes.
            #expect(dtype.safetensorsName == stored.dtype)
            #expect(Digest.sha256Hex(bytes) == stored.sha256, "\(folder)/\(name): stored bytes")
            #expect(Set(digests.keys) == ["float16", "bfloat16", "float32"])

            for (targetName, expectedDigest) in digests.sorted(by: { $0.key < $1.key }) {
                let target = try #require(DType(torchName: targetName))
                for threads in [1, 2] {
                    let converted = convertBytes(bytes, from: dtype, to: target, threads: threads)
                    #expect(
                        Digest.sha256Hex(converted) == expectedDigest,
                        "\(folder)/\(name): \(dtype) → \(target) with \(threads) thread(s)")
                }
                checkedDigests += 1
            }
        }
        let expectedCount = expectations.converted.values.reduce(0) { $0 + $1.count }
        #expect(checkedDigests == expectedCount && checkedDigests >= 12)
    }

    @Test(
        "Widening a fixture tensor to F64 and narrowing it back gives the stored bytes (stored sha256)",
        arguments: ["dtypes", "gemma-tiny-bf16-sharded", "llama-tiny-f32-single"])
    func float64RoundTripRestoresStoredBytes(folder: String) throws {
        let expectations = try ConversionExpectations(folder: folder)
        var checked = 0
        for (name, stored) in expectations.tensors.sorted(by: { $0.key < $1.key }) {
            guard let dtype = DType(safetensorsName: stored.dtype), dtype.isConvertible, dtype != .f64 else { continue }
            let file = try ConversionFixtureFile(path: FixturePaths.path(folder + "/" + stored.file))
            let (_, bytes) = try file.tensorBytes(name)
            let wide = convertBytes(bytes, from: dtype, to: .f64, threads: nil)
            let back = convertBytes(wide, from: .f64, to: dtype, threads: nil)
            #expect(Digest.sha256Hex(back) == stored.sha256, "\(folder)/\(name): \(dtype) → F64 → \(dtype)")
            checked += 1
        }
        #expect(checked >= 3)
    }

    // MARK: - Hand-written bit vectors, one table per direction

    @Test("F32 → BF16: round to nearest even at bit 16, overflow to inf, every NaN → 0xFFFF")
    func float32ToBFloat16Bits() {
        expectBits(
            [
                0x3F80_0000: 0x3F80,  // 1.0
                0x3F80_8000: 0x3F80,  // 1 + 2^-8: halfway, ties to even (down)
                0x3F81_8000: 0x3F82,  // 1 + 3·2^-8: halfway, ties to even (up)
                0x3F80_8001: 0x3F81,  // just above halfway
                0x3F80_7FFF: 0x3F80,  // just below halfway
                0x8000_0000: 0x8000,  // -0
                0x0000_0000: 0x0000,  // +0
                0x0000_0001: 0x0000,  // smallest f32 subnormal rounds to +0
                0x0001_8000: 0x0002,  // subnormal halfway, ties to even (up)
                0x007F_FFFF: 0x0080,  // largest f32 subnormal rounds up to the smallest normal
                0x7F7F_FFFF: 0x7F80,  // FLT_MAX overflows to +inf
                0xFF7F_FFFF: 0xFF80,  // -FLT_MAX overflows to -inf
                0x7F80_0000: 0x7F80,  // +inf
                0xFF80_0000: 0xFF80,  // -inf
                0x7FC0_0000: 0xFFFF,  // quiet NaN
                0xFFC0_0000: 0xFFFF,  // negative quiet NaN
                0x7F80_0001: 0xFFFF,  // signalling NaN
                0x7FFF_FFFF: 0xFFFF,  // NaN whose rounding would carry out of the exponent
            ] as KeyValuePairs<UInt32, UInt16>, from: .f32, to: .bf16)
    }

    @Test("F32 → F16: RNE, 65520 → inf, correctly rounded subnormals, F16C NaN payloads")
    func float32ToFloat16Bits() {
        expectBits(
            [
                0x3F80_0000: 0x3C00,  // 1.0
                0x477F_E000: 0x7BFF,  // 65504, the largest half
                0x477F_EFFF: 0x7BFF,  // just below 65520 still rounds down to 65504
                0x477F_F000: 0x7C00,  // 65520 is halfway to 65536 and ties to even: +inf
                0xC77F_F000: 0xFC00,  // -65520 → -inf
                0x7F7F_FFFF: 0x7C00,  // FLT_MAX → +inf
                0x3F80_1000: 0x3C00,  // 1 + 2^-11: halfway, ties to even (down)
                0x3F80_3000: 0x3C02,  // 1 + 3·2^-11: halfway, ties to even (up)
                0x3880_0000: 0x0400,  // 2^-14, the smallest normal half
                0x387F_FFFF: 0x0400,  // just below 2^-14 rounds up into the normals
                0x3380_0000: 0x0001,  // 2^-24, the smallest subnormal half
                0x3300_0000: 0x0000,  // 2^-25: halfway between 0 and 2^-24, ties to even (0)
                0x3300_0001: 0x0001,  // just above 2^-25
                0x33C0_0000: 0x0002,  // 3·2^-25: halfway between 1 and 2 ulps, ties to even (2)
                0x2EDB_E6FF: 0x0000,  // 1e-10 underflows to +0
                0xAEDB_E6FF: 0x8000,  // -1e-10 underflows to -0
                0x8000_0000: 0x8000,  // -0
                0x7F80_0000: 0x7C00,  // +inf
                0xFF80_0000: 0xFC00,  // -inf
                0x7FC0_0000: 0x7E00,  // quiet NaN
                0xFFC0_0000: 0xFE00,  // negative quiet NaN keeps its sign
                0x7F80_0001: 0x7E00,  // signalling NaN: payload below bit 13 is lost, quiet bit set
                0x7FFF_E000: 0x7FFF,  // top 10 payload bits kept
                0xFFFF_0000: 0xFFF8,  // sign | 0x7C00 | 0x0200 | mantissa >> 13
            ] as KeyValuePairs<UInt32, UInt16>, from: .f32, to: .f16)
    }

    @Test("F32 → F64: exact; NaN payload kept with the quiet bit set")
    func float32ToFloat64Bits() {
        expectBits(
            [
                0x3F80_0000: 0x3FF0_0000_0000_0000,  // 1.0
                0x0000_0001: 0x36A0_0000_0000_0000,  // 2^-149 becomes a normal double
                0x8000_0000: 0x8000_0000_0000_0000,  // -0
                0xFF80_0000: 0xFFF0_0000_0000_0000,  // -inf
                0x7FC0_0000: 0x7FF8_0000_0000_0000,  // quiet NaN
                0x7F80_0001: 0x7FF8_0000_2000_0000,  // signalling NaN: quieted, payload shifted by 29
            ] as KeyValuePairs<UInt32, UInt64>, from: .f32, to: .f64)
    }

    @Test("F16 → F32: exact, subnormals normalised, NaN quieted with payload")
    func float16ToFloat32Bits() {
        expectBits(
            [
                0x3C00: 0x3F80_0000,  // 1.0
                0x0001: 0x3380_0000,  // 2^-24
                0x8001: 0xB380_0000,  // -2^-24
                0x03FF: 0x387F_C000,  // largest subnormal, 1023·2^-24
                0x0400: 0x3880_0000,  // 2^-14
                0x7BFF: 0x477F_E000,  // 65504
                0x8000: 0x8000_0000,  // -0
                0x7C00: 0x7F80_0000,  // +inf
                0xFC00: 0xFF80_0000,  // -inf
                0x7E00: 0x7FC0_0000,  // quiet NaN
                0xFE00: 0xFFC0_0000,  // negative quiet NaN
                0x7C01: 0x7FC0_2000,  // signalling NaN: quieted, payload shifted by 13
                0x7DFF: 0x7FFF_E000,
            ] as KeyValuePairs<UInt16, UInt32>, from: .f16, to: .f32)
    }

    @Test("F16 → BF16: exact widening then RNE; every NaN → 0x7FC0 (torch's scalar path drops the sign)")
    func float16ToBFloat16Bits() {
        expectBits(
            [
                0x3C00: 0x3F80,  // 1.0
                0x3C04: 0x3F80,  // 1 + 2^-8: halfway, ties to even (down)
                0x3C0C: 0x3F82,  // 1 + 3·2^-8: halfway, ties to even (up)
                0x3C05: 0x3F81,  // 1 + 5·2^-10: above halfway
                0x0001: 0x3380,  // 2^-24 is a normal bfloat16
                0x7BFF: 0x4780,  // 65504 rounds up to 65536
                0x8000: 0x8000,  // -0
                0x7C00: 0x7F80,  // +inf
                0xFC00: 0xFF80,  // -inf
                0x7E00: 0x7FC0,  // quiet NaN
                0xFE00: 0x7FC0,  // negative NaN loses its sign
                0x7C01: 0x7FC0,  // signalling NaN
            ] as KeyValuePairs<UInt16, UInt16>, from: .f16, to: .bf16)
    }

    @Test("F16 → F64: exact; NaN quieted with payload")
    func float16ToFloat64Bits() {
        expectBits(
            [
                0x3C00: 0x3FF0_0000_0000_0000,  // 1.0
                0x0001: 0x3E70_0000_0000_0000,  // 2^-24
                0x8000: 0x8000_0000_0000_0000,  // -0
                0x7C00: 0x7FF0_0000_0000_0000,  // +inf
                0x7E00: 0x7FF8_0000_0000_0000,  // quiet NaN
                0x7C01: 0x7FF8_0400_0000_0000,  // signalling NaN: quieted, payload shifted by 42
            ] as KeyValuePairs<UInt16, UInt64>, from: .f16, to: .f64)
    }

    @Test("BF16 → F32: a 16-bit shift, even for a signalling NaN (torch does not quiet it)")
    func bfloat16ToFloat32Bits() {
        expectBits(
            [
                0x3F80: 0x3F80_0000,  // 1.0
                0x0001: 0x0001_0000,  // subnormal stays subnormal
                0x8000: 0x8000_0000,  // -0
                0xFF80: 0xFF80_0000,  // -inf
                0xFFFF: 0xFFFF_0000,  // NaN
                0x7F81: 0x7F81_0000,  // signalling NaN stays signalling
            ] as KeyValuePairs<UInt16, UInt32>, from: .bf16, to: .f32)
    }

    @Test("BF16 → F16: through F32, then F16C semantics (0xFFFF → 0xFFF8)")
    func bfloat16ToFloat16Bits() {
        expectBits(
            [
                0x3F80: 0x3C00,  // 1.0
                0x3F81: 0x3C08,  // 1 + 2^-7 is exact in half
                0x477F: 0x7BF8,  // 65280
                0x4780: 0x7C00,  // 65536 overflows to +inf
                0x3380: 0x0001,  // 2^-24
                0x3300: 0x0000,  // 2^-25: halfway, ties to even (0)
                0x3340: 0x0001,  // 1.5·2^-25: above halfway
                0x8000: 0x8000,  // -0
                0xFF80: 0xFC00,  // -inf
                0x7FC0: 0x7E00,  // quiet NaN
                0xFFFF: 0xFFF8,  // NaN torch's F32 → BF16 produces: sign | 0x7E00 | 0x3F8
                0x7F81: 0x7E08,  // signalling NaN: quieted, top payload bits kept
            ] as KeyValuePairs<UInt16, UInt16>, from: .bf16, to: .f16)
    }

    @Test("BF16 → F64: exact; NaN quieted with payload")
    func bfloat16ToFloat64Bits() {
        expectBits(
            [
                0x3F80: 0x3FF0_0000_0000_0000,  // 1.0
                0x8000: 0x8000_0000_0000_0000,  // -0
                0x7F80: 0x7FF0_0000_0000_0000,  // +inf
                0xFFFF: 0xFFFF_E000_0000_0000,  // NaN, payload 0x7F shifted into place
                0x7F81: 0x7FF8_2000_0000_0000,  // signalling NaN: quieted, payload shifted by 29
            ] as KeyValuePairs<UInt16, UInt64>, from: .bf16, to: .f64)
    }

    @Test("F64 → F32: hardware RNE, overflow to inf, underflow to 0, NaN quieted")
    func float64ToFloat32Bits() {
        expectBits(
            [
                0x3FF0_0000_0000_0000: 0x3F80_0000,  // 1.0
                0x3FF0_0000_1000_0000: 0x3F80_0000,  // 1 + 2^-24: halfway, ties to even (down)
                0x3FF0_0000_3000_0000: 0x3F80_0002,  // 1 + 3·2^-24: halfway, ties to even (up)
                0x7FEF_FFFF_FFFF_FFFF: 0x7F80_0000,  // DBL_MAX → +inf
                0x36A0_0000_0000_0000: 0x0000_0001,  // 2^-149, the smallest float subnormal
                0x3690_0000_0000_0000: 0x0000_0000,  // 2^-150: halfway, ties to even (0)
                0x8000_0000_0000_0000: 0x8000_0000,  // -0
                0xFFF0_0000_0000_0000: 0xFF80_0000,  // -inf
                0x7FF8_0000_0000_0000: 0x7FC0_0000,  // quiet NaN
                0xFFF8_0000_0000_0000: 0xFFC0_0000,  // negative quiet NaN
                0x7FF0_0000_0000_0001: 0x7FC0_0000,  // signalling NaN: low payload lost, quieted
            ] as KeyValuePairs<UInt64, UInt32>, from: .f64, to: .f32)
    }

    @Test("F64 → F16: rounded to F32 first, as torch does (double rounding)")
    func float64ToFloat16Bits() {
        expectBits(
            [
                0x3FF0_0000_0000_0000: 0x3C00,  // 1.0
                0x40EF_FE00_0000_0000: 0x7C00,  // 65520 → +inf
                0x40EF_FC00_0000_0000: 0x7BFF,  // 65504
                0x3FF0_0200_0000_1000: 0x3C00,  // 1 + 2^-11 + 2^-40: F32 rounds it to the tie 1 + 2^-11, then even
                0x3E70_0000_0000_0000: 0x0001,  // 2^-24
                0x8000_0000_0000_0000: 0x8000,  // -0
                0x7FF0_0000_0000_0000: 0x7C00,  // +inf
                0x7FF8_0000_0000_0000: 0x7E00,  // quiet NaN
            ] as KeyValuePairs<UInt64, UInt16>, from: .f64, to: .f16)
    }

    @Test("F64 → BF16: rounded to F32 first (double rounding); NaN → 0xFFFF")
    func float64ToBFloat16Bits() {
        expectBits(
            [
                0x3FF0_0000_0000_0000: 0x3F80,  // 1.0
                0x3FF0_1000_0000_0000: 0x3F80,  // 1 + 2^-8: halfway, ties to even (down)
                0x3FF0_3000_0000_0000: 0x3F82,  // 1 + 3·2^-8: halfway, ties to even (up)
                0x3FF0_1000_0000_1000: 0x3F80,  // 1 + 2^-8 + 2^-40: F32 rounds it to the tie, then even
                0x7FEF_FFFF_FFFF_FFFF: 0x7F80,  // DBL_MAX → +inf
                0x8000_0000_0000_0000: 0x8000,  // -0
                0x7FF8_0000_0000_0000: 0xFFFF,  // quiet NaN
                0xFFF8_0000_0000_0000: 0xFFFF,  // negative quiet NaN
            ] as KeyValuePairs<UInt64, UInt16>, from: .f64, to: .bf16)
    }

    @Test("Same type on both sides copies every byte, NaN payloads included")
    func identityConversionCopiesBytes() {
        let floats: [UInt32] = [0x7F80_0001, 0xFFFF_FFFF, 0x0000_0001, 0x8000_0000]
        #expect(convert(floats, from: .f32, to: .f32, as: UInt32.self) == floats)
        let halves: [UInt16] = [0x7C01, 0xFFFF, 0x0001]
        #expect(convert(halves, from: .f16, to: .f16, as: UInt16.self) == halves)
        #expect(convert(halves, from: .bf16, to: .bf16, as: UInt16.self) == halves)
        let doubles: [UInt64] = [0x7FF0_0000_0000_0001, 0x0000_0000_0000_0001]
        #expect(convert(doubles, from: .f64, to: .f64, as: UInt64.self) == doubles)
        // Sub-byte F4 (two values a byte) copies as bytes.
        let packed: [UInt8] = [0x12, 0xEF, 0x7F]
        #expect(convertBytes(packed, from: .f4, to: .f4, threads: 1) == packed)
    }

    // MARK: - Exhaustive and independent cross-checks

    @Test(
        "Every F16 bit pattern: F16 → F32/F64 equal Swift's Float(Float16); F16 → BF16 is RNE of that (NaN → 0x7FC0); F16 → F32 → F16 restores it"
    )
    func float16ExhaustiveChecks() {
        let halves = (0...UInt16.max).map { $0 }
        let floats = convert(halves, from: .f16, to: .f32, as: UInt32.self)
        let back = convert(floats, from: .f32, to: .f16, as: UInt16.self)
        let doubles = convert(halves, from: .f16, to: .f64, as: UInt64.self)
        let bfloats = convert(halves, from: .f16, to: .bf16, as: UInt16.self)
        var mismatches = 0
        for half in halves {
            let isNaN = half & 0x7FFF > 0x7C00
            let expectedFloat =
                isNaN
                ? (UInt32(half & 0x8000) << 16) | 0x7FC0_0000 | (UInt32(half & 0x03FF) << 13)
                : Float(Float16(bitPattern: half)).bitPattern
            let expectedDouble = Double(Float(bitPattern: expectedFloat)).bitPattern
            let expectedBFloat: UInt16 =
                isNaN
                ? 0x7FC0
                : UInt16(truncatingIfNeeded: (expectedFloat + 0x7FFF + ((expectedFloat >> 16) & 1)) >> 16)
            let expectedBack = isNaN ? half | 0x0200 : half
            let index = Int(half)
            if floats[index] != expectedFloat || back[index] != expectedBack || doubles[index] != expectedDouble
                || bfloats[index] != expectedBFloat
            {
                mismatches += 1
                if mismatches <= 5 {
                    let got = "F32 \(hex(floats[index])) F64 \(hex(doubles[index])) BF16 \(hex(bfloats[index]))"
                    Issue.record("\(hex(half)): \(got) back \(hex(back[index]))")
                }
            }
        }
        #expect(mismatches == 0)
    }

    @Test("Every BF16 bit pattern: BF16 → F16 equals Swift's Float16(Float) (NaN: F16C); BF16 → F32 → BF16 restores it")
    func bfloat16ExhaustiveChecks() {
        let bfloats = (0...UInt16.max).map { $0 }
        let halves = convert(bfloats, from: .bf16, to: .f16, as: UInt16.self)
        let back = convert(
            convert(bfloats, from: .bf16, to: .f32, as: UInt32.self), from: .f32, to: .bf16, as: UInt16.self)
        var mismatches = 0
        for bfloat in bfloats {
            let wide = UInt32(bfloat) << 16
            let isNaN = bfloat & 0x7FFF > 0x7F80
            let expectedHalf =
                isNaN
                ? UInt16(truncatingIfNeeded: (wide >> 16) & 0x8000 | 0x7E00 | (wide >> 13) & 0x03FF)
                : Float16(Float(bitPattern: wide)).bitPattern
            let expectedBack: UInt16 = isNaN ? 0xFFFF : bfloat
            let index = Int(bfloat)
            if halves[index] != expectedHalf || back[index] != expectedBack {
                mismatches += 1
                if mismatches <= 5 {
                    Issue.record(
                        "\(hex(bfloat)): F16 \(hex(halves[index])) expected \(hex(expectedHalf)), back \(hex(back[index]))"
                    )
                }
            }
        }
        #expect(mismatches == 0)
    }

    @Test("2^20 random F32 bit patterns: F32 → F16 equals Swift's software Float16(Float) for every non-NaN")
    func float32ToFloat16MatchesSoftwareRounding() {
        var random = SplitMix64(seed: 0x0123_4567_89AB_CDEF)
        // Half the samples get an exponent in the half range (biased 100...147: below the subnormals up to
        // past 65520), where the rounding cases live; the other half are raw bit patterns.
        let floats: [UInt32] = (0..<(1 << 20)).map { index in
            let raw = UInt32(truncatingIfNeeded: random.next())
            let exponent: UInt32 = 100 + (raw >> 23) % 48
            return index % 2 == 0 ? raw : (raw & 0x807F_FFFF) | (exponent << 23)
        }
        let halves = convert(floats, from: .f32, to: .f16, as: UInt16.self)
        var mismatches = 0
        var compared = 0
        for (index, bits) in floats.enumerated() where !Float(bitPattern: bits).isNaN {
            compared += 1
            let expected = Float16(Float(bitPattern: bits)).bitPattern
            if halves[index] != expected {
                mismatches += 1
                if mismatches <= 5 {
                    Issue.record("\(hex(bits)) gave \(hex(halves[index])), expected \(hex(expected))")
                }
            }
        }
        #expect(mismatches == 0)
        #expect(compared > 1_000_000)
    }

    // MARK: - Threads and chunks

    @Test("Many threads over many chunks give the single-threaded bytes, every direction, odd length")
    func threadedMatchesSingleThreadedWithSmallChunks() {
        for (source, destination) in allDirections {
            // 4 KiB chunks: 100_003 elements span dozens of chunks and end in a partial one.
            let input = mixedBytes(source, count: 100_003, seed: 42)
            let single = convertBytes(input, from: source, to: destination, threads: 1)
            for threads in [2, 3, 8] {
                var output = [UInt8](repeating: 0xA5, count: single.count)
                input.withUnsafeBytes { sourceBytes in
                    output.withUnsafeMutableBytes { destinationBytes in
                        DTypeConversion.convert(
                            sourceBytes, from: source, into: destinationBytes, to: destination,
                            threads: threads, chunkByteCount: 4096)
                    }
                }
                let difference = byteDifference(output, single)
                #expect(difference == nil, "\(source) → \(destination), \(threads) threads")
            }
        }
    }

    @Test(
        "A long buffer (across kernel staging blocks) converts exactly as each element converted alone, every direction"
    )
    func longBufferMatchesElementByElement() {
        for (source, destination) in allDirections {
            let sourceWidth = source.byteWidth ?? 1
            let destinationWidth = destination.byteWidth ?? 1
            let count = 10_007  // more than four 2048-element staging blocks, ending in a partial one
            let input = mixedBytes(source, count: count, seed: 11)
            let whole = convertBytes(input, from: source, to: destination, threads: 1)
            var mismatches = 0
            for index in 0..<count {
                let one = Array(input[(index * sourceWidth)..<((index + 1) * sourceWidth)])
                let alone = convertBytes(one, from: source, to: destination, threads: 1)
                if whole[(index * destinationWidth)..<((index + 1) * destinationWidth)].elementsEqual(alone) == false {
                    mismatches += 1
                }
            }
            #expect(mismatches == 0, "\(source) → \(destination)")
        }
    }

    @Test(
        "At the real chunk size (1 MiB), 2.5 chunks + 7 elements: threaded == single-threaded == per-element reference")
    func threadedMatchesSingleThreadedAtRealChunkSize() {
        #expect(DTypeConversion.chunkByteCount == 1 << 20)
        // F32 → BF16: the source is the wider side, 262_144 elements a chunk.
        let floatCount = DTypeConversion.chunkByteCount / 4 * 5 / 2 + 7
        let floatInput = mixedBytes(.f32, count: floatCount, seed: 7)
        let bfloatSingle = convertBytes(floatInput, from: .f32, to: .bf16, threads: 1)
        #expect(byteDifference(convertBytes(floatInput, from: .f32, to: .bf16, threads: 2), bfloatSingle) == nil)
        #expect(byteDifference(convertBytes(floatInput, from: .f32, to: .bf16, threads: nil), bfloatSingle) == nil)
        let referenceMismatches = floatInput.withUnsafeBytes { sourceBytes in
            bfloatSingle.withUnsafeBytes { resultBytes in
                (0..<floatCount).filter { index in
                    let bits = sourceBytes.loadUnaligned(fromByteOffset: index * 4, as: UInt32.self)
                    let result = resultBytes.loadUnaligned(fromByteOffset: index * 2, as: UInt16.self)
                    return result != ConversionBits.bfloat16(fromFloat32: bits)
                }.count
            }
        }
        #expect(referenceMismatches == 0)

        // BF16 → F32: the destination is the wider side.
        let bfloatCount = DTypeConversion.chunkByteCount / 4 * 5 / 2 + 7
        let bfloatInput = mixedBytes(.bf16, count: bfloatCount, seed: 9)
        let floatSingle = convertBytes(bfloatInput, from: .bf16, to: .f32, threads: 1)
        #expect(byteDifference(convertBytes(bfloatInput, from: .bf16, to: .f32, threads: 2), floatSingle) == nil)
        #expect(floatSingle.count == bfloatCount * 4)
        // Every element's widening is the shift; check the last (partial-chunk) element explicitly.
        let last = bfloatCount - 1
        #expect(floatSingle[(last * 4)..<(last * 4 + 4)] == [0, 0, bfloatInput[last * 2], bfloatInput[last * 2 + 1]])
    }

    @Test("Buffers at odd addresses convert like aligned ones")
    func unalignedBuffersConvert() {
        let input = mixedBytes(.f32, count: 1001, seed: 3)
        let aligned = convertBytes(input, from: .f32, to: .f16, threads: 1)
        let shiftedInput = [0x00] + input
        var shiftedOutput = [UInt8](repeating: 0xA5, count: aligned.count + 3)
        shiftedInput.withUnsafeBytes { sourceBytes in
            shiftedOutput.withUnsafeMutableBytes { destinationBytes in
                DTypeConversion.convert(
                    UnsafeRawBufferPointer(rebasing: sourceBytes[1...]), from: .f32,
                    into: UnsafeMutableRawBufferPointer(rebasing: destinationBytes[3...]), to: .f16, threads: 1)
            }
        }
        #expect(byteDifference(Array(shiftedOutput[3...]), aligned) == nil)
        #expect(shiftedOutput[0..<3] == [0xA5, 0xA5, 0xA5])
    }

    @Test("Empty buffers convert to nothing")
    func emptyBuffersConvert() {
        #expect(convert([UInt32](), from: .f32, to: .bf16, as: UInt16.self).isEmpty)
    }

    // MARK: - Supported directions

    @Test("isSupported: any two of F64/F32/F16/BF16 and any type into itself; nothing else")
    func supportedDirections() {
        for source in DType.allCases {
            for destination in DType.allCases {
                let expected =
                    source == destination
                    || (convertibleTypes.contains(source) && convertibleTypes.contains(destination))
                #expect(
                    DTypeConversion.isSupported(from: source, to: destination) == expected, "\(source) → \(destination)"
                )
            }
        }
        #expect(!DTypeConversion.isSupported(from: .f32, to: .i64))
        #expect(!DTypeConversion.isSupported(from: .f8E4M3, to: .f32))
        #expect(DTypeConversion.isSupported(from: .bf16, to: .f16))
    }
}

/// The F16C kernels (`CHalfKernels`) against the Swift rule they replace on CPUs that have F16C: every one of
/// the 65,536 bfloat16 inputs, and for binary32 every exponent with edge mantissas (the rounding boundaries,
/// subnormal results, overflow to infinity, NaN payloads) plus a million random patterns — the same bits.
@Suite struct HardwareHalfTests {
    static func convert(_ kernel: ConversionKernel, _ source: [UInt8], count: Int, hardware: Bool) -> [UInt16] {
        var out = [UInt16](repeating: 0, count: count)
        source.withUnsafeBytes { input in
            out.withUnsafeMutableBytes {
                kernel.run(source: input.baseAddress!, destination: $0.baseAddress!, count: count, hardware: hardware)
            }
        }
        return out
    }

    @Test(.enabled(if: ConversionKernel.hardwareHalf, "this CPU has no F16C: only the Swift kernels run"))
    func everyBFloat16ConvertsToTheSameHalf() {
        let all = (0...UInt16.max).flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
        let software = Self.convert(.bfloat16ToFloat16, all, count: 65_536, hardware: false)
        let hardware = Self.convert(.bfloat16ToFloat16, all, count: 65_536, hardware: true)
        let differing = (0..<65_536).filter { software[$0] != hardware[$0] }
        #expect(differing.isEmpty, "first: \(differing.prefix(5).map { String($0, radix: 16) })")
    }

    @Test(.enabled(if: ConversionKernel.hardwareHalf, "this CPU has no F16C: only the Swift kernels run"))
    func float32EdgesAndRandomPatternsConvertToTheSameHalf() {
        var patterns: [UInt32] = []
        let mantissas: [UInt32] = [
            0, 1, 0xFFF, 0x1000, 0x1001, 0x1FFF, 0x2000, 0x2001, 0x3FFF, 0x7F_E000, 0x7F_EFFF, 0x7F_F000, 0x7F_FFFF,
            0x40_0000, 0x40_1000,
        ]
        for sign: UInt32 in [0, 0x8000_0000] {
            for exponent: UInt32 in 0...255 {
                for mantissa in mantissas { patterns.append(sign | exponent << 23 | mantissa) }
            }
        }
        var rng = SplitMix64(seed: 0xF16C)
        for _ in 0..<1_000_000 { patterns.append(UInt32(truncatingIfNeeded: rng.next())) }
        // An odd count exercises the scalar tail after the eight-lane loop.
        patterns.append(0x477F_EFFF)
        let bytes = patterns.flatMap { value in (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }
        let software = Self.convert(.float32ToFloat16, bytes, count: patterns.count, hardware: false)
        let hardware = Self.convert(.float32ToFloat16, bytes, count: patterns.count, hardware: true)
        let differing = (0..<patterns.count).filter { software[$0] != hardware[$0] }
        #expect(differing.isEmpty, "first: \(differing.prefix(5).map { String(patterns[$0], radix: 16) })")
    }
}
