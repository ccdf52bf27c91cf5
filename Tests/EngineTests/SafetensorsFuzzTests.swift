import Foundation
import OrderedCollections
import TestSupport
import Testing

@testable import Checkpoint
@testable import StrictJSON
@testable import TensorEngine

/// A mutation fuzzer for the reader: starting from valid files, it flips bytes, truncates, rewrites the
/// length prefix, splices JSON-ish tokens and numbers into the header, and checks that the reader either
/// accepts the result (and then everything downstream can use it without trapping) or refuses it with a
/// `SafetensorsError`. A trap ends the test process, which is the failure this test exists to catch.
@Suite("Safetensors fuzzing")
struct SafetensorsFuzzTests {
    static let tokens: [String] = [
        "{", "}", "[", "]", "\"", ",", ":", " ", "\t", "\n", "-", "0", "1", "00", "-0", "1.5", "1e3", "1e400", "-1",
        "18446744073709551615", "18446744073709551616", "9223372036854775807", "9223372036854775808",
        "4611686018427387904", "4294967296", "null", "true", "false", "\"__metadata__\"", "\"dtype\"", "\"shape\"",
        "\"data_offsets\"", "\"F4\"", "\"F6_E2M3\"", "\"BOOL\"", "\"U64\"", "\"C64\"", "\"x\"", "\\", "\\u0000",
        "\\ud800",
        "\\udc00", "\\ud83d\\ude00", "\\u", "\\x", "é", "\u{0}", "\u{1F}", "[[[[[[[[", "]]]]]]]]", "{\"a\":", "[0,0]",
        "[]", "{}", ",\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}",
        "\"__metadata__\":{\"format\":\"pt\"},", "\"__metadata__\":null,", "/*", "//", "NaN", "\u{FEFF}",
    ]

    static let numbers: [String] = [
        "0", "1", "2", "3", "7", "8", "15", "16", "17", "4096", "-1", "-0", "1.0", "2e1", "0.5",
        "18446744073709551615", "18446744073709551616", "9223372036854775807", "9223372036854775808",
        "4611686018427387904", "4294967296", "3074457345618258603", "99999999999999999999999",
    ]

    static let interestingBytes: [UInt8] = [
        0x00, 0x09, 0x0A, 0x20, 0x22, 0x2C, 0x2D, 0x2E, 0x30, 0x31, 0x39, 0x3A, 0x5B, 0x5C, 0x5D, 0x65, 0x7B, 0x7D,
        0x7F, 0x80, 0xBF, 0xC0, 0xC3, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF,
    ]

    /// Valid files to start from.
    static func seeds() throws -> [[UInt8]] {
        var seeds: [[UInt8]] = []
        seeds.append(safetensorsBytes(header: "{}      "))
        seeds.append(
            safetensorsBytes(
                header: #"{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}"#,
                data: float32Bytes([0, 1, 2, 3, 4, 5])))
        seeds.append(
            safetensorsBytes(
                header:
                    #"{"pi":{"dtype":"F64","shape":[],"data_offsets":[0,8]},"empty":{"dtype":"F32","shape":[0,3],"data_offsets":[8,8]},"mask":{"dtype":"BOOL","shape":[3],"data_offsets":[8,11]}}     "#,
                data: [0x18, 0x2d, 0x44, 0x54, 0xfb, 0x21, 0x09, 0x40, 0x01, 0x00, 0x01]))
        let every = ReaderCase.everyDTypeHeader()
        seeds.append(safetensorsBytes(header: every.text, dataCount: every.bytes))
        seeds.append(
            safetensorsBytes(
                header:
                    #"{"__metadata__":{"format":"pt","k":"v"},"b":{"dtype":"F4","shape":[2,2],"data_offsets":[2,4]},"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"e":{"dtype":"I64","shape":[0,9],"data_offsets":[4,4]}}"#,
                dataCount: 4))
        seeds.append(
            safetensorsBytes(
                header:
                    #"{"a":{"dtype":"F4","shape":[2],"data_offsets":[0,1]},"b":{"dtype":"F6_E3M2","shape":[4],"data_offsets":[1,4]}}"#,
                dataCount: 4))
        // Zero-element tensors with several dimensions: a number spliced into one of them reaches the
        // overflow checks without needing any data bytes.
        seeds.append(
            safetensorsBytes(
                header:
                    #"{"z":{"dtype":"U8","shape":[3,9,0],"data_offsets":[0,0]},"y":{"dtype":"F4","shape":[0,5,7],"data_offsets":[0,0]}}"#
            ))
        seeds.append(try fileBytes(FixturePaths.path("dtypes/dtypes.safetensors")))
        for seed in seeds { precondition(inMemoryRule(seed) == nil, "seed must be valid") }
        return seeds
    }

    static func setLength(_ bytes: inout [UInt8], _ n: UInt64) {
        guard bytes.count >= 8 else { return }
        bytes.replaceSubrange(0..<8, with: lengthPrefix(n))
    }

    static func declaredLength(_ bytes: [UInt8]) -> Int {
        guard bytes.count >= 8 else { return 0 }
        var n: UInt64 = 0
        for i in 0..<8 { n |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        return Int(min(n, UInt64(bytes.count - 8)))
    }

    /// One random mutation.
    static func mutate(_ bytes: inout [UInt8], _ rng: inout SplitMix64) {
        let headerLength = declaredLength(bytes)
        let headerRange = 8..<(8 + headerLength)
        func headerPosition() -> Int {
            headerRange.isEmpty
                ? min(8, bytes.count) : Int.random(in: headerRange.lowerBound...headerRange.upperBound, using: &rng)
        }
        switch Int.random(in: 0..<11, using: &rng) {
        case 0:  // flip a byte anywhere
            guard !bytes.isEmpty else { return }
            let i = Int.random(in: 0..<bytes.count, using: &rng)
            bytes[i] ^= UInt8.random(in: 1...255, using: &rng)
        case 1:  // set a header byte to a structurally interesting value
            guard !headerRange.isEmpty else { return }
            bytes[Int.random(in: headerRange, using: &rng)] = interestingBytes.randomElement(using: &rng)!
        case 2:  // truncate
            bytes.removeLast(Int.random(in: 0...bytes.count, using: &rng))
        case 3:  // append
            bytes += (0..<Int.random(in: 1...16, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        case 4:  // rewrite N
            let choices: [UInt64] = [
                0, 1, 2, 7, 8, UInt64(headerLength) &+ 1, UInt64(headerLength) &- 1, UInt64(bytes.count), 99_999_999,
                100_000_000, 100_000_001, UInt64.max, 1 << 63, 1 << 32, UInt64.random(in: 0...UInt64.max, using: &rng),
                UInt64.random(in: 0...UInt64(bytes.count + 16), using: &rng),
            ]
            setLength(&bytes, choices.randomElement(using: &rng)!)
        case 5, 6:  // splice a token into the header, usually keeping N consistent
            let token = Array(tokens.randomElement(using: &rng)!.utf8)
            let at = headerPosition()
            bytes.insert(contentsOf: token, at: at)
            if Bool.random(using: &rng) || Bool.random(using: &rng) {
                setLength(&bytes, UInt64(headerLength + token.count))
            }
        case 7:  // replace a run of digits with another number
            let digitPositions = headerRange.filter { (0x30...0x39).contains(bytes[$0]) }
            guard let start = digitPositions.randomElement(using: &rng) else { return }
            var end = start
            while end < headerRange.upperBound, (0x30...0x39).contains(bytes[end]) { end += 1 }
            let number = Array(numbers.randomElement(using: &rng)!.utf8)
            bytes.replaceSubrange(start..<end, with: number)
            setLength(&bytes, UInt64(headerLength - (end - start) + number.count))
        case 8:  // delete a range of the header
            guard headerRange.count > 1 else { return }
            let start = Int.random(in: headerRange, using: &rng)
            let end = min(headerRange.upperBound, start + Int.random(in: 1...8, using: &rng))
            bytes.removeSubrange(start..<end)
            setLength(&bytes, UInt64(headerLength - (end - start)))
        case 9:  // add a leading dimension (or offset) to a random array
            let brackets = headerRange.filter { bytes[$0] == UInt8(ascii: "[") }
            guard let at = brackets.randomElement(using: &rng) else { return }
            let number = Array((numbers.randomElement(using: &rng)! + ",").utf8)
            bytes.insert(contentsOf: number, at: at + 1)
            setLength(&bytes, UInt64(headerLength + number.count))
        default:  // duplicate a range of the header in place
            guard headerRange.count > 1 else { return }
            let start = Int.random(in: headerRange, using: &rng)
            let end = min(headerRange.upperBound, start + Int.random(in: 1...64, using: &rng))
            bytes.insert(contentsOf: Array(bytes[start..<end]), at: end)
            setLength(&bytes, UInt64(headerLength + (end - start)))
        }
    }

    /// What must hold of any header the reader accepts: everything downstream relies on it. Plain checks
    /// (an issue only on failure) keep 20,000 iterations fast.
    static func checkAccepted(_ header: SafetensorsHeader, fileSize: Int, iteration: Int) {
        func fail(_ what: String) { Issue.record("iteration \(iteration): \(what)") }
        if header.dataStart + header.dataByteCount != fileSize { fail("the data does not end at the end of the file") }
        var expectedBegin = 0
        var names = Set<String>()
        for tensor in header.tensors {
            if tensor.begin != expectedBegin || tensor.end < tensor.begin {
                fail("\(tensor.name) does not tile the buffer")
            }
            expectedBegin = tensor.end
            if !names.insert(tensor.name).inserted { fail("\(tensor.name) twice") }
            if tensor.name == "__metadata__" { fail("a tensor named __metadata__") }
            // These use Int arithmetic and trap on an unvalidated shape.
            if tensor.spec.byteCount != tensor.byteCount {
                fail("\(tensor.name): spec bytes \(tensor.spec.byteCount) ≠ \(tensor.byteCount)")
            }
            if tensor.spec.elementCount < 0 { fail("\(tensor.name): negative element count") }
        }
    }

    @Test func mutatedHeadersNeverTrap() throws {
        let seeds = try Self.seeds()
        let folder = try TemporaryFolder("fuzz")
        defer { folder.remove() }
        var rng = SplitMix64(seed: 0x5AFE_7E45_0125)
        var outcomes: [String: Int] = [:]
        let iterations = 20_000
        let clock = ContinuousClock()
        let start = clock.now
        for iteration in 0..<iterations {
            var bytes = seeds[iteration % seeds.count]
            for _ in 0..<Int.random(in: 1...4, using: &rng) { Self.mutate(&bytes, &rng) }
            let rule: SafetensorsRule?
            var accepted: SafetensorsHeader?
            do {
                accepted = try parseSafetensors(bytes)
                rule = nil
            } catch {
                rule = error.rule
            }
            if let header = accepted {
                Self.checkAccepted(header, fileSize: bytes.count, iteration: iteration)
                // Accepted tensors can be laid out again by the writer, and that layout reads back.
                if iteration % 4 == 0 {
                    do {
                        let layout = try SafetensorsLayout(
                            tensors: header.tensors.map(\.spec), metadata: header.metadata)
                        let rewritten = layout.headerBytes + Array(bytes[header.dataStart...])
                        let again = try parseSafetensors(rewritten)
                        if again.tensors.map(\.spec) != layout.tensors.map(\.spec) {
                            Issue.record("iteration \(iteration): rewrite differs")
                        }
                    } catch {
                        Issue.record("iteration \(iteration): rewriting an accepted header failed: \(error)")
                    }
                }
            }
            outcomes[rule?.ruleName ?? "accepted", default: 0] += 1
            // The file route must agree with the in-memory route.
            if iteration % 16 == 0 {
                #expect(try fileRule(bytes, in: folder, name: "fuzz.safetensors") == rule, "iteration \(iteration)")
            }
        }
        let elapsed = clock.now - start
        print(
            "fuzz: \(iterations) inputs in \(elapsed): \(outcomes.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))"
        )
        // The mutations reach every reader rule and still produce valid files: the fuzzer is not stuck in
        // one early check.
        #expect(
            Set(outcomes.keys).isSuperset(of: [
                "accepted", "HeaderTooSmall", "HeaderTooLarge", "InvalidHeaderLength", "InvalidHeader",
                "InvalidHeaderDeserialization",
                "DuplicateTensorName", "InvalidOffset", "ValidationOverflow", "MisalignedSlice", "TensorInvalidInfo",
                "MetadataIncompleteBuffer",
            ]))
        #expect(outcomes["accepted", default: 0] >= 500)
    }

    /// The same idea for the index parser: any bytes give an index or an `InvalidIndex` error.
    @Test func mutatedIndexesNeverTrap() throws {
        let seed = try fileBytes(FixturePaths.path("gemma-tiny-bf16-sharded/model.safetensors.index.json"))
        var rng = SplitMix64(seed: 42)
        var accepted = 0
        for _ in 0..<3_000 {
            var bytes = seed
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                let token = Array(Self.tokens.randomElement(using: &rng)!.utf8)
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: bytes.insert(contentsOf: token, at: Int.random(in: 0...bytes.count, using: &rng))
                case 1:
                    if !bytes.isEmpty {
                        bytes[Int.random(in: 0..<bytes.count, using: &rng)] = Self.interestingBytes.randomElement(
                            using: &rng)!
                    }
                default: bytes.removeLast(Int.random(in: 0...min(bytes.count, 40), using: &rng))
                }
            }
            do {
                let index = try ShardIndex.parse(bytes, path: "index.json")
                accepted += 1
                _ = index.serialized()
                _ = index.shardFileNames
            } catch {
                #expect(error.rule == .invalidIndex)
            }
        }
        #expect(accepted > 100)
    }
}
