import OrderedCollections
import TestSupport
import Testing

@testable import StrictJSON

/// The parse error for `text`, or nil when it parses.
private func parseError(_ text: String, parser: JSONParser = JSONParser()) -> JSONParseError? {
    parseError(Array(text.utf8), parser: parser)
}

private func parseError(_ bytes: [UInt8], parser: JSONParser = JSONParser()) -> JSONParseError? {
    do {
        _ = try parser.parse(bytes)
        return nil
    } catch {
        return error
    }
}

private func nestedArrays(_ depth: Int) -> String {
    String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
}

private func nestedObjects(_ depth: Int) -> String {
    String(repeating: "{\"a\":", count: depth - 1) + "{}" + String(repeating: "}", count: depth - 1)
}

@Suite("StrictJSON parser")
struct StrictJSONParserTests {
    @Test func acceptsJSONWhitespaceAroundTheValue() throws {
        #expect(try JSONParser().parse("\t\n{}\r ") == .object([:]))
        #expect(try JSONParser().parse(" \r\n\t[ 1 , \"a\" ]\n") == .array([JSONValue(1), .string("a")]))
        // Whitespace inside objects around ':' and ','.
        let value = try JSONParser().parse("{ \"a\" :\ttrue ,\n\"b\" : null }")
        #expect(value == .object(["a": .bool(true), "b": .null]))
    }

    @Test func keepsObjectKeyOrder() throws {
        let value = try JSONParser().parse(#"{"z":1,"a":2,"m":3}"#)
        #expect(value.objectValue.map { Array($0.keys) } == ["z", "a", "m"])
    }

    @Test func rejectsByteOrderMark() throws {
        let error = try #require(parseError([0xEF, 0xBB, 0xBF] + Array("{}".utf8)))
        #expect(error.rule == .unexpectedCharacter)
        #expect(error.offset == 0)
    }

    @Test func rejectsComments() throws {
        let lineComment = try #require(parseError("{} // note"))
        #expect(lineComment.rule == .trailingCharacters)
        #expect(lineComment.offset == 3)
        let blockComment = try #require(parseError("/* x */ {}"))
        #expect(blockComment.rule == .unexpectedCharacter)
        #expect(blockComment.offset == 0)
        let inside = try #require(parseError(#"{"a": /* x */ 1}"#))
        #expect(inside.rule == .unexpectedCharacter)
        #expect(inside.offset == 6)
    }

    @Test func rejectsTrailingCommas() throws {
        let array = try #require(parseError("[1,2,]"))
        #expect(array.rule == .unexpectedCharacter)
        #expect(array.offset == 5)
        let object = try #require(parseError(#"{"a":1,}"#))
        #expect(object.rule == .unexpectedCharacter)
        #expect(object.offset == 7)
        #expect(object.detail == "(expected a key)")
    }

    @Test func rejectsNULPadding() throws {
        let error = try #require(parseError(Array("{}".utf8) + [0, 0, 0]))
        #expect(error.rule == .trailingCharacters)
        #expect(error.offset == 2)
        // NUL is not whitespace before the value either.
        #expect(parseError([0] + Array("{}".utf8))?.rule == .unexpectedCharacter)
    }

    @Test func rejectsLeadingZeros() throws {
        for text in ["01", "-01", "[00]", "{\"a\":012}"] {
            #expect(parseError(text)?.rule == .invalidNumber, "\(text)")
        }
        #expect(parseError("01")?.offset == 1)
        // A single zero, negative zero, and zero with a fraction are fine.
        #expect(try JSONParser().parse("[0,-0,0.5,0e1]").arrayValue?.count == 4)
    }

    @Test func rejectsNonFiniteAndMalformedNumbers() throws {
        for text in ["NaN", "Infinity", "-Infinity", "+1", ".5"] {
            #expect(
                parseError(text)?.rule == .unexpectedCharacter || parseError(text)?.rule == .invalidNumber, "\(text)")
        }
        #expect(parseError("NaN")?.rule == .unexpectedCharacter)
        #expect(parseError("NaN")?.offset == 0)
        #expect(parseError("-Infinity")?.rule == .invalidNumber)
        #expect(parseError("1.")?.rule == .invalidNumber)
        #expect(parseError("1e")?.rule == .invalidNumber)
        #expect(parseError("1e+")?.rule == .invalidNumber)
        #expect(parseError("-")?.rule == .unexpectedEnd)
    }

    @Test func rejectsLoneSurrogates() throws {
        #expect(parseError(#""\ud800""#)?.rule == .loneSurrogate)
        #expect(parseError(#""\udc00""#)?.rule == .loneSurrogate)
        #expect(parseError(#""\ud800\u0041""#)?.rule == .loneSurrogate)
        #expect(parseError(#""\ud800x""#)?.rule == .loneSurrogate)
        #expect(parseError(#""\ude00\ud83d""#)?.rule == .loneSurrogate)
        // A proper pair decodes to one scalar.
        #expect(try JSONParser().parse(#""\ud83d\ude00""#) == .string("😀"))
        #expect(try JSONParser().parse(#""\u00e9\u0000""#) == .string("é\u{0}"))
    }

    @Test func rejectsRawControlCharactersInStrings() throws {
        for byte in [UInt8(0x00), 0x09, 0x0A, 0x0D, 0x1F] {
            let error = try #require(parseError([0x22, 0x61, byte, 0x62, 0x22]))
            #expect(error.rule == .controlCharacterInString, "byte \(byte)")
            #expect(error.offset == 2)
        }
        // DEL (0x7F) is not a control character for JSON.
        #expect(try JSONParser().parse([0x22, 0x7F, 0x22]) == .string("\u{7F}"))
    }

    @Test func rejectsInvalidEscapesAndUTF8() throws {
        #expect(parseError(#""\x""#)?.rule == .invalidEscape)
        #expect(parseError(#""\u12G4""#)?.rule == .invalidEscape)
        #expect(parseError(#""\'""#)?.rule == .invalidEscape)
        let invalid = try #require(parseError([0x22, 0x61, 0xC3, 0x28, 0x22]))
        #expect(invalid.rule == .invalidUTF8)
        #expect(invalid.offset == 1)
        #expect(parseError([0x22, 0xED, 0xA0, 0x80, 0x22])?.rule == .invalidUTF8)  // a surrogate encoded in UTF-8
        #expect(parseError([0x22, 0xC0, 0xAF, 0x22])?.rule == .invalidUTF8)  // overlong '/'
        #expect(parseError(#""abc"#)?.rule == .unexpectedEnd)
    }

    @Test func rejectsDuplicateKeysWithKeyAndDepth() throws {
        let top = try #require(parseError(#"{"a":1,"b":2,"a":3}"#))
        #expect(top.rule == .duplicateKey)
        #expect(top.key == "a")
        #expect(top.depth == 1)
        #expect(top.offset == 13)
        let nested = try #require(parseError(#"{"x":{"k":1,"k":2}}"#))
        #expect(nested.key == "k")
        #expect(nested.depth == 2)
        // An object inside the top-level array is at level 2 (the array is level 1).
        let inArray = try #require(parseError(#"[{"k":1,"k":2}]"#))
        #expect(inArray.rule == .duplicateKey)
        #expect(inArray.depth == 2)
        #expect(top.description == #"duplicate key "a" at byte 13"#)
    }

    @Test func duplicateKeysAllowedWhenAskedKeepFirstPositionLastValue() throws {
        let value = try JSONParser(rejectDuplicateKeys: false).parse(#"{"a":1,"b":2,"a":3}"#)
        let object = try #require(value.objectValue)
        #expect(Array(object.keys) == ["a", "b"])
        #expect(object["a"] == JSONValue(3))
    }

    /// `maxDepth` counts containers: the top-level container is level 1, and level `maxDepth` is refused.
    /// With the default 128 (serde_json's limit), 127 nested containers parse and 128 do not.
    @Test func nestingLimitBoundary() throws {
        #expect(JSONParser.defaultMaxDepth == 128)
        #expect(parseError(nestedArrays(127)) == nil)
        let arrays = try #require(parseError(nestedArrays(128)))
        #expect(arrays.rule == .nestingTooDeep)
        #expect(arrays.offset == 127)  // the 128th '['
        #expect(parseError(nestedObjects(127)) == nil)
        #expect(parseError(nestedObjects(128))?.rule == .nestingTooDeep)
        // Mixed containers count the same.
        let mixed127 = String(repeating: "[{\"a\":", count: 63) + "[]" + String(repeating: "}]", count: 63)
        #expect(parseError(mixed127) == nil)
        let mixed128 = String(repeating: "[{\"a\":", count: 64) + String(repeating: "}]", count: 64)
        #expect(parseError(mixed128)?.rule == .nestingTooDeep)
        // A custom limit moves the boundary: maxDepth 3 allows 2 levels.
        #expect(parseError("[[]]", parser: JSONParser(maxDepth: 3)) == nil)
        #expect(parseError("[[[]]]", parser: JSONParser(maxDepth: 3))?.rule == .nestingTooDeep)
        // Scalars never count.
        #expect(parseError("1", parser: JSONParser(maxDepth: 0)) == nil)
        // Far beyond the limit: refused without exhausting the stack.
        #expect(parseError(String(repeating: "[", count: 1_000_000))?.rule == .nestingTooDeep)
    }

    @Test func numbersKeepTheirLiterals() throws {
        let max = try #require(try JSONParser().parse("18446744073709551615").numberValue)
        #expect(max.literal == "18446744073709551615")
        #expect(max.uint64Value == UInt64.max)
        #expect(max.intValue == nil)
        let over = try #require(try JSONParser().parse("18446744073709551616").numberValue)
        #expect(over.literal == "18446744073709551616")
        #expect(over.uint64Value == nil)
        for literal in ["-1", "1.0", "1e3", "1E3", "-0", "0.0"] {
            let number = try #require(try JSONParser().parse(literal).numberValue)
            #expect(number.literal == literal)
            #expect(number.uint64Value == nil, "\(literal)")
        }
        #expect(try JSONParser().parse("-1").numberValue?.intValue == -1)
        // 2^53 + 1
        #expect(try JSONParser().parse("9007199254740993").numberValue?.uint64Value == 9_007_199_254_740_993)
        #expect(try JSONParser().parse("1e-06").numberValue?.literal == "1e-06")
        #expect(try JSONParser().parse("10000.0").numberValue?.literal == "10000.0")
    }

    @Test func literalsAndTruncation() throws {
        #expect(try JSONParser().parse("[true,false,null]") == .array([.bool(true), .bool(false), .null]))
        #expect(parseError("tru")?.rule == .unexpectedEnd)
        #expect(parseError("trux")?.rule == .unexpectedCharacter)
        #expect(parseError("trux")?.offset == 3)
        #expect(parseError("")?.rule == .unexpectedEnd)
        #expect(parseError("   ")?.rule == .unexpectedEnd)
        #expect(parseError("{\"a\"")?.rule == .unexpectedEnd)
        #expect(parseError("{\"a\" 1}")?.rule == .unexpectedCharacter)
        #expect(parseError("[1 2]")?.rule == .unexpectedCharacter)
        #expect(parseError("{1:2}")?.rule == .unexpectedCharacter)
        #expect(parseError("{} {}")?.rule == .trailingCharacters)
    }
}

@Suite("StrictJSON writers")
struct StrictJSONWriterTests {
    /// A value in a deliberately unsorted key order, with non-ASCII keys and values, control characters,
    /// `/`, empty containers, and keys whose code-point order differs from their UTF-16 order
    /// (U+FFFF sorts before U+1F600 by code point; by UTF-16 unit it would sort after).
    static let sample: JSONValue = .object([
        "z": .array([JSONValue(1), .object(["b": .null, "a": .bool(true)])]),
        "café": .string("é😀"),
        "ctl": .string("\u{0}\u{1}\u{1F}\u{7F}\t\n\r\u{8}\u{C}\"\\"),
        "slash": .string("a/b"),
        "empty_obj": .object([:]),
        "empty_arr": .array([]),
        "num": .array([JSONValue(0), JSONValue(-1), .number(JSONNumber(literal: "1.5")), .string("1e-06")]),
        "B": .bool(false),
        "\u{FFFF}": JSONValue(1),
        "😀": JSONValue(2),
        "nested": .object(["inner": .object([:]), "list": .array([.array([])])]),
    ])

    @Test func compactKeepsOrderAndWritesRawUTF8() throws {
        // Generated with python3: json.dumps(x, separators=(',', ':'), ensure_ascii=False).encode(), which
        // escapes exactly as serde_json does (0x7F raw, other controls \u00xx lowercase).
        let expected: [UInt8] =
            Array(#"{"z":[1,{"b":null,"a":true}],"caf"#.utf8) + [0xC3, 0xA9] + Array(#"":""#.utf8) + [
                0xC3, 0xA9, 0xF0, 0x9F, 0x98, 0x80,
            ]
            + Array(#"","ctl":"\u0000\u0001\u001f"#.utf8) + [0x7F]
            + Array(
                #"\t\n\r\b\f\"\\","slash":"a/b","empty_obj":{},"empty_arr":[],"num":[0,-1,1.5,"1e-06"],"B":false,""#
                    .utf8)
            + [0xEF, 0xBF, 0xBF] + Array(#"":1,""#.utf8) + [0xF0, 0x9F, 0x98, 0x80]
            + Array(#"":2,"nested":{"inner":{},"list":[[]]}}"#.utf8)
        #expect(JSONWriter.compact.bytes(Self.sample) == expected)
    }

    @Test func compactNestedValue() {
        let value: JSONValue = .object([
            "b": .array([JSONValue(1), .object(["c": .null, "a": .string("x/y")]), .array([])]),
            "a": .bool(true),
            "e": .object([:]),
        ])
        #expect(JSONWriter.compact.string(value) == #"{"b":[1,{"c":null,"a":"x/y"},[]],"a":true,"e":{}}"#)
    }

    @Test func pythonSortedMatchesJSONDumpsIndent2SortKeys() {
        // Pasted from python3 -c 'print(json.dumps(x, indent=2, sort_keys=True))' for the same value.
        let expected = #"""
            {
              "B": false,
              "caf\u00e9": "\u00e9\ud83d\ude00",
              "ctl": "\u0000\u0001\u001f\u007f\t\n\r\b\f\"\\",
              "empty_arr": [],
              "empty_obj": {},
              "nested": {
                "inner": {},
                "list": [
                  []
                ]
              },
              "num": [
                0,
                -1,
                1.5,
                "1e-06"
              ],
              "slash": "a/b",
              "z": [
                1,
                {
                  "a": true,
                  "b": null
                }
              ],
              "\uffff": 1,
              "\ud83d\ude00": 2
            }
            """#
        #expect(JSONWriter.pythonSorted.string(Self.sample) == expected)
    }

    @Test func emptyContainersAndScalarsAtTopLevel() {
        #expect(JSONWriter.pythonSorted.string(.object([:])) == "{}")
        #expect(JSONWriter.pythonSorted.string(.array([])) == "[]")
        #expect(JSONWriter.pythonSorted.string(.string("é")) == #""\u00e9""#)
        #expect(JSONWriter.pretty.string(.object(["é": .array([JSONValue(1)])])) == "{\n  \"é\": [\n    1\n  ]\n}")
    }

    @Test func roundTripThroughParser() throws {
        let text = JSONWriter.pythonSorted.bytes(Self.sample)
        let reparsed = try JSONParser().parse(text)
        // Same content; keys come back sorted.
        #expect(JSONWriter.compact.bytes(reparsed) == JSONWriter(sortKeys: true).bytes(Self.sample))
    }
}
