import ArgumentParser
import Foundation
import TensorEngine

/// A size option (`5GB`, `1.5GiB`, `500MB`, plain bytes); the grammar is `ByteSize`'s.
struct SizeArgument: ExpressibleByArgument, Sendable, CustomStringConvertible {
    let bytes: Int
    /// As the user wrote it: what `--help` shows as the default.
    let text: String

    init?(argument: String) {
        guard let size = try? Self.parse(argument) else { return nil }
        self = size
    }

    private init(bytes: Int, text: String) {
        self.bytes = bytes
        self.text = text
    }

    var defaultValueDescription: String { text }
    var description: String { text }

    /// The options' transform: ArgumentParser prints the thrown reason after "The value 'X' is invalid for
    /// '--option'", so a bad size says which rule it broke and shows the grammar, not only the option's help.
    /// A size something is made of (a shard, a machine) is at least one byte; a threshold may be zero.
    static func parse(_ text: String) throws -> SizeArgument { try parse(text, minimum: 1) }

    /// A threshold: zero bytes is a size.
    static func parseThreshold(_ text: String) throws -> SizeArgument { try parse(text, minimum: 0) }

    private static func parse(_ text: String, minimum: Int) throws -> SizeArgument {
        guard let bytes = ByteSize.parseOrNil(text) else {
            throw ArgumentValueError(reason: "not a size; \(ByteSize.example)")
        }
        guard bytes >= minimum else {
            throw ArgumentValueError(reason: "a size must be more than \(minimum - 1) bytes; \(ByteSize.example)")
        }
        return SizeArgument(bytes: bytes, text: text)
    }
}

/// A percentage option: `5%` or `5` (percent), any finite number ≥ 0.
struct PercentArgument: ExpressibleByArgument, Sendable, CustomStringConvertible {
    /// The share as a fraction: 5% is 0.05.
    let fraction: Double
    let text: String

    init?(argument: String) {
        guard let percent = try? Self.parse(argument) else { return nil }
        self = percent
    }

    private init(fraction: Double, text: String) {
        self.fraction = fraction
        self.text = text
    }

    var defaultValueDescription: String { text }
    var description: String { text }

    static func parse(_ text: String) throws -> PercentArgument {
        var number = text.trimmingCharacters(in: .whitespaces)
        if number.hasSuffix("%") { number.removeLast() }
        guard let percent = Double(number), percent >= 0, percent.isFinite else {
            throw ArgumentValueError(reason: "use a percentage such as 5% or 2.5")
        }
        return PercentArgument(fraction: percent / 100, text: text)
    }
}

/// Why an option's value was refused (printed by ArgumentParser after the value and the option).
struct ArgumentValueError: Error, CustomStringConvertible {
    let reason: String
    var description: String { reason }
}
