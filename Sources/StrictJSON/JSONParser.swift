import OrderedCollections

/// Why a document is not accepted, and where (byte offset into the document).
package struct JSONParseError: Error, Sendable, Equatable, CustomStringConvertible {
    package enum Rule: String, Sendable {
        case unexpectedEnd = "unexpected end of input"
        case unexpectedCharacter = "unexpected character"
        case trailingCharacters = "trailing characters after the value"
        case invalidNumber = "invalid number"
        case invalidString = "invalid string"
        case invalidEscape = "invalid escape sequence"
        case controlCharacterInString = "control character in string"
        case loneSurrogate = "lone UTF-16 surrogate in \\u escape"
        case invalidUTF8 = "invalid UTF-8"
        case duplicateKey = "duplicate key"
        case nestingTooDeep = "nesting too deep"
    }

    package let rule: Rule
    package let offset: Int
    /// Extra detail, e.g. the duplicated key.
    package let detail: String?
    /// For `duplicateKey`: the key that appeared twice.
    package let key: String?
    /// For `duplicateKey`: the nesting level of the object holding it (1 = the top-level object).
    package let depth: Int?

    package init(rule: Rule, offset: Int, detail: String?, key: String? = nil, depth: Int? = nil) {
        self.rule = rule
        self.offset = offset
        self.detail = detail
        self.key = key
        self.depth = depth
    }

    package var description: String {
        let what = detail.map { "\(rule.rawValue) \($0)" } ?? rule.rawValue
        return "\(what) at byte \(offset)"
    }
}

/// A strict RFC 8259 parser.
///
/// Written by hand rather than using Foundation's `JSONSerialization` because the callers need what no
/// library here offers together: duplicate keys refused (the safetensors spec forbids them, Foundation keeps
/// one silently), a nesting bound checked before recursing (untrusted headers must not exhaust the stack),
/// numbers kept as literals (u64 offsets above 2^53 must not round through `Double`), object key order kept
/// (the writer must reproduce Python's output), and no leniency (no BOM, comments, trailing commas, NaN).
package struct JSONParser {
    /// serde_json's default recursion limit, which the safetensors reference inherits: 128 levels.
    package static let defaultMaxDepth = 128

    package var maxDepth: Int
    package var rejectDuplicateKeys: Bool

    package init(maxDepth: Int = JSONParser.defaultMaxDepth, rejectDuplicateKeys: Bool = true) {
        self.maxDepth = maxDepth
        self.rejectDuplicateKeys = rejectDuplicateKeys
    }

    /// Parses one JSON value surrounded by optional JSON whitespace (space, tab, LF, CR).
    package func parse(_ bytes: some Collection<UInt8>) throws(JSONParseError) -> JSONValue {
        let array = Array(bytes)
        return try array.withUnsafeBufferPointer { (buffer) throws(JSONParseError) -> JSONValue in
            var cursor = Cursor(bytes: buffer, maxDepth: maxDepth, rejectDuplicates: rejectDuplicateKeys)
            cursor.skipWhitespace()
            let value = try cursor.parseValue(depth: 0)
            cursor.skipWhitespace()
            if cursor.position != buffer.count {
                throw JSONParseError(rule: .trailingCharacters, offset: cursor.position, detail: nil)
            }
            return value
        }
    }

    package func parse(_ text: String) throws(JSONParseError) -> JSONValue {
        try parse(Array(text.utf8))
    }
}

private struct Cursor {
    let bytes: UnsafeBufferPointer<UInt8>
    let maxDepth: Int
    let rejectDuplicates: Bool
    var position = 0

    init(bytes: UnsafeBufferPointer<UInt8>, maxDepth: Int, rejectDuplicates: Bool) {
        self.bytes = bytes
        self.maxDepth = maxDepth
        self.rejectDuplicates = rejectDuplicates
    }

    func fail(_ rule: JSONParseError.Rule, _ detail: String? = nil) -> JSONParseError {
        JSONParseError(rule: rule, offset: position, detail: detail)
    }

    var atEnd: Bool { position >= bytes.count }

    func peek() -> UInt8? { position < bytes.count ? bytes[position] : nil }

    mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    mutating func expect(_ literal: StaticString, value: JSONValue) throws(JSONParseError) -> JSONValue {
        let count = literal.utf8CodeUnitCount
        guard position + count <= bytes.count else { throw fail(.unexpectedEnd) }
        let start = literal.utf8Start
        for i in 0..<count where bytes[position + i] != start[i] {
            position += i
            throw fail(.unexpectedCharacter)
        }
        position += count
        return value
    }

    mutating func parseValue(depth: Int) throws(JSONParseError) -> JSONValue {
        guard let byte = peek() else { throw fail(.unexpectedEnd) }
        switch byte {
        case UInt8(ascii: "{"): return try parseObject(depth: depth + 1)
        case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): return try expect("true", value: .bool(true))
        case UInt8(ascii: "f"): return try expect("false", value: .bool(false))
        case UInt8(ascii: "n"): return try expect("null", value: .null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
        default: throw fail(.unexpectedCharacter)
        }
    }

    mutating func parseObject(depth: Int) throws(JSONParseError) -> JSONValue {
        if depth >= maxDepth { throw fail(.nestingTooDeep, "(limit \(maxDepth))") }
        position += 1  // {
        var object = OrderedDictionary<String, JSONValue>()
        skipWhitespace()
        if peek() == UInt8(ascii: "}") {
            position += 1
            return .object(object)
        }
        while true {
            skipWhitespace()
            guard let byte = peek() else { throw fail(.unexpectedEnd) }
            guard byte == UInt8(ascii: "\"") else { throw fail(.unexpectedCharacter, "(expected a key)") }
            let keyOffset = position
            let key = try parseString()
            skipWhitespace()
            guard let colon = peek() else { throw fail(.unexpectedEnd) }
            guard colon == UInt8(ascii: ":") else { throw fail(.unexpectedCharacter, "(expected ':')") }
            position += 1
            skipWhitespace()
            let value = try parseValue(depth: depth)
            if object.updateValue(value, forKey: key) != nil, rejectDuplicates {
                throw JSONParseError(
                    rule: .duplicateKey, offset: keyOffset, detail: "\"\(key)\"", key: key, depth: depth)
            }
            skipWhitespace()
            guard let next = peek() else { throw fail(.unexpectedEnd) }
            position += 1
            if next == UInt8(ascii: ",") { continue }
            if next == UInt8(ascii: "}") { return .object(object) }
            position -= 1
            throw fail(.unexpectedCharacter, "(expected ',' or '}')")
        }
    }

    mutating func parseArray(depth: Int) throws(JSONParseError) -> JSONValue {
        if depth >= maxDepth { throw fail(.nestingTooDeep, "(limit \(maxDepth))") }
        position += 1  // [
        var array: [JSONValue] = []
        skipWhitespace()
        if peek() == UInt8(ascii: "]") {
            position += 1
            return .array(array)
        }
        while true {
            skipWhitespace()
            array.append(try parseValue(depth: depth))
            skipWhitespace()
            guard let next = peek() else { throw fail(.unexpectedEnd) }
            position += 1
            if next == UInt8(ascii: ",") { continue }
            if next == UInt8(ascii: "]") { return .array(array) }
            position -= 1
            throw fail(.unexpectedCharacter, "(expected ',' or ']')")
        }
    }

    mutating func parseNumber() throws(JSONParseError) -> JSONNumber {
        let start = position
        func isDigit(_ b: UInt8?) -> Bool { b.map { $0 >= 0x30 && $0 <= 0x39 } ?? false }
        if peek() == UInt8(ascii: "-") { position += 1 }
        guard let first = peek() else { throw fail(.unexpectedEnd) }
        if first == UInt8(ascii: "0") {
            position += 1
            if isDigit(peek()) { throw fail(.invalidNumber, "(leading zero)") }
        } else if isDigit(first) {
            while isDigit(peek()) { position += 1 }
        } else {
            throw fail(.invalidNumber)
        }
        if peek() == UInt8(ascii: ".") {
            position += 1
            guard isDigit(peek()) else { throw fail(.invalidNumber, "(digit expected after '.')") }
            while isDigit(peek()) { position += 1 }
        }
        if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
            position += 1
            if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { position += 1 }
            guard isDigit(peek()) else { throw fail(.invalidNumber, "(digit expected in exponent)") }
            while isDigit(peek()) { position += 1 }
        }
        let literal = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
        return JSONNumber(literal: literal)
    }

    mutating func parseHex4() throws(JSONParseError) -> UInt16 {
        guard position + 4 <= bytes.count else { throw fail(.unexpectedEnd) }
        var value: UInt16 = 0
        for _ in 0..<4 {
            let b = bytes[position]
            let digit: UInt8
            switch b {
            case 0x30...0x39: digit = b - 0x30
            case 0x41...0x46: digit = b - 0x41 + 10
            case 0x61...0x66: digit = b - 0x61 + 10
            default: throw fail(.invalidEscape)
            }
            value = value << 4 | UInt16(digit)
            position += 1
        }
        return value
    }

    mutating func parseString() throws(JSONParseError) -> String {
        position += 1  // opening quote
        var scalars = String.UnicodeScalarView()
        var runStart = position
        func flushRun(_ cursor: Cursor, upTo end: Int) throws(JSONParseError) {
            if end > runStart {
                let slice = UnsafeBufferPointer(rebasing: cursor.bytes[runStart..<end])
                guard let text = String(validating: slice, as: UTF8.self) else {
                    throw JSONParseError(rule: .invalidUTF8, offset: runStart, detail: nil)
                }
                scalars.append(contentsOf: text.unicodeScalars)
            }
        }
        while true {
            guard position < bytes.count else { throw fail(.unexpectedEnd) }
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") {
                try flushRun(self, upTo: position)
                position += 1
                return String(scalars)
            }
            if byte < 0x20 { throw fail(.controlCharacterInString) }
            if byte != UInt8(ascii: "\\") {
                position += 1
                continue
            }
            try flushRun(self, upTo: position)
            position += 1
            guard position < bytes.count else { throw fail(.unexpectedEnd) }
            let escape = bytes[position]
            position += 1
            switch escape {
            case UInt8(ascii: "\""): scalars.append("\"")
            case UInt8(ascii: "\\"): scalars.append("\\")
            case UInt8(ascii: "/"): scalars.append("/")
            case UInt8(ascii: "b"): scalars.append("\u{08}")
            case UInt8(ascii: "f"): scalars.append("\u{0C}")
            case UInt8(ascii: "n"): scalars.append("\n")
            case UInt8(ascii: "r"): scalars.append("\r")
            case UInt8(ascii: "t"): scalars.append("\t")
            case UInt8(ascii: "u"):
                let unit = try parseHex4()
                if (0xD800...0xDBFF).contains(unit) {
                    guard position + 2 <= bytes.count, bytes[position] == UInt8(ascii: "\\"),
                        bytes[position + 1] == UInt8(ascii: "u")
                    else { throw fail(.loneSurrogate) }
                    position += 2
                    let low = try parseHex4()
                    guard (0xDC00...0xDFFF).contains(low) else { throw fail(.loneSurrogate) }
                    let value = 0x10000 + (UInt32(unit - 0xD800) << 10) + UInt32(low - 0xDC00)
                    guard let scalar = Unicode.Scalar(value) else { throw fail(.loneSurrogate) }
                    scalars.append(scalar)
                } else if (0xDC00...0xDFFF).contains(unit) {
                    throw fail(.loneSurrogate)
                } else {
                    guard let scalar = Unicode.Scalar(unit) else { throw fail(.invalidEscape) }
                    scalars.append(scalar)
                }
            default:
                position -= 1
                throw fail(.invalidEscape)
            }
            runStart = position
        }
    }
}
