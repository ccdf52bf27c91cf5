/// Serialises `JSONValue` byte-exactly in the styles the Hugging Face stack writes.
///
/// Hand-written because the output must match other tools to the byte: safetensors headers are serde_json's
/// compact form (no spaces, raw UTF-8, `\u00xx` in lowercase hex), and `model.safetensors.index.json` /
/// `config.json` are Python's `json.dumps(indent=2, sort_keys=True)` (`": "`, ASCII-only escapes). Foundation's
/// `JSONSerialization` writes `" : "` on Linux and escapes `/`, so it cannot produce either.
package struct JSONWriter: Sendable {
    package enum Escaping: Sendable {
        /// serde_json: `\"` `\\` `\b` `\f` `\n` `\r` `\t`, other bytes below 0x20 as `\u00xx`, the rest raw UTF-8.
        case rawUTF8
        /// Python's `ensure_ascii=True`: as above, plus everything outside 0x20...0x7E as `\uxxxx`
        /// (UTF-16 surrogate pairs above U+FFFF).
        case asciiOnly
    }

    /// nil: compact (no whitespace at all); n: Python's layout, a newline and n spaces per level, `": "`.
    package var indent: Int?
    package var sortKeys: Bool
    package var escaping: Escaping

    package init(indent: Int? = nil, sortKeys: Bool = false, escaping: Escaping = .rawUTF8) {
        self.indent = indent
        self.sortKeys = sortKeys
        self.escaping = escaping
    }

    /// serde_json's `to_string`: what safetensors writes in a header.
    package static let compact = JSONWriter()
    /// Python `json.dumps(obj, indent=2, sort_keys=True)`: what transformers writes for indexes and configs.
    package static let pythonSorted = JSONWriter(indent: 2, sortKeys: true, escaping: .asciiOnly)
    /// This tool's own human-readable JSON: two-space indent, keys in the order given, raw UTF-8.
    package static let pretty = JSONWriter(indent: 2, sortKeys: false, escaping: .rawUTF8)

    package func string(_ value: JSONValue) -> String {
        var out: [UInt8] = []
        write(value, level: 0, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    package func bytes(_ value: JSONValue) -> [UInt8] {
        var out: [UInt8] = []
        write(value, level: 0, into: &out)
        return out
    }

    private func newline(_ level: Int, into out: inout [UInt8]) {
        guard let indent else { return }
        out.append(0x0A)
        out.append(contentsOf: repeatElement(0x20, count: indent * level))
    }

    private func write(_ value: JSONValue, level: Int, into out: inout [UInt8]) {
        switch value {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .number(let n): out.append(contentsOf: n.literal.utf8)
        case .string(let s): writeString(s, into: &out)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            if items.isEmpty {
                out.append(UInt8(ascii: "]"))
                return
            }
            for (i, item) in items.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                newline(level + 1, into: &out)
                write(item, level: level + 1, into: &out)
            }
            newline(level, into: &out)
            out.append(UInt8(ascii: "]"))
        case .object(let object):
            out.append(UInt8(ascii: "{"))
            if object.isEmpty {
                out.append(UInt8(ascii: "}"))
                return
            }
            // Python orders str keys by code point; Swift's `<` on String uses canonical equivalence instead.
            var entries = Array(object.elements)
            if sortKeys {
                entries.sort { $0.key.unicodeScalars.lexicographicallyPrecedes($1.key.unicodeScalars) }
            }
            for (i, entry) in entries.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                newline(level + 1, into: &out)
                writeString(entry.key, into: &out)
                out.append(UInt8(ascii: ":"))
                if indent != nil { out.append(0x20) }
                write(entry.value, level: level + 1, into: &out)
            }
            newline(level, into: &out)
            out.append(UInt8(ascii: "}"))
        }
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    private func appendUnicodeEscape(_ unit: UInt16, into out: inout [UInt8]) {
        out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u")])
        for shift in stride(from: 12, through: 0, by: -4) {
            out.append(Self.hexDigits[Int((unit >> UInt16(shift)) & 0xF)])
        }
    }

    package func writeString(_ string: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case "\\": out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case "\u{08}": out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "b")])
            case "\u{0C}": out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "f")])
            case "\n": out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case "\r": out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case "\t": out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            default:
                if scalar.value < 0x20 {
                    appendUnicodeEscape(UInt16(scalar.value), into: &out)
                } else if escaping == .asciiOnly && scalar.value > 0x7E {
                    for unit in String(scalar).utf16 { appendUnicodeEscape(unit, into: &out) }
                } else {
                    out.append(contentsOf: String(scalar).utf8)
                }
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}
