import OSLayer

/// Size strings: the one grammar bigmodel-bench accepts wherever a size is given
/// (`--max-shard-size`, `--memory-limit`, `--max-memory`, scenario files).
///
/// Grammar: `DIGITS[.DIGITS][UNIT]`, no spaces. Units, case-insensitive: `B`, decimal `KB MB GB TB`
/// (10^3…10^12, as huggingface_hub's `save_pretrained` reads them) and binary `KiB MiB GiB TiB`
/// (2^10…2^40, as accelerate's `max_memory` also allows). No unit means bytes. Fractions are exact decimal
/// arithmetic, truncated to whole bytes (`1.5GB` = 1,500,000,000; `0.5KiB` = 512). Accelerate's quirk that a
/// lowercase `b` means bits (`5Gb`) is deliberately not reproduced: units are case-insensitive here.
package enum ByteSize {
    package static let example = "use a number of bytes or a size such as 5GB, 1.5GiB or 500MB"

    private static let units: [String: Int] = [
        "": 1, "b": 1,
        "kb": 1_000, "mb": 1_000_000, "gb": 1_000_000_000, "tb": 1_000_000_000_000,
        "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
    ]

    /// Parses a size string; throws a usage error naming the text and showing an example.
    package static func parse(_ text: String) throws(UsageError) -> Int {
        guard let value = parseOrNil(text) else {
            throw UsageError("invalid size '\(text)': \(example)")
        }
        return value
    }

    /// Parses a size string, or nil when it does not follow the grammar or overflows.
    package static func parseOrNil(_ text: String) -> Int? {
        let scalars = Array(text.unicodeScalars)
        var index = 0
        var integerDigits: [Int] = []
        while index < scalars.count, let d = digit(scalars[index]) {
            integerDigits.append(d)
            index += 1
        }
        var fractionDigits: [Int] = []
        if index < scalars.count, scalars[index] == "." {
            index += 1
            while index < scalars.count, let d = digit(scalars[index]) {
                fractionDigits.append(d)
                index += 1
            }
            guard !fractionDigits.isEmpty else { return nil }
        }
        guard !integerDigits.isEmpty else { return nil }
        let unitText = String(String.UnicodeScalarView(scalars[index...])).lowercased()
        guard let multiplier = units[unitText] else { return nil }
        // A fraction only makes sense with a unit: "1.5" bytes is not a size.
        if !fractionDigits.isEmpty && multiplier == 1 { return nil }

        // value = (integer + fraction) * multiplier, computed exactly: (mantissa * multiplier) / 10^k.
        var mantissa = 0
        for d in integerDigits + fractionDigits {
            let (m1, o1) = mantissa.multipliedReportingOverflow(by: 10)
            let (m2, o2) = m1.addingReportingOverflow(d)
            guard !o1, !o2 else { return nil }
            mantissa = m2
        }
        var scale = 1
        for _ in fractionDigits {
            let (s, o) = scale.multipliedReportingOverflow(by: 10)
            guard !o else { return nil }
            scale = s
        }
        // Reduce before multiplying so that long fractions do not overflow needlessly.
        let g = gcd(multiplier, scale)
        let (product, overflow) = mantissa.multipliedReportingOverflow(by: multiplier / g)
        guard !overflow else { return nil }
        return product / (scale / g)
    }

    private static func digit(_ s: Unicode.Scalar) -> Int? {
        (s.value >= 0x30 && s.value <= 0x39) ? Int(s.value - 0x30) : nil
    }

    private static func gcd(_ a: Int, _ b: Int) -> Int {
        var (a, b) = (a, b)
        while b != 0 { (a, b) = (b, a % b) }
        return a
    }

    /// Formats bytes in binary units with the unit stated: `16.00 GiB`, `512.00 KiB`, `10 B`.
    package static func binary(_ bytes: Int, digits: Int = 2) -> String {
        format(bytes, base: 1024, units: ["B", "KiB", "MiB", "GiB", "TiB", "PiB"], digits: digits)
    }

    /// Formats bytes in decimal units with the unit stated: `17.08 GB`.
    package static func decimal(_ bytes: Int, digits: Int = 2) -> String {
        format(bytes, base: 1000, units: ["B", "KB", "MB", "GB", "TB", "PB"], digits: digits)
    }

    private static func format(_ bytes: Int, base: Double, units: [String], digits: Int) -> String {
        let sign = bytes < 0 ? "-" : ""
        var value = Double(bytes.magnitude)
        var unit = 0
        // Pick the unit after rounding, so 1,048,575 bytes reads 1.00 MiB rather than 1024.00 KiB.
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        while unit < units.count - 1 && ((value * scale).rounded() / scale) >= base {
            value /= base
            unit += 1
        }
        if unit == 0 { return "\(sign)\(bytes.magnitude) B" }
        return "\(sign)\(fixed(value, digits: digits)) \(units[unit])"
    }

    /// Fixed-point formatting without Foundation's locale-dependent `String(format:)`.
    /// At most `maxDigits` decimals, trailing zeros dropped, never `-0`: `12.5`, `300`, `2.03`.
    package static func trimmed(_ value: Double, maxDigits: Int = 6) -> String {
        var text = fixed(value, digits: maxDigits)
        if text.contains(".") {
            while text.hasSuffix("0") { text.removeLast() }
            if text.hasSuffix(".") { text.removeLast() }
        }
        return text == "-0" ? "0" : text
    }

    /// A size that may be negative, with a minus sign (U+2212) rather than a hyphen: `−1.50 GiB`, `3.00 MiB`.
    package static func binaryWithMinus(_ bytes: Int) -> String {
        bytes < 0 ? "−" + binary(bytes == Int.min ? Int.max : -bytes) : binary(bytes)
    }

    package static func fixed(_ value: Double, digits: Int) -> String {
        guard value.isFinite else { return "\(value)" }
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let rounded = (value.magnitude * scale).rounded()
        let whole = Int(rounded / scale)
        let fraction = Int(rounded - Double(whole) * scale)
        let sign = value < 0 && rounded != 0 ? "-" : ""
        guard digits > 0 else { return "\(sign)\(whole)" }
        var fractionText = String(fraction)
        while fractionText.count < digits { fractionText = "0" + fractionText }
        return "\(sign)\(whole).\(fractionText)"
    }
}
