import TensorEngine

/// 65,536 quantiles of the normal distribution, pre-converted to a target dtype's bits, so that generating a
/// normally distributed value costs one table lookup.
///
/// A synthetic checkpoint must be written at disk speed; Box–Muller (a log, a square root and a sine per two
/// values) runs at a tenth of that. Entry i is Φ⁻¹((i + ½) / 65536) · std, so a uniform 16-bit index gives a
/// value distributed as N(0, std²) quantised to 65,536 levels, with tails to ±4.3σ.
struct NormalTable {
    static let size = 1 << 16
    /// The table's raw little-endian bytes: `size` elements of `dtype`.
    let bytes: [UInt8]
    let dtype: DType

    init(std: Double, dtype: DType) {
        precondition(dtype.isConvertible)
        var values = [Double](repeating: 0, count: Self.size)
        for i in 0..<Self.size {
            values[i] = Self.inverseNormalCDF((Double(i) + 0.5) / Double(Self.size)) * std
        }
        let width = dtype.byteWidth ?? 4
        var out = [UInt8](repeating: 0, count: Self.size * width)
        values.withUnsafeBytes { source in
            out.withUnsafeMutableBytes { destination in
                DTypeConversion.convert(source, from: .f64, into: destination, to: dtype, threads: 1)
            }
        }
        self.bytes = out
        self.dtype = dtype
    }

    /// Acklam's rational approximation of the normal quantile function (relative error < 1.2e-9), refined
    /// by one Halley step; exact enough that quantisation, not the approximation, bounds the error.
    static func inverseNormalCDF(_ p: Double) -> Double {
        let a = [
            -3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02,
            -3.066479806614716e+01, 2.506628277459239e+00,
        ]
        let b = [
            -5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01,
            -1.328068155288572e+01,
        ]
        let c = [
            -7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00,
            4.374664141464968e+00, 2.938163982698783e+00,
        ]
        let d = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00]
        let low = 0.02425
        var x: Double
        if p < low {
            let q = (-2 * log(p)).squareRoot()
            x =
                (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5])
                / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
        } else if p <= 1 - low {
            let q = p - 0.5
            let r = q * q
            x =
                (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q
                / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
        } else {
            let q = (-2 * log(1 - p)).squareRoot()
            x =
                -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5])
                / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
        }
        // Halley refinement with erfc.
        let e = 0.5 * erfc(-x / 2.0.squareRoot()) - p
        let u = e * (2 * Double.pi).squareRoot() * exp(x * x / 2)
        x -= u / (1 + x * u / 2)
        return x
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
