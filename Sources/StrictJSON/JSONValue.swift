import OrderedCollections

/// A JSON document as it was written: objects keep their key order and numbers keep their literal text.
///
/// Keeping the literal matters twice over: safetensors offsets are u64 and must not pass through `Double`
/// (2^53 and up would silently round), and a config.json copied with one field changed must keep every other
/// number exactly as Python wrote it (`1e-06`, `10000.0`).
package enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(JSONNumber)
    case string(String)
    case array([JSONValue])
    case object(OrderedDictionary<String, JSONValue>)

    package var objectValue: OrderedDictionary<String, JSONValue>? {
        if case .object(let o) = self { return o }
        return nil
    }

    package var arrayValue: [JSONValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    package var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    package var numberValue: JSONNumber? {
        if case .number(let n) = self { return n }
        return nil
    }

    package var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    package var isNull: Bool { self == .null }

    /// A short name of the value's JSON type, for error messages ("expected a string, found an array").
    package var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    package subscript(key: String) -> JSONValue? {
        objectValue?[key]
    }

    package init(_ int: Int) { self = .number(JSONNumber(int)) }
    package init(_ int: UInt64) { self = .number(JSONNumber(int)) }
    package init(_ double: Double) { self = .number(JSONNumber(double)) }
    package init(_ string: String) { self = .string(string) }
}

/// A JSON number kept as its literal text, with exact conversions.
package struct JSONNumber: Sendable, Hashable, CustomStringConvertible {
    /// The literal as it appears in the document (already checked against the JSON number grammar).
    package let literal: String

    package init(literal: String) { self.literal = literal }
    package init(_ int: Int) { literal = String(int) }
    package init(_ int: UInt64) { literal = String(int) }
    /// Formats like Python's `repr(float)` for finite values: shortest round-trip, always with a `.` or exponent.
    package init(_ double: Double) {
        precondition(double.isFinite, "JSON has no NaN or infinity")
        var text = "\(double)"
        if !text.contains(".") && !text.contains("e") && !text.contains("E") { text += ".0" }
        literal = text
    }

    package var description: String { literal }

    /// True when the literal is an integer: no fraction, no exponent.
    package var isIntegerLiteral: Bool {
        !literal.contains(".") && !literal.contains("e") && !literal.contains("E")
    }

    /// The value as an unsigned 64-bit integer; nil when negative, fractional, written with an exponent,
    /// or larger than `UInt64.max` (the rules serde applies when a u64 is expected).
    package var uint64Value: UInt64? {
        guard isIntegerLiteral, !literal.hasPrefix("-") else { return nil }
        return UInt64(literal)
    }

    /// The value as `Int`; nil when fractional, written with an exponent, or out of range.
    package var intValue: Int? {
        guard isIntegerLiteral else { return nil }
        if literal == "-0" { return 0 }
        return Int(literal)
    }

    package var doubleValue: Double { Double(literal) ?? .nan }
}
