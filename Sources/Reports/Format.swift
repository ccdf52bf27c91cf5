import ResultsFormat
import TensorEngine

/// Human formatting shared by the markdown report, the charts and `compare`: binary units with the unit
/// stated, fixed digits, no locale, so the same results file always renders to the same bytes.
package enum Format {
    /// `422.04 MiB` (binary units: 1 MiB = 2^20 bytes).
    package static func size(_ bytes: Int) -> String { ByteSize.binary(bytes) }

    /// A figure that may not exist for a run: its size, or `-` (absent is never shown as 0).
    package static func size(_ bytes: Int?) -> String { bytes.map { ByteSize.binary($0) } ?? "-" }

    /// `+21.10 MiB`, `-1 B`, `0 B`: a change with its sign.
    package static func signedSize(_ bytes: Int) -> String {
        bytes > 0 ? "+" + ByteSize.binary(bytes) : ByteSize.binary(bytes)
    }

    /// `16.00 GiB (17.18 GB)`: both unit systems, for sizes people compare with decimal figures
    /// (shard sizes and model sizes on the Hugging Face Hub are decimal).
    package static func sizeBoth(_ bytes: Int) -> String { "\(ByteSize.binary(bytes)) (\(ByteSize.decimal(bytes)))" }

    /// Seconds with a fixed number of digits: `1.088`.
    package static func seconds(_ value: Double, digits: Int = 3) -> String { ByteSize.fixed(value, digits: digits) }

    /// `+20.0%`, `-3.1%`, `0.0%`.
    package static func signedPercent(_ fraction: Double, digits: Int = 1) -> String {
        let text = ByteSize.fixed(fraction * 100, digits: digits)
        return (fraction > 0 && text != ByteSize.fixed(0, digits: digits) ? "+" : "") + text + "%"
    }

    /// A plain decimal with `digits` fraction digits and trailing zeros trimmed (`0.5`, `1`, `0.03`).
    package static func trimmed(_ value: Double, maxDigits: Int = 6) -> String {
        ByteSize.trimmed(value, maxDigits: maxDigits)
    }

    /// Integers with thousands separators: `442,535,936`.
    package static func grouped(_ value: Int) -> String {
        let digits = String(value.magnitude)
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return (value < 0 ? "-" : "") + out
    }

    /// A markdown table cell: pipes escaped, line breaks flattened.
    package static func cell(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "|", with: "\\|")
            .replacingOccurrences(of: "\r\n", with: " ").replacingOccurrences(of: "\n", with: " ")
    }

    /// Inline code in markdown that survives backticks inside.
    /// A share as a percentage with one decimal: `0.934` → `93.4%`.
    package static func percent(_ fraction: Double) -> String { ByteSize.fixed(fraction * 100, digits: 1) + "%" }

    package static func code(_ text: String) -> String {
        let flat = text.replacingOccurrences(of: "\n", with: " ")
        return flat.contains("`") ? "`` \(flat) ``" : "`\(flat)`"
    }

    /// A GitHub-flavoured markdown table. Columns are padded so it also reads in a terminal;
    /// `rightAligned` columns get `---:` alignment.
    package static func markdownTable(_ rows: [[String]], rightAligned: Set<Int> = []) -> String {
        guard let header = rows.first else { return "" }
        let escaped = rows.map { $0.map(cell) }
        var widths = Array(repeating: 3, count: header.count)
        for row in escaped {
            for (i, text) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], text.count) }
        }
        func line(_ row: [String]) -> String {
            var parts: [String] = []
            for i in 0..<header.count {
                let text = i < row.count ? row[i] : ""
                let pad = String(repeating: " ", count: max(0, widths[i] - text.count))
                parts.append(rightAligned.contains(i) ? pad + text : text + pad)
            }
            return "| " + parts.joined(separator: " | ") + " |"
        }
        var out = line(escaped[0]) + "\n"
        out +=
            "|"
            + (0..<header.count).map { i in
                rightAligned.contains(i)
                    ? " " + String(repeating: "-", count: widths[i] - 1) + ": "
                    : " " + String(repeating: "-", count: widths[i]) + " "
            }.joined(separator: "|") + "|\n"
        for row in escaped.dropFirst() { out += line(row) + "\n" }
        return out
    }

    /// A run's label in tables and file names: its id, plus `s=<scale>` in a sweep, `#n` when the scenario
    /// repeats runs, `rN` for a rank.
    package static func runLabel(_ run: RunResult, repeatCount: Int) -> String {
        run.id + (run.scale.map { " s=" + SweepFitting.scaleText($0) } ?? "")
            + (repeatCount > 1 ? " #\(run.repeatIndex + 1)" : "") + (run.rank.map { " r\($0)" } ?? "")
    }

    /// A file-name-safe version of `text`: letters, digits, `-`, `_` and `.` kept, anything else `_`.
    package static func fileSafe(_ text: String) -> String {
        String(text.map { c in (c.isASCII && (c.isLetter || c.isNumber)) || "-_.".contains(c) ? c : "_" })
    }
}
