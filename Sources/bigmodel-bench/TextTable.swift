import Foundation
import OSLayer
// Rainbow keeps its switches in global variables, written once here before any output.
@preconcurrency import Rainbow

/// A plain-text table with columns padded to their widest cell.
enum TextTable {
    /// `style`, when given, decorates each padded body cell (row index from 1, column index) after the layout,
    /// so escape sequences never count toward a column's width.
    static func render(_ rows: [[String]], rightAligned: Set<Int> = [], style: ((Int, Int, String) -> String)? = nil)
        -> String
    {
        guard let header = rows.first else { return "" }
        var widths = Array(repeating: 0, count: header.count)
        for row in rows {
            for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) }
        }
        var out = ""
        for (r, row) in rows.enumerated() {
            var line = ""
            for (i, cell) in row.enumerated() {
                let pad = String(repeating: " ", count: max(0, widths[i] - cell.count))
                let padded = rightAligned.contains(i) ? pad + cell : cell + (i == row.count - 1 ? "" : pad)
                line += r > 0 ? style?(r, i, padded) ?? padded : padded
                if i < row.count - 1 { line += "  " }
            }
            out += line + "\n"
            if r == 0 { out += widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ") + "\n" }
        }
        return out
    }
}

/// Verdicts in colour where the output wants it (``Terminal/wantsColour(_:)``: a terminal, NO_COLOR and
/// FORCE_COLOR honoured); Rainbow writes the escape sequences.
enum VerdictColour {
    /// Decided once, for standard output.
    static let enabled: Bool = {
        let wanted = Terminal.wantsColour(1)
        Rainbow.enabled = wanted
        // Rainbow colours only what it takes for a console; FORCE_COLOR asks for colour in a pipe too.
        if wanted { Rainbow.outputTarget = .console }
        return wanted
    }()

    /// `text` (a padded verdict cell) coloured by the verdict it holds: pass green, fail red, oom yellow,
    /// error red and bold.
    static func paint(_ text: String) -> String {
        guard enabled else { return text }
        switch text.trimmingCharacters(in: .whitespaces) {
        case "pass": return text.green
        case "fail": return text.red
        case "oom": return text.yellow
        case "error": return text.red.bold
        default: return text
        }
    }
}
