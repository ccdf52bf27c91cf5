import TensorEngine

/// A minimal SVG writer: elements appended as text, numbers in fixed notation (no locale, no exponent),
/// attribute and text content escaped. Deterministic by construction.
struct SVGDocument {
    let width: Double
    let height: Double
    private(set) var body: [String] = []

    init(width: Double, height: Double) {
        self.width = width
        self.height = height
    }

    /// Coordinates: two decimals, trailing zeros trimmed (`12.5`, `300`).
    static func n(_ value: Double) -> String { Format.trimmed(value, maxDigits: 2) }

    static func escape(_ text: String) -> String {
        var out = ""
        for c in text {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(c)
            }
        }
        return out
    }

    static func attributes(_ pairs: [(String, String)]) -> String {
        pairs.map { " \($0.0)=\"\(escape($0.1))\"" }.joined()
    }

    mutating func raw(_ line: String) { body.append(line) }

    mutating func rect(x: Double, y: Double, width: Double, height: Double, _ extra: [(String, String)] = []) {
        body.append(
            "<rect x=\"\(Self.n(x))\" y=\"\(Self.n(y))\" width=\"\(Self.n(max(0, width)))\" height=\"\(Self.n(max(0, height)))\"\(Self.attributes(extra))/>"
        )
    }

    mutating func line(x1: Double, y1: Double, x2: Double, y2: Double, _ extra: [(String, String)] = []) {
        body.append(
            "<line x1=\"\(Self.n(x1))\" y1=\"\(Self.n(y1))\" x2=\"\(Self.n(x2))\" y2=\"\(Self.n(y2))\"\(Self.attributes(extra))/>"
        )
    }

    enum Anchor: String {
        case start, middle, end
    }

    mutating func text(
        _ content: String, x: Double, y: Double, size: Double = Style.fontSize, anchor: Anchor = .start,
        weight: String? = nil,
        fill: String = Style.ink, rotate: Double? = nil, _ extra: [(String, String)] = []
    ) {
        var attrs: [(String, String)] = [("font-size", Self.n(size))]
        if anchor != .start { attrs.append(("text-anchor", anchor.rawValue)) }
        if let weight { attrs.append(("font-weight", weight)) }
        if fill != Style.ink { attrs.append(("fill", fill)) }
        if let rotate { attrs.append(("transform", "rotate(\(Self.n(rotate)) \(Self.n(x)) \(Self.n(y)))")) }
        attrs += extra
        body.append(
            "<text x=\"\(Self.n(x))\" y=\"\(Self.n(y))\"\(Self.attributes(attrs))>\(Self.escape(content))</text>")
    }

    /// A polyline as a path (`M x,y L x,y …`).
    mutating func path(_ points: [(Double, Double)], _ extra: [(String, String)]) {
        guard let first = points.first else { return }
        var d = "M\(Self.n(first.0)),\(Self.n(first.1))"
        for p in points.dropFirst() { d += " L\(Self.n(p.0)),\(Self.n(p.1))" }
        body.append("<path d=\"\(d)\" fill=\"none\"\(Self.attributes(extra))/>")
    }

    /// The whole document: an opaque white background first, so it reads the same in dark mode.
    func render(title: String, description: String) -> String {
        var out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        out +=
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Self.n(width))\" height=\"\(Self.n(height))\" viewBox=\"0 0 \(Self.n(width)) \(Self.n(height))\""
        out +=
            " font-family=\"\(Style.fontFamily)\" font-size=\"\(Self.n(Style.fontSize))\" fill=\"\(Style.ink)\" role=\"img\">\n"
        out += "<title>\(Self.escape(title))</title>\n<desc>\(Self.escape(description))</desc>\n"
        out += "<rect x=\"0\" y=\"0\" width=\"\(Self.n(width))\" height=\"\(Self.n(height))\" fill=\"#ffffff\"/>\n"
        for line in body { out += line + "\n" }
        out += "</svg>\n"
        return out
    }
}

/// Colours, fonts and the text-width estimate the layouts rely on.
enum Style {
    static let fontFamily = "DejaVu Sans, Verdana, Helvetica, Arial, sans-serif"
    static let fontSize = 12.0
    static let ink = "#1a1a1a"
    static let muted = "#555555"
    static let grey = "#a8a8a8"
    static let grid = "#e3e3e3"
    static let axis = "#333333"
    /// Okabe–Ito colours: distinguishable with the common colour-vision deficiencies, dark enough on white.
    static let blue = "#0072B2"
    static let orange = "#E69F00"
    static let green = "#009E73"
    static let vermillion = "#D55E00"
    static let purple = "#CC79A7"
    static let sky = "#56B4E9"
    static let bound = "#B00020"

    /// A generous estimate of the rendered width of `text` (DejaVu Sans is among the widest common sans
    /// fonts; layouts use this to keep labels apart, so overestimating is the safe side).
    static func textWidth(_ text: String, size: Double = fontSize) -> Double {
        var units = 0.0
        for c in text {
            switch c {
            case "i", "l", "j", "'", "|", ".", ",", ":", ";", "!", "I", " ", "(", ")", "[", "]", "f", "t", "r":
                units += 0.40
            case "m", "w", "M", "W", "—", "%", "@": units += 0.95
            case "A"..."Z", "Δ", "≤", "≥", "±", "–", "→", "×": units += 0.75
            default: units += 0.64
            }
        }
        return units * size
    }
}

/// Axis ranges and ticks at round values.
struct Axis {
    let minimum: Double
    let maximum: Double
    let ticks: [Double]
    /// Digits after the decimal point the tick labels need.
    let digits: Int

    /// Round ticks covering `low…high` with about `target` intervals, on steps of 1, 2, 2.5 or 5 × 10^k.
    static func nice(low: Double, high: Double, target: Int = 5) -> Axis {
        var low = low
        var high = high
        if !(high > low) { high = low + 1 }
        if low > 0 { low = 0 }
        let rough = (high - low) / Double(target)
        var magnitude = 1.0
        while magnitude * 10 <= rough { magnitude *= 10 }
        while magnitude > rough { magnitude /= 10 }
        var step = magnitude
        for factor in [1.0, 2.0, 2.5, 5.0, 10.0] where magnitude * factor >= rough {
            step = magnitude * factor
            break
        }
        let first = (low / step).rounded(.down)
        let last = (high / step).rounded(.up)
        var digits = 0
        var scaled = step
        while digits < 6 && (scaled - scaled.rounded()).magnitude > 1e-9 {
            scaled *= 10
            digits += 1
        }
        // k × step carries binary rounding (3 × 0.1 = 0.30000000000000004): round to the digits the step has.
        var unit = 1.0
        for _ in 0..<digits { unit *= 10 }
        let value = { (k: Double) -> Double in (k * step * unit).rounded() / unit }
        var ticks: [Double] = []
        var k = first
        while k <= last + 0.5 {
            ticks.append(value(k))
            k += 1
        }
        return Axis(minimum: value(first), maximum: value(last), ticks: ticks, digits: digits)
    }

    func label(_ value: Double) -> String {
        let text = ByteSize.fixed(value, digits: digits)
        return text.hasPrefix("-") && Double(text) == 0 ? String(text.dropFirst()) : text
    }
}

/// The binary unit an axis of bytes is drawn in: KiB, MiB or GiB, whichever keeps the numbers small.
struct ByteUnit {
    let name: String
    let bytes: Double

    static func forMaximum(_ bytes: Double) -> ByteUnit {
        if bytes >= Double(1 << 30) { return ByteUnit(name: "GiB", bytes: Double(1 << 30)) }
        if bytes >= Double(1 << 20) { return ByteUnit(name: "MiB", bytes: Double(1 << 20)) }
        return ByteUnit(name: "KiB", bytes: Double(1 << 10))
    }

    var definition: String {
        switch name {
        case "GiB": return "1 GiB = 2^30 bytes"
        case "MiB": return "1 MiB = 2^20 bytes"
        default: return "1 KiB = 2^10 bytes"
        }
    }
}

/// Lays out legend-like entries in as many equal columns as fit in `width`.
struct ColumnLayout {
    let columns: Int
    let columnWidth: Double
    let rows: Int

    init(entryWidths: [Double], width: Double, gap: Double = 24) {
        let widest = entryWidths.max() ?? 0
        let fit = max(1, Int((width + gap) / (widest + gap)))
        columns = max(1, min(fit, entryWidths.count))
        columnWidth = columns > 1 ? (width + gap) / Double(columns) : width
        rows = entryWidths.isEmpty ? 0 : (entryWidths.count + columns - 1) / columns
    }

    /// Column-major position of entry `index`: (column, row).
    func position(_ index: Int) -> (column: Int, row: Int) { (index / max(rows, 1), index % max(rows, 1)) }
}
