import Foundation
import TestSupport
import Testing

@testable import Checkpoint
@testable import Harness
@testable import Models
@testable import OSLayer
@testable import Placement
@testable import ResultsFormat
@testable import StrictJSON
@testable import TensorEngine

/// A mutation fuzzer for the three JSON inputs a user hands the tool besides safetensors headers: the shard
/// index (`model.safetensors.index.json`), a model's `config.json`, and a scenario. Starting from valid files
/// (the fixtures and the shipped scenarios), it flips bytes, splices JSON tokens, swaps numbers for huge or
/// negative ones and strings for hostile ones, cuts and duplicates ranges. Each input is either accepted —
/// and then what is built from it downstream (the weight map's files, the architecture's sizes, the module
/// sizes accelerate would place) is computed without trapping — or refused with a one-line error of the
/// bad-data category. A trap ends the test process, which is the failure this test exists to catch.
@Suite("JSON input fuzzing")
struct JSONInputFuzzTests {
    static let numbers: [String] = [
        "0", "-1", "1", "2", "3", "1.5", "1e3", "1e400", "-0", "2147483648", "2147483647", "4294967296", "10001",
        "9223372036854775807", "9223372036854775808", "18446744073709551616", "99999999999999999999999", "null", "true",
    ]

    static let strings: [String] = [
        "\"\"", "\".\"", "\"..\"", "\"../x\"", "\"a/b\"", "\"/etc/passwd\"", "\"\\u0000\"", "\"\\ud800\"", "\"é\"",
        "\"" + String(repeating: "x", count: 300) + "\"", "\"float16\"", "\"int8\"", "\"bfloat16\"", "\"auto\"",
        "\"100MB\"",
        "\"0\"", "\"5XB\"", "\"naive\"", "\"mmap\"", "\"fit\"", "\"llama\"", "\"gemma\"",
    ]

    static let tokens: [String] = [
        "{", "}", "[", "]", ",", ":", "\"", "\\", "{}", "[]", "[[[[[[[[", "{\"a\":", "\u{FEFF}", "\u{0}",
    ]

    /// One random mutation of JSON text.
    static func mutate(_ bytes: inout [UInt8], _ rng: inout SplitMix64) {
        guard !bytes.isEmpty else {
            bytes = Array("{}".utf8)
            return
        }
        let at = Int.random(in: 0..<bytes.count, using: &rng)
        switch Int.random(in: 0..<8, using: &rng) {
        case 0:
            bytes[at] ^= UInt8.random(in: 1...255, using: &rng)
        case 1:
            bytes.insert(contentsOf: Array(tokens.randomElement(using: &rng)!.utf8), at: at)
        case 2, 3:  // a number for another value
            replaceValue(&bytes, at: at, with: numbers.randomElement(using: &rng)!, isValue: isNumberStart)
        case 4:  // a string for another string
            replaceValue(
                &bytes, at: at, with: strings.randomElement(using: &rng)!, isValue: { $0 == UInt8(ascii: "\"") })
        case 5:
            bytes.removeLast(Int.random(in: 0...bytes.count, using: &rng))
        case 6:
            bytes.removeSubrange(at..<min(bytes.count, at + Int.random(in: 1...24, using: &rng)))
        default:
            let end = min(bytes.count, at + Int.random(in: 1...96, using: &rng))
            bytes.insert(contentsOf: Array(bytes[at..<end]), at: end)
        }
    }

    static func isNumberStart(_ byte: UInt8) -> Bool { (0x30...0x39).contains(byte) || byte == UInt8(ascii: "-") }

    /// Replaces the first value at or after `at` whose first byte satisfies `isValue` (a number: its digits;
    /// a string: through its closing quote) with `text`.
    static func replaceValue(_ bytes: inout [UInt8], at: Int, with text: String, isValue: (UInt8) -> Bool) {
        guard let start = bytes[at...].firstIndex(where: isValue) else { return }
        var end = start + 1
        if bytes[start] == UInt8(ascii: "\"") {
            while end < bytes.count, bytes[end] != UInt8(ascii: "\"") || bytes[end - 1] == UInt8(ascii: "\\") {
                end += 1
            }
            end = min(bytes.count, end + 1)
        } else {
            while end < bytes.count, (0x30...0x39).contains(bytes[end]) || "eE.+-".utf8.contains(bytes[end]) {
                end += 1
            }
        }
        bytes.replaceSubrange(start..<end, with: Array(text.utf8))
    }

    /// A refusal must be a bad-data error of one line (a usage or missing-input one for a scenario naming a
    /// file that is not there).
    static func checkRefusal(
        _ error: any Error, allowed: Set<FailureCategory>, _ what: String, _ outcomes: inout [String: Int]
    ) {
        guard let reportable = error as? any ReportableError else {
            Issue.record("\(what): not a reportable error: \(type(of: error)) \(error)")
            return
        }
        if !allowed.contains(reportable.category) {
            Issue.record("\(what): category \(reportable.category) for \(reportable)")
        }
        if reportable.description.contains("\n") {
            Issue.record("\(what): a message of more than one line: \(reportable)")
        }
        outcomes["\(type(of: error)) \(reportable.category.rawValue)", default: 0] += 1
    }

    /// Runs `iterations` mutants of `seeds` through `parse`; returns the outcome counts.
    static func fuzz(
        _ seeds: [[UInt8]], iterations: Int, seed: UInt64, allowed: Set<FailureCategory> = [.badData], label: String,
        _ parse: ([UInt8]) throws -> Void
    ) -> [String: Int] {
        var rng = SplitMix64(seed: seed)
        var outcomes: [String: Int] = [:]
        for iteration in 0..<iterations {
            var bytes = seeds[iteration % seeds.count]
            for _ in 0..<Int.random(in: 1...3, using: &rng) { mutate(&bytes, &rng) }
            do {
                try parse(bytes)
                outcomes["accepted", default: 0] += 1
            } catch {
                checkRefusal(error, allowed: allowed, "\(label) iteration \(iteration)", &outcomes)
            }
        }
        print(
            "fuzz \(label): \(iterations) inputs: \(outcomes.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))"
        )
        return outcomes
    }

    static func fixtureBytes(_ relative: String) throws -> [UInt8] { try fileBytes(FixturePaths.path(relative)) }

    @Test func mutatedShardIndexesNeverTrap() throws {
        let seeds = [try Self.fixtureBytes("gemma-tiny-bf16-sharded/model.safetensors.index.json")]
        let outcomes = Self.fuzz(seeds, iterations: 20_000, seed: 0x1DE7, label: "index") { bytes in
            let index = try ShardIndex.parse(bytes, path: "fuzz/model.safetensors.index.json")
            _ = index.weightMap.values.reduce(0) { $0 &+ $1.utf8.count }
            _ = index.totalSize.map { $0 + 0 }
        }
        #expect(outcomes["accepted", default: 0] > 100)
        #expect(outcomes.count > 1)
    }

    @Test func mutatedConfigsNeverTrap() throws {
        let seeds = [
            try Self.fixtureBytes("gemma-tiny-bf16-sharded/config.json"),
            try Self.fixtureBytes("llama-tiny-f32-single/config.json"),
        ]
        let outcomes = Self.fuzz(seeds, iterations: 20_000, seed: 0xC0F1, label: "config") { bytes in
            let config = try ModelConfig.parse(bytes, path: "fuzz/config.json")
            guard let architecture = try ModelArchitecture.fromConfig(config) else { return }
            // The sizes every command derives: plain arithmetic once checkSize has passed.
            _ = architecture.parameterCount * 8
            for dtype in [DType.f32, .f16, .bf16] { _ = ModuleSizes(root: architecture.root, dtype: dtype).total }
        }
        #expect(outcomes["accepted", default: 0] > 100)
        #expect(outcomes.count > 1)
    }

    @Test func mutatedScenariosNeverTrap() throws {
        let scenarios = try FileManager.default.contentsOfDirectory(atPath: FixturePaths.repository + "/Scenarios")
            .sorted().filter { $0.hasSuffix(".json") }
        let seeds = try scenarios.map { try fileBytes(FixturePaths.repository + "/Scenarios/" + $0) }
        let outcomes = Self.fuzz(
            seeds, iterations: 20_000, seed: 0x5CE7, allowed: [.badData, .missingInput], label: "scenario"
        ) { bytes in
            _ = try Scenario.parse(bytes, file: FixturePaths.repository + "/Scenarios/fuzz.json")
        }
        #expect(outcomes["accepted", default: 0] > 100)
        #expect(outcomes.count > 1)
    }
}
