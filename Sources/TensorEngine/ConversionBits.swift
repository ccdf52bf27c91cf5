/// Per-element bit conversions between the IEEE binary64/binary32/binary16 and bfloat16 encodings, each one
/// reproducing the bits torch 2.x produces on an x86-64 CPU.
///
/// Every function is branch-free: both candidate results are computed and the right one picked with a
/// select, so that LLVM can vectorise the loops in `ConversionKernel` (a branch per element would stop it).
/// The few float operations used (`+`, `-`, `*`, `Float(Double)`, `Double(Float)`) depend on the default
/// round-to-nearest-even mode with subnormals enabled, which is what Swift runs with.
enum ConversionBits {
    // MARK: binary32 → bfloat16

    /// torch's vectorised (AVX2/AVX-512) float→bfloat16: round to nearest even by adding 0x7FFF plus the
    /// lowest kept bit, and every NaN becomes 0xFFFF (the kernel ORs an all-ones NaN mask into the result).
    @inline(__always)
    static func bfloat16(fromFloat32 bits: UInt32) -> UInt16 {
        let rounded = UInt16(truncatingIfNeeded: (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) >> 16)
        return (bits & 0x7FFF_FFFF) > 0x7F80_0000 ? 0xFFFF : rounded
    }

    // MARK: binary32 → binary16

    /// Matches x86 F16C `vcvtps2ph` (round to nearest even), which torch uses: overflow past 65520 gives ±inf,
    /// subnormal results are correctly rounded, and a NaN keeps its sign and top 10 payload bits with the
    /// quiet bit forced (0x7FC00000 → 0x7E00, 0xFFFF0000 → 0xFFF8).
    @inline(__always)
    static func float16(fromFloat32 bits: UInt32) -> UInt16 {
        let sign = (bits >> 16) & 0x8000
        let magnitude = bits & 0x7FFF_FFFF

        // Normal half results: rebias the exponent (-112 << 23 = 0xC8000000) and round at bit 13 to nearest
        // even by adding 0xFFF plus the lowest kept bit; a carry out of the mantissa bumps the exponent,
        // which is exactly right (including 65504 < x < 65520 staying 0x7BFF).
        let lowestKeptBit = (magnitude >> 13) & 1
        let normal = (magnitude &+ 0xC800_0FFF &+ lowestKeptBit) >> 13

        // Subnormal half results (|x| < 2^-14): adding 0.5 puts the half-subnormal ulp (2^-24) at the last
        // bit of the float mantissa, so the hardware addition does the round-to-nearest-even for us and the
        // result's low bits are the half's bits.
        let subnormal = (Float(bitPattern: magnitude) + 0.5).bitPattern &- 0x3F00_0000

        let quietNaN = 0x7E00 | ((magnitude >> 13) & 0x03FF)

        var result = magnitude < 0x3880_0000 ? subnormal : normal
        result = magnitude >= 0x477F_F000 ? 0x7C00 : result
        result = magnitude > 0x7F80_0000 ? quietNaN : result
        return UInt16(truncatingIfNeeded: result | sign)
    }

    // MARK: binary16 → binary32

    /// Exact; a NaN keeps its payload and gets the quiet bit, as F16C `vcvtph2ps` and c10's scalar
    /// `fp16_ieee_to_fp32_value` both do. This is c10's own algorithm: the float multiply rebiases normals,
    /// turns the maximum exponent into inf/NaN and quiets a signalling NaN, all without a select, which
    /// makes it half again as fast as rebiasing with integer adds.
    @inline(__always)
    static func float32(fromFloat16 half: UInt16) -> UInt32 {
        let widened = UInt32(half) << 16
        let sign = widened & 0x8000_0000
        let doubled = widened &+ widened  // exponent and mantissa at the top, sign shifted out
        // Exponent field moved into float position with a +224 bias, then scaled by 2^-112: net +112 = 127 - 15.
        let normalised = (Float(bitPattern: (doubled >> 4) &+ (0xE0 << 23)) * 0x1.0p-112).bitPattern
        // Subnormal halves: 0.5 + m·2^-24 built by placing m in a float mantissa, then 0.5 subtracted exactly.
        let subnormal = (Float(bitPattern: (doubled >> 17) | (126 << 23)) - 0.5).bitPattern
        return sign | (doubled < (1 << 27) ? subnormal : normalised)
    }

    // MARK: binary16 → bfloat16

    /// Equal to widening exactly to binary32 and rounding that to nearest even, but computed on the 16-bit
    /// encoding where it can (a half's exponent always fits bfloat16's), which nearly doubles the speed.
    /// Half→BFloat16 in torch goes through c10's scalar `round_to_nearest_even`, which turns every NaN into
    /// the positive canonical 0x7FC0 (the sign is dropped), unlike torch's vectorised float path.
    @inline(__always)
    static func bfloat16(fromFloat16 half: UInt16) -> UInt16 {
        let magnitude = half & 0x7FFF
        let sign = half & 0x8000
        // Normal halves: drop 3 mantissa bits rounding to nearest even, rebias the exponent by 112 << 7.
        let normal = (((magnitude &+ 3 &+ ((magnitude >> 3) & 1)) >> 3) &+ 0x3800) | sign
        // Subnormal halves are normal bfloat16s: widen exactly as `float32(fromFloat16:)` does, then round.
        let widened = (Float(bitPattern: UInt32(magnitude) | (126 << 23)) - 0.5).bitPattern
        let subnormal = UInt16(truncatingIfNeeded: (widened &+ 0x7FFF &+ ((widened >> 16) & 1)) >> 16) | sign
        let infinityOrNaN: UInt16 = magnitude > 0x7C00 ? 0x7FC0 : 0x7F80 | sign

        let result = magnitude < 0x0400 ? subnormal : normal
        return magnitude >= 0x7C00 ? infinityOrNaN : result
    }

    // MARK: bfloat16 → binary32

    /// bfloat16 is the top half of a binary32: torch widens it by a plain shift, so even a signalling NaN
    /// stays bit-identical (no quieting).
    @inline(__always)
    static func float32(fromBFloat16 bfloat: UInt16) -> UInt32 {
        UInt32(bfloat) << 16
    }

    // MARK: bfloat16 → binary16

    /// Equal to `float16(fromFloat32: float32(fromBFloat16:))`, but cheaper: every bfloat16 that is a normal
    /// half converts exactly (bfloat16 has fewer mantissa bits), so only half-subnormal results need rounding,
    /// and the rest is done on the 16-bit encoding. Nearly twice as fast as going through binary32.
    @inline(__always)
    static func float16(fromBFloat16 bfloat: UInt16) -> UInt16 {
        let magnitude = bfloat & 0x7FFF
        let sign = bfloat & 0x8000
        // Normal halves (2^-14 ≤ |x| ≤ 65280): rebias the exponent by -112 << 7 and widen the mantissa.
        let normal = (magnitude &- 0x3800) &<< 3
        // Subnormal halves: the same rounding addition as `float16(fromFloat32:)`.
        let subnormal = UInt16(
            truncatingIfNeeded: (Float(bitPattern: UInt32(magnitude) << 16) + 0.5).bitPattern &- 0x3F00_0000)
        // |x| ≥ 65536 is inf; a NaN keeps its top payload bits with the quiet bit set, as F16C does.
        let infinityOrNaN: UInt16 = magnitude > 0x7F80 ? 0x7E00 | ((magnitude & 0x7F) << 3) : 0x7C00

        var result = magnitude < 0x3880 ? subnormal : normal
        result = magnitude >= 0x4780 ? infinityOrNaN : result
        return result | sign
    }

    // MARK: binary64 ↔ binary32

    /// torch converts double to half and bfloat16 through float (`static_cast<float>` first), so the double
    /// is rounded twice; reproducing that needs the hardware double→float conversion first.
    @inline(__always)
    static func float32(fromFloat64 bits: UInt64) -> UInt32 {
        Float(Double(bitPattern: bits)).bitPattern
    }

    /// Exact; NaNs are quieted with their payload kept, as `cvtss2sd` does.
    @inline(__always)
    static func float64(fromFloat32 bits: UInt32) -> UInt64 {
        Double(Float(bitPattern: bits)).bitPattern
    }
}
