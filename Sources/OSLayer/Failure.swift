/// What kind of failure an error is, as far as the person or script that ran the tool is concerned.
///
/// The library layers say *what* went wrong; the exit status a category maps to is policy of the layer that
/// owns exits (`Reports.ExitStatus`, documented in the README's "Exit statuses").
package enum FailureCategory: String, Sendable, CaseIterable {
    /// The command line or a value given on it is wrong.
    case usage
    /// An input file exists but breaks a rule: a malformed checkpoint, config, scenario or results file.
    case badData
    /// An input file does not exist or cannot be opened.
    case missingInput
    /// Reading or writing failed, or the disk is too small.
    case io
    /// A memory cap was hit (a ledger budget, a simulated accelerator, malloc returning NULL).
    case outOfMemory
    /// The user interrupted (SIGINT / SIGTERM).
    case interrupted
    /// Two results files cannot be compared (another scenario, scale or checkpoint; a missing baseline).
    case notComparable
    /// A program the run needs is missing or cannot run: a Python interpreter, a package, a loader command.
    case unavailable
}

/// An error the CLI reports as one line and maps, through its category, to a documented exit status.
///
/// Every module's error type conforms, so the executable never needs to know which module failed.
package protocol ReportableError: Error, CustomStringConvertible {
    var category: FailureCategory { get }
}

/// The rule an input broke, as a named case: one enum per kind of input (safetensors files, checkpoint
/// folders, configs, scenarios, placements …), each case's name printed in the message so it can be looked up.
package protocol FailureRule: Sendable, Equatable {
    /// The name printed in messages (`HeaderTooSmall`); nil prints none.
    var ruleName: String? { get }
    /// The category errors of this rule fall in, unless the raising site says otherwise.
    var category: FailureCategory { get }
    /// What a location inside the source is (`tensor`, `field`), printed as `tensor 'name'`; nil prints the
    /// location as it is (a JSON path, a key).
    static var locationKind: String? { get }
}

extension FailureRule {
    package static var locationKind: String? { nil }
}

extension FailureRule {
    /// The case's name, capitalised: `headerTooSmall` → `HeaderTooSmall`.
    package var ruleName: String? {
        let name = String(describing: self)
        return name.prefix(1).uppercased() + name.dropFirst()
    }
}

/// The one shape every input-validation error has: the rule broken, where the bad input came from (a file, an
/// option such as `--max-memory`), the place inside it (a tensor, a JSON path, a key) and what is wrong —
/// printed as one line, `source: location: Rule: detail`.
package struct RuleViolation<Rule: FailureRule>: ReportableError, Equatable {
    package let rule: Rule
    /// The file or option the value came from, as the user named it.
    package let source: String
    /// The tensor, field, JSON path or key inside `source`, when there is one (as named, unquoted).
    package let location: String?
    package let detail: String
    package let category: FailureCategory

    package init(
        _ rule: Rule, source: String, location: String? = nil, _ detail: String, category: FailureCategory? = nil
    ) {
        self.rule = rule
        self.source = source
        self.location = location
        self.detail = detail
        self.category = category ?? rule.category
    }

    package var description: String {
        var line = source
        if let location { line += ": " + (Rule.locationKind.map { "\($0) '\(location)'" } ?? location) }
        if let name = rule.ruleName { line += ": " + name }
        return MessageText.oneLine(line + ": " + detail)
    }
}

/// Text from an input (a key, a name, a path) made safe to print as part of one line.
package enum MessageText {
    /// `text` with every control character written as an escape — `\n`, `\r`, `\t`, else `\u{1B}` — for C0,
    /// DEL, C1 and the Unicode line and paragraph separators: a key spelled with an escaped newline or a NUL
    /// in a JSON file is quoted in a message without breaking it into lines or reaching the terminal raw.
    package static func oneLine(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: isControl) else { return text }
        var out = ""
        out.reserveCapacity(text.utf8.count + 8)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where isControl(scalar): out += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) || scalar.value == 0x2028 || scalar.value == 0x2029
    }
}

/// A usage error raised below the CLI layer (a bad `--dtype`, a malformed size string).
package struct UsageError: ReportableError, Equatable {
    package let message: String
    package init(_ message: String) { self.message = message }
    package var description: String { message }
    package var category: FailureCategory { .usage }
}

/// A failure that is a sentence and its category: what `report`, `compare`, `merge` and the ranks' barrier
/// raise about files they did not write themselves.
package struct FailureMessage: ReportableError, Equatable {
    package let message: String
    package let category: FailureCategory

    package init(_ message: String, category: FailureCategory) {
        self.message = message
        self.category = category
    }

    package var description: String { message }
}
