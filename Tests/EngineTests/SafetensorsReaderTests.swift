import Foundation
import OrderedCollections
import TestSupport
import Testing

@testable import Checkpoint
@testable import OSLayer
@testable import StrictJSON
@testable import TensorEngine

/// One tensor entry of a header, numbers given as literal text so that malformed ones can be written.
private func entry(_ name: String, _ dtype: String, _ shape: String, _ begin: String, _ end: String, extra: String = "")
    -> String
{
    #""\#(name)":{"dtype":"\#(dtype)","shape":[\#(shape)],"data_offsets":[\#(begin),\#(end)]\#(extra)}"#
}

private func header(_ entries: String...) -> String { "{" + entries.joined(separator: ",") + "}" }

/// A constructed input and what the reader must say about it (nil: accepted).
struct ReaderCase: Sendable, CustomTestStringConvertible {
    let label: String
    let bytes: [UInt8]
    let rule: SafetensorsRule?
    var testDescription: String { label }

    init(_ label: String, _ rule: SafetensorsRule?, _ bytes: [UInt8]) {
        self.label = label
        self.bytes = bytes
        self.rule = rule
    }

    init(_ label: String, _ rule: SafetensorsRule?, header: String, dataCount: Int = 0) {
        self.init(label, rule, safetensorsBytes(header: header, dataCount: dataCount))
    }

    static let w16 = entry("w", "F32", "2,2", "0", "16")

    /// Every numbered rule of `SafetensorsHeader` at least once, plus the edge cases of the spec.
    static let all: [ReaderCase] = [
        // 1. Shorter than 8 bytes.
        ReaderCase("7 bytes", .headerTooSmall, [8, 0, 0, 0, 0, 0, 0]),
        ReaderCase("1 byte", .headerTooSmall, [0]),
        // 2. N > 100,000,000, checked before the file length (these files are 8–10 bytes long).
        ReaderCase("N = 100,000,001, 10-byte file", .headerTooLarge, lengthPrefix(100_000_001) + Array("{}".utf8)),
        ReaderCase("N = u64 max, 8-byte file (8 + N would overflow)", .headerTooLarge, lengthPrefix(UInt64.max)),
        ReaderCase("N = 2^63", .headerTooLarge, lengthPrefix(1 << 63) + Array("{}".utf8)),
        // Exactly 100,000,000 is allowed by step 2, so a short file fails step 3 instead.
        ReaderCase("N = 100,000,000, 10-byte file", .invalidHeaderLength, lengthPrefix(100_000_000) + Array("{}".utf8)),
        // 3. 8 + N beyond the file.
        ReaderCase("N one past the end", .invalidHeaderLength, lengthPrefix(3) + Array("{}".utf8)),
        ReaderCase("N = 1, 8-byte file", .invalidHeaderLength, lengthPrefix(1)),
        // N = 0 in an 8-byte file passes steps 1–4; an empty document is not JSON (step 5).
        ReaderCase("N = 0, 8-byte file", .invalidHeaderDeserialization, lengthPrefix(0)),
        // 4. Not UTF-8 — checked over the whole header before any JSON, so it wins over a syntax error.
        ReaderCase(
            "0xFF in a name", .invalidHeader,
            safetensorsBytes(header: Array(#"{"a"#.utf8) + [0xFF] + Array(#"":{}}"#.utf8))),
        ReaderCase(
            "truncated UTF-8 sequence", .invalidHeader,
            safetensorsBytes(header: Array(#"{"a"#.utf8) + [0xC3] + Array(#"":1}"#.utf8))),
        ReaderCase(
            "surrogate encoded in UTF-8", .invalidHeader,
            safetensorsBytes(header: Array(#"{""#.utf8) + [0xED, 0xA0, 0x80] + Array(#"":1}"#.utf8))),
        ReaderCase(
            "invalid UTF-8 after a syntax error", .invalidHeader,
            safetensorsBytes(header: Array(#"{"a" 1 ""#.utf8) + [0xFE] + Array("}".utf8))),
        // 5. Strict JSON of the required shape.
        ReaderCase("not JSON", .invalidHeaderDeserialization, header: #"{"w": nope}"#),
        ReaderCase("header is a JSON array", .invalidHeaderDeserialization, header: "[]      "),
        ReaderCase("header is a string", .invalidHeaderDeserialization, header: #""{}""#),
        ReaderCase("header is null", .invalidHeaderDeserialization, header: "null"),
        ReaderCase(
            "BOM before the object", .invalidHeaderDeserialization,
            safetensorsBytes(header: [0xEF, 0xBB, 0xBF] + Array("{}".utf8))),
        ReaderCase(
            "NUL padding", .invalidHeaderDeserialization,
            safetensorsBytes(header: Array("{}".utf8) + [0, 0, 0, 0, 0, 0])),
        ReaderCase("comment", .invalidHeaderDeserialization, header: "{} // x"),
        ReaderCase("trailing comma", .invalidHeaderDeserialization, header: "{" + w16 + ",}", dataCount: 16),
        ReaderCase(
            "trailing comma in shape", .invalidHeaderDeserialization,
            header: header(entry("w", "F32", "2,2,", "0", "16")), dataCount: 16),
        ReaderCase(
            "unknown dtype F12", .invalidHeaderDeserialization, header: header(entry("w", "F12", "2,2", "0", "16")),
            dataCount: 16),
        ReaderCase(
            "dtype is case-sensitive", .invalidHeaderDeserialization,
            header: header(entry("w", "f32", "2,2", "0", "16")), dataCount: 16),
        ReaderCase(
            "no I4 dtype", .invalidHeaderDeserialization, header: header(entry("w", "I4", "4", "0", "2")), dataCount: 2),
        ReaderCase(
            "no C128 dtype", .invalidHeaderDeserialization, header: header(entry("w", "C128", "1", "0", "16")),
            dataCount: 16),
        ReaderCase(
            "no F8_E4M3FN dtype", .invalidHeaderDeserialization, header: header(entry("w", "F8_E4M3FN", "1", "0", "1")),
            dataCount: 1),
        ReaderCase(
            "dtype is a number", .invalidHeaderDeserialization,
            header: #"{"w":{"dtype":32,"shape":[4],"data_offsets":[0,16]}}"#, dataCount: 16),
        ReaderCase(
            "shape is a number", .invalidHeaderDeserialization,
            header: #"{"w":{"dtype":"F32","shape":4,"data_offsets":[0,16]}}"#, dataCount: 16),
        ReaderCase(
            "negative shape entry", .invalidHeaderDeserialization,
            header: header(entry("w", "F32", "-2,-2", "0", "16")), dataCount: 16),
        ReaderCase(
            "negative zero shape entry", .invalidHeaderDeserialization,
            header: header(entry("w", "F32", "-0", "0", "0"))),
        ReaderCase(
            "fractional shape entry", .invalidHeaderDeserialization,
            header: header(entry("w", "F32", "2.0,2", "0", "16")), dataCount: 16),
        ReaderCase(
            "exponent shape entry", .invalidHeaderDeserialization,
            header: header(entry("w", "F32", "2e0,2", "0", "16")), dataCount: 16),
        ReaderCase(
            "shape entry above u64", .invalidHeaderDeserialization,
            header: header(entry("w", "F32", "18446744073709551616,0", "0", "0"))),
        ReaderCase(
            "shape entry is a string", .invalidHeaderDeserialization,
            header: header(entry("w", "F32", #""4""#, "0", "16")), dataCount: 16),
        ReaderCase(
            "shape entry is null", .invalidHeaderDeserialization, header: header(entry("w", "F32", "null", "0", "16")),
            dataCount: 16),
        ReaderCase(
            "data_offsets with 3 entries", .invalidHeaderDeserialization,
            header: #"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16,16]}}"#, dataCount: 16),
        ReaderCase(
            "data_offsets with 1 entry", .invalidHeaderDeserialization,
            header: #"{"w":{"dtype":"F32","shape":[4],"data_offsets":[16]}}"#, dataCount: 16),
        ReaderCase(
            "data_offsets empty", .invalidHeaderDeserialization,
            header: #"{"w":{"dtype":"F32","shape":[0],"data_offsets":[]}}"#),
        ReaderCase(
            "data_offsets an object", .invalidHeaderDeserialization,
            header: #"{"w":{"dtype":"F32","shape":[4],"data_offsets":{"0":16}}}"#, dataCount: 16),
        ReaderCase(
            "negative offset", .invalidHeaderDeserialization, header: header(entry("w", "F32", "4", "-16", "0")),
            dataCount: 16),
        ReaderCase(
            "fractional offset", .invalidHeaderDeserialization, header: header(entry("w", "F32", "4", "0", "16.0")),
            dataCount: 16),
        ReaderCase(
            "exponent offset", .invalidHeaderDeserialization, header: header(entry("w", "F32", "4", "0", "1.6e1")),
            dataCount: 16),
        ReaderCase(
            "offset above u64", .invalidHeaderDeserialization,
            header: header(entry("w", "F32", "0", "18446744073709551616", "18446744073709551616"))),
        ReaderCase(
            "missing dtype", .invalidHeaderDeserialization, header: #"{"w":{"shape":[4],"data_offsets":[0,16]}}"#,
            dataCount: 16),
        ReaderCase(
            "missing shape", .invalidHeaderDeserialization, header: #"{"w":{"dtype":"F32","data_offsets":[0,16]}}"#,
            dataCount: 16),
        ReaderCase(
            "missing data_offsets", .invalidHeaderDeserialization, header: #"{"w":{"dtype":"F32","shape":[4]}}"#,
            dataCount: 16),
        ReaderCase("entry is a number", .invalidHeaderDeserialization, header: #"{"w":5}"#),
        ReaderCase("entry is null", .invalidHeaderDeserialization, header: #"{"w":null}"#),
        ReaderCase(
            "field repeated inside an entry", .invalidHeaderDeserialization,
            header: #"{"w":{"dtype":"F32","dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, dataCount: 16),
        ReaderCase(
            "duplicate __metadata__", .invalidHeaderDeserialization, header: #"{"__metadata__":{},"__metadata__":{}}"#),
        ReaderCase(
            "duplicate __metadata__ around a tensor", .invalidHeaderDeserialization,
            header: #"{"__metadata__":{"a":"b"},"# + w16 + #","__metadata__":null}"#, dataCount: 16),
        ReaderCase(
            "metadata value is a number", .invalidHeaderDeserialization,
            header: #"{"__metadata__":{"format":"pt","n":1}}"#),
        ReaderCase(
            "metadata value is null", .invalidHeaderDeserialization, header: #"{"__metadata__":{"format":null}}"#),
        ReaderCase(
            "metadata value is an object", .invalidHeaderDeserialization,
            header: #"{"__metadata__":{"format":{"x":"pt"}}}"#),
        ReaderCase("metadata is a string", .invalidHeaderDeserialization, header: #"{"__metadata__":"pt"}"#),
        ReaderCase("metadata is an array", .invalidHeaderDeserialization, header: #"{"__metadata__":[]}"#),
        ReaderCase(
            "metadata key repeated", .invalidHeaderDeserialization, header: #"{"__metadata__":{"a":"1","a":"2"}}"#),
        ReaderCase(
            "nesting 128 deep in an ignored field", .invalidHeaderDeserialization,
            header: header(
                entry(
                    "s", "F32", "", "0", "4",
                    extra: #","x":"# + String(repeating: "[", count: 126) + String(repeating: "]", count: 126))),
            dataCount: 4),
        ReaderCase(
            "deep nesting in the metadata", .invalidHeaderDeserialization,
            header: #"{"__metadata__":"# + String(repeating: "[", count: 500)),
        // 5 (addition): duplicate tensor names.
        ReaderCase(
            "duplicate tensor name", .duplicateTensorName, header: header(w16, entry("w", "F32", "2,2", "16", "32")),
            dataCount: 32),
        ReaderCase("identical duplicate entries", .duplicateTensorName, header: header(w16, w16), dataCount: 16),
        // 6. Tiling from 0.
        ReaderCase(
            "gap between tensors", .invalidOffset, header: header(w16, entry("v", "F32", "4", "20", "36")),
            dataCount: 36),
        ReaderCase(
            "first tensor does not start at 0", .invalidOffset, header: header(entry("w", "F32", "4", "4", "20")),
            dataCount: 20),
        ReaderCase(
            "shared range", .invalidOffset, header: header(w16, entry("v", "F32", "4", "0", "16")), dataCount: 16),
        ReaderCase("overlap", .invalidOffset, header: header(w16, entry("v", "F32", "4", "8", "24")), dataCount: 24),
        ReaderCase(
            "end < begin", .invalidOffset, header: header(w16, entry("v", "F32", "1", "16", "12")), dataCount: 16),
        // 6 before 9 within one tensor: the offsets are wrong first.
        ReaderCase(
            "gap and wrong size on the same tensor", .invalidOffset, header: header(entry("w", "F32", "3", "4", "20")),
            dataCount: 20),
        // Tensor by tensor: the first tensor in data order fails step 9 before the second fails step 6.
        ReaderCase(
            "wrong size, then a gap", .tensorInvalidInfo,
            header: header(entry("w", "F32", "3", "0", "16"), entry("v", "F32", "1", "20", "24")), dataCount: 24),
        // Step 5 happens for the whole header before any offset check.
        ReaderCase(
            "overlap, then an unknown dtype", .invalidHeaderDeserialization,
            header: header(w16, entry("v", "F32", "4", "8", "24"), entry("u", "X", "1", "24", "28")), dataCount: 28),
        // 7. Overflow.
        ReaderCase(
            "element count overflows u64", .validationOverflow,
            header: header(entry("w", "F32", "4294967296,4294967296", "0", "16")), dataCount: 16),
        ReaderCase(
            "bit count overflows u64", .validationOverflow,
            header: header(entry("w", "F32", "4611686018427387904", "0", "16")), dataCount: 16),
        ReaderCase(
            "shape-overflow fixture's shape", .validationOverflow,
            header: header(entry("w", "F32", "2,18446744073709551614", "0", "16")), dataCount: 16),
        // Regression (fuzzer): partial products above Int.max with a zero dimension passed the u64 checks,
        // then trapped in `TensorSpec.byteCount` (Int arithmetic) when the tensor was written or loaded.
        // The reference (u64 arithmetic) accepts this header; like the dimension > Int.max rule below, this
        // reader refuses it rather than carry a shape its Int-based code cannot handle.
        ReaderCase(
            "zero-element shape whose partial product exceeds Int.max", .validationOverflow,
            header: header(entry("w", "U8", "3,4611686018427387904,0", "0", "0"))),
        ReaderCase(
            "dimension above Int.max beside a zero", .validationOverflow,
            header: header(entry("w", "U8", "0,9223372036854775808", "0", "0"))),
        // 8. Sub-byte tensors must fill whole bytes.
        ReaderCase(
            "F4 with 3 elements", .misalignedSlice, header: header(entry("w", "F4", "3", "0", "2")), dataCount: 2),
        ReaderCase("F4 [3,1]", .misalignedSlice, header: header(entry("w", "F4", "3,1", "0", "1")), dataCount: 1),
        ReaderCase(
            "F6_E2M3 with 1 element", .misalignedSlice, header: header(entry("w", "F6_E2M3", "1", "0", "1")),
            dataCount: 1),
        ReaderCase(
            "F6_E3M2 with 2 elements", .misalignedSlice, header: header(entry("w", "F6_E3M2", "2", "0", "2")),
            dataCount: 2),
        // 9. Byte count ≠ shape × dtype.
        ReaderCase(
            "F32 [3,2] in 16 bytes", .tensorInvalidInfo, header: header(entry("w", "F32", "3,2", "0", "16")),
            dataCount: 16),
        ReaderCase(
            "empty tensor with bytes", .tensorInvalidInfo, header: header(entry("w", "F32", "0,4", "0", "4")),
            dataCount: 4),
        ReaderCase("scalar in 0 bytes", .tensorInvalidInfo, header: header(entry("w", "F32", "", "0", "0"))),
        ReaderCase(
            "F4 with 4 elements in 1 byte", .tensorInvalidInfo, header: header(entry("w", "F4", "4", "0", "1")),
            dataCount: 1),
        // 9 before 10: offsets past the buffer are reported as the wrong size when the shape disagrees.
        ReaderCase(
            "offsets past the buffer, shape disagrees", .tensorInvalidInfo,
            header: header(entry("w", "F32", "2,2", "0", "32")), dataCount: 16),
        // 10. The buffer ends exactly at the end of the file.
        ReaderCase("one trailing byte", .metadataIncompleteBuffer, header: header(w16), dataCount: 17),
        ReaderCase("trailing bytes after {}", .metadataIncompleteBuffer, header: "{}", dataCount: 1),
        ReaderCase(
            "data missing, header self-consistent", .metadataIncompleteBuffer,
            header: header(entry("w", "F32", "4", "0", "16")), dataCount: 8),
        ReaderCase("no data at all", .metadataIncompleteBuffer, header: header(w16)),

        // Accepted.
        ReaderCase("{} alone", nil, header: "{}"),
        ReaderCase(
            "whitespace around the object (N = 6)", nil,
            safetensorsBytes(header: [0x09, 0x0A] + Array("{}".utf8) + [0x0D, 0x20])),
        // 60 bytes, no padding: N need not be a multiple of 8.
        ReaderCase(
            "unaligned N = 60", nil, header: #"{"abcdef":{"dtype":"F32","shape":[6],"data_offsets":[0,24]}}"#,
            dataCount: 24),
        ReaderCase("__metadata__ null", nil, header: #"{"__metadata__":null,"# + w16 + "}", dataCount: 16),
        ReaderCase("__metadata__ empty", nil, header: #"{"__metadata__":{}}"#),
        ReaderCase(
            "__metadata__ after the tensors", nil, header: "{" + w16 + #","__metadata__":{"format":"pt"}}"#,
            dataCount: 16),
        ReaderCase(
            "unknown extra fields ignored", nil,
            header: header(entry("w", "F32", "2,2", "0", "16", extra: #","extra":{"nested":[1,2.5,null]},"note":"x""#)),
            dataCount: 16),
        ReaderCase(
            "nesting 127 deep in an ignored field", nil,
            header: header(
                entry(
                    "s", "F32", "", "0", "4",
                    extra: #","x":"# + String(repeating: "[", count: 125) + String(repeating: "]", count: 125))),
            dataCount: 4),
        ReaderCase(
            "empty tensors sharing an offset", nil,
            header: header(
                entry("e1", "F32", "0", "0", "0"), entry("e2", "BF16", "0,7", "0", "0"), w16,
                entry("e3", "U8", "3,0", "16", "16")), dataCount: 16),
        ReaderCase("scalar", nil, header: header(entry("s", "F64", "", "0", "8")), dataCount: 8),
        ReaderCase("F4 with 4 elements", nil, header: header(entry("w", "F4", "2,2", "0", "2")), dataCount: 2),
        ReaderCase("F6_E2M3 with 4 elements", nil, header: header(entry("w", "F6_E2M3", "4", "0", "3")), dataCount: 3),
        ReaderCase(
            "zero-element shape with huge dimensions after the zero", nil,
            header: header(entry("w", "U8", "0,4611686018427387904,3", "0", "0"))),
        ReaderCase("empty tensor name", nil, header: header(entry("", "U8", "1", "0", "1")), dataCount: 1),
        ReaderCase(
            "tensors listed out of data order", nil,
            header: header(entry("b", "F32", "1", "4", "8"), entry("a", "F32", "1", "0", "4")), dataCount: 8),
        ReaderCase("every dtype once", nil, header: everyDTypeHeader().text, dataCount: everyDTypeHeader().bytes),
        ReaderCase("header not starting with {", nil, safetensorsBytes(header: "   {}")),
        ReaderCase(
            "u64 max offsets on an empty tensor are not reachable", .invalidOffset,
            header: header(entry("w", "U8", "0", "18446744073709551615", "18446744073709551615"))),
    ]

    /// A header with one tensor of every dtype, each four elements, back to back in declaration order.
    static func everyDTypeHeader() -> (text: String, bytes: Int) {
        var offset = 0
        var entries: [String] = []
        for dtype in DType.allCases {
            let bytes = dtype.byteCount(elements: 4)!
            entries.append(
                entry(dtype.rawValue.lowercased(), dtype.rawValue, "4", String(offset), String(offset + bytes)))
            offset += bytes
        }
        return ("{" + entries.joined(separator: ",") + "}", offset)
    }
}

@Suite("Safetensors reader")
struct SafetensorsReaderTests {
    @Test(arguments: ReaderCase.all)
    func constructedInput(_ input: ReaderCase) throws {
        #expect(inMemoryRule(input.bytes) == input.rule, "in memory")
        let folder = try TemporaryFolder("reader")
        defer { folder.remove() }
        #expect(try fileRule(input.bytes, in: folder) == input.rule, "SafetensorsFile")
    }

    @Test func everyRuleIsExercised() {
        let covered = Set(ReaderCase.all.compactMap(\.rule))
        // ReservedTensorName is the writer's rule; every other rule must have a reader case.
        #expect(Set(SafetensorsRule.allCases).subtracting(covered) == [.reservedTensorName])
    }

    @Test func unalignedHeaderIsSixtyBytes() throws {
        // The "unaligned N = 60" case really has N = 60 (not a multiple of 8) and reads back.
        let text = #"{"abcdef":{"dtype":"F32","shape":[6],"data_offsets":[0,24]}}"#
        #expect(text.utf8.count == 60)
        let parsed = try parseSafetensors(safetensorsBytes(header: text, dataCount: 24))
        #expect(parsed.headerByteCount == 60)
        #expect(parsed.dataStart == 68)
        #expect(parsed.tensors.map(\.name) == ["abcdef"])
    }

    /// The reader's error names the file and the tensor, and reads as "FILE: tensor 'NAME': Rule: detail".
    @Test func errorDescriptions() throws {
        let bytes = safetensorsBytes(header: header(entry("w", "F32", "3,2", "0", "16")), dataCount: 16)
        let error = try #require(throws: SafetensorsError.self) { try parseSafetensors(bytes, file: "x.safetensors") }
        #expect(error.location == "w")
        #expect(
            error.description
                == "x.safetensors: tensor 'w': TensorInvalidInfo: data_offsets cover 16 bytes but shape [3, 2] of F32 needs 24"
        )
        #expect(error.category == .badData)
        let duplicate = try #require(throws: SafetensorsError.self) {
            try parseSafetensors(safetensorsBytes(header: header(ReaderCase.w16, ReaderCase.w16), dataCount: 16))
        }
        #expect(duplicate.rule == .duplicateTensorName)
        #expect(duplicate.location == "w")
    }

    @Test func acceptedHeaderContents() throws {
        // The reference vector pi / empty / mask: N = 176, data in write order.
        let text =
            #"{"pi":{"dtype":"F64","shape":[],"data_offsets":[0,8]},"empty":{"dtype":"F32","shape":[0,3],"data_offsets":[8,8]},"mask":{"dtype":"BOOL","shape":[3],"data_offsets":[8,11]}}"#
            + "     "
        let data: [UInt8] = [0x18, 0x2d, 0x44, 0x54, 0xfb, 0x21, 0x09, 0x40, 0x01, 0x00, 0x01]
        let parsed = try parseSafetensors(safetensorsBytes(header: text, data: data))
        #expect(parsed.headerByteCount == 176)
        #expect(parsed.dataStart == 184)
        #expect(parsed.dataByteCount == 11)
        #expect(parsed.metadata == nil)
        #expect(parsed.tensors.map(\.name) == ["pi", "empty", "mask"])
        #expect(
            parsed.tensors.map(\.spec) == [
                TensorSpec(name: "pi", dtype: .f64, shape: []),
                TensorSpec(name: "empty", dtype: .f32, shape: [0, 3]),
                TensorSpec(name: "mask", dtype: .bool, shape: [3]),
            ])
        #expect(parsed.tensors.map(\.begin) == [0, 8, 8])
        #expect(parsed.tensors.map(\.end) == [8, 8, 11])

        // Metadata keeps its order; tensors come back in data order whatever the header order.
        let withMetadata =
            #"{"b":{"dtype":"U8","shape":[1],"data_offsets":[1,2]},"__metadata__":{"z":"1","a":"é"},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#
        let second = try parseSafetensors(safetensorsBytes(header: withMetadata, data: [7, 9]))
        #expect(second.metadata == ["z": "1", "a": "é"])
        #expect(second.metadata.map { Array($0.keys) } == ["z", "a"])
        #expect(second.tensors.map(\.name) == ["a", "b"])

        // __metadata__ null is read as no metadata.
        let null = try parseSafetensors(safetensorsBytes(header: #"{"__metadata__":null}"#))
        #expect(null.metadata == nil)
        #expect(null.tensors.isEmpty)
        #expect(null.dataByteCount == 0)
    }

    @Test func readsTensorBytesAndRanges() throws {
        let folder = try TemporaryFolder("reader-bytes")
        defer { folder.remove() }
        let values: [Float] = [0, 1, 2, 3, 4, 5]
        let text = #"{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}"#
        let path = try folder.write("a.safetensors", safetensorsBytes(header: text, data: float32Bytes(values)))
        let file = try SafetensorsFile(path: path)
        #expect(file.fileSize == 96)
        #expect(file.header.headerByteCount == 64)
        let tensor = try #require(file.tensors["attn.0"])
        #expect(try readAll(file, tensor) == float32Bytes(values))
        var middle = [UInt8](repeating: 0, count: 8)
        try middle.withUnsafeMutableBytes { try file.read(tensor, range: 8..<16, into: $0) }
        #expect(middle == float32Bytes([2, 3]))
        var absolute = [UInt8](repeating: 0, count: 4)
        try absolute.withUnsafeMutableBytes { try file.read(absoluteOffset: 72 + 20, into: $0) }
        #expect(absolute == float32Bytes([5]))
    }

    @Test func missingFileIsNoInput() throws {
        let error = try #require(throws: FileIOError.self) {
            try SafetensorsFile(path: "/nonexistent/cptests/x.safetensors")
        }
        #expect(error.isMissing)
        #expect(error.category == .missingInput)
    }

    // MARK: - Fixtures

    @Test func everyMalformedFixtureIsListed() throws {
        let cases = try JSONParser().parse(try fileBytes(FixturePaths.path("malformed/cases.json")))
        let names = try #require(cases.objectValue).keys
        #expect(Set(names) == Set(MalformedFixtures.rules.keys))
        #expect(names.count == 12)
    }

    @Test(arguments: MalformedFixtures.rules.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
    func malformedFixtureRefused(name: String, rule: String) throws {
        let path = FixturePaths.path("malformed/" + name)
        if name.hasSuffix("/") {
            let error = try #require(throws: CheckpointError.self) { try Checkpoint(path: path) }
            #expect(error.rule.ruleName == rule)
            #expect(error.source.hasSuffix("model.safetensors.index.json"))
        } else {
            let error = try #require(throws: SafetensorsError.self) { try SafetensorsFile(path: path) }
            #expect(error.rule.ruleName == rule)
            #expect(error.source == path)
            // The in-memory route agrees.
            let bytes = try fileBytes(path)
            #expect(inMemoryRule(bytes)?.ruleName == rule)
            // So does opening it as a checkpoint.
            let viaCheckpoint = try #require(throws: SafetensorsError.self) { try Checkpoint(path: path) }
            #expect(viaCheckpoint.rule.ruleName == rule)
        }
    }

    @Test func malformedFixtureDetails() throws {
        let overlap = try #require(throws: SafetensorsError.self) {
            try SafetensorsFile(path: FixturePaths.path("malformed/overlap.safetensors"))
        }
        #expect(overlap.location == "b")
        let missing = try #require(throws: CheckpointError.self) {
            try Checkpoint(path: FixturePaths.path("malformed/index-missing-shard"))
        }
        #expect(missing.location == "b")
    }

    @Test(arguments: ["dtypes", "gemma-tiny-bf16-sharded", "llama-tiny-f32-single"])
    func fixtureTensorsMatchExpected(folder: String) throws {
        let expected = try expectedTensors(folder)
        #expect(expected.count == ["dtypes": 14, "gemma-tiny-bf16-sharded": 20, "llama-tiny-f32-single": 21][folder])
        var files: [String: SafetensorsFile] = [:]
        for name in Set(expected.map(\.file)) {
            files[name] = try SafetensorsFile(path: FixturePaths.path(folder + "/" + name))
        }
        // Every stored tensor is expected, and nothing else is stored.
        let stored = files.values.reduce(0) { $0 + $1.tensors.count }
        #expect(stored == expected.count)
        for tensor in expected {
            let file = try #require(files[tensor.file])
            let stored = try #require(file.tensors[tensor.name], "\(tensor.name) in \(tensor.file)")
            #expect(stored.dtype.rawValue == tensor.dtype, "\(tensor.name)")
            #expect(stored.shape == tensor.shape, "\(tensor.name)")
            #expect(stored.byteCount == tensor.nbytes, "\(tensor.name)")
            #expect(stored.spec.byteCount == tensor.nbytes, "\(tensor.name)")
            #expect(Digest.sha256Hex(try readAll(file, stored)) == tensor.sha256, "\(tensor.name)")
        }
    }

    @Test func dtypesFixtureMetadataAndOrder() throws {
        let file = try SafetensorsFile(path: FixturePaths.path("dtypes/dtypes.safetensors"))
        #expect(file.header.metadata == ["note": "every dtype", "format": "pt"])
        #expect(file.header.metadata.map { Array($0.keys) } == ["note", "format"])
        #expect(file.header.headerByteCount == 960)
        #expect(file.fileSize == 9603)
        #expect(
            Array(file.tensors.keys) == [
                "i64", "f64", "empty", "f32", "scalar", "i32", "bf16", "f16", "i16", "f8_e4m3", "f8_e5m2", "i8", "u8",
                "bool",
            ])
    }
}
