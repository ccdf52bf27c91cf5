import Checkpoint
import Foundation
import OSLayer
import StrictJSON
import TensorEngine

/// Why a results file could not be used, with the exit status the CLI documents for it.
package typealias ReportError = FailureMessage

/// Reading and writing results files (`<scenario>.json`, the schema in `Reports/schema/results.schema.json`).
package enum ResultsFile {
    /// Reads and decodes a results file. Missing → `noInput` (66); not JSON, not a results file, or a schema
    /// version this build does not know → `dataError` (65). `compare` maps every failure on the baseline to 5.
    package static func load(path: String) throws(ReportError) -> ScenarioResults {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ReportError("\(path): no such results file", category: .missingInput)
        }
        guard !isDirectory.boolValue else {
            throw ReportError("\(path): is a folder, not a results file", category: .missingInput)
        }
        let bytes: [UInt8]
        do {
            bytes = try UntrustedFile.readSmall(path, limit: maximumFileBytes)
        } catch let error as any ReportableError {
            throw ReportError(error.description, category: error.category)
        } catch {
            throw ReportError("\(path): cannot be read: \(FoundationErrorText.cause(error))", category: .io)
        }
        return try decode(Data(bytes), file: path)
    }

    /// The largest results file read: 2,000 timeline points per run keep real ones to a few MiB.
    package static let maximumFileBytes = 256 << 20

    package static func decode(_ data: Data, file: String) throws(ReportError) -> ScenarioResults {
        // The version first, so that a newer file gets a clear message rather than a decoding error.
        struct Versioned: Decodable { let schemaVersion: Int? }
        let version: Int?
        do {
            version = try ResultsCodec.decoder.decode(Versioned.self, from: data).schemaVersion
        } catch {
            throw ReportError(
                "\(file): not a results file (not a JSON object: \(Self.describe(error)))", category: .badData)
        }
        guard let version else {
            throw ReportError("\(file): not a results file ($.schema_version is missing)", category: .badData)
        }
        guard ScenarioResults.readableSchemaVersions.contains(version) else {
            let readable = ScenarioResults.readableSchemaVersions
            throw ReportError(
                "\(file): results schema version \(version), but this bigmodel-bench reads versions \(readable.lowerBound) to \(readable.upperBound)",
                category: .badData)
        }
        let results: ScenarioResults
        do {
            results = try ResultsCodec.decoder.decode(ScenarioResults.self, from: data)
        } catch {
            let described = Self.describe(error)
            throw ReportError(
                "\(file): not a valid results file: \(described == "not valid JSON" ? Self.explainCorrupt(data) : described)",
                category: .badData)
        }
        if let (path, value) = negativeByteCount(results) {
            throw ReportError(
                "\(file): not a valid results file: \(path) is \(value); a byte count is never negative",
                category: .badData)
        }
        return results
    }

    /// The first byte count that cannot be negative but is. Δ figures (a peak minus the baseline reading) may be
    /// slightly negative; sizes, predictions, bounds and ledger peaks may not.
    static func negativeByteCount(_ r: ScenarioResults) -> (String, Int)? {
        var counts: [(String, Int?)] = [
            ("$.checkpoint.total_size_bytes", r.checkpoint.totalSizeBytes),
            ("$.checkpoint.largest_shard_bytes", r.checkpoint.largestShardBytes),
            ("$.environment.mem_total_bytes", r.environment.memTotalBytes),
            ("$.environment.mem_available_bytes", r.environment.memAvailableBytes),
        ]
        for (i, run) in r.runs.enumerated() {
            counts += [
                ("$.runs[\(i)].predicted_peak_bytes", run.predictedPeakBytes),
                ("$.runs[\(i)].upper_bound_bytes", run.upperBoundBytes),
                ("$.runs[\(i)].lower_bound_bytes", run.lowerBoundBytes),
                ("$.runs[\(i)].measurement.ledger_peak_bytes", run.measurement?.engine?.ledgerPeakBytes),
                ("$.runs[\(i)].measurement.predicted_peak_bytes", run.measurement?.predictedPeakBytes),
            ]
        }
        return counts.lazy.compactMap { path, value in value.flatMap { $0 < 0 ? (path, $0) : nil } }.first
    }

    /// The results as `run` writes them: sorted snake_case keys, pretty, a final newline.
    package static func encode(_ results: ScenarioResults) throws -> [UInt8] {
        [UInt8](try ResultsCodec.encoder.encode(results)) + [0x0A]
    }

    /// A decoding error in one line, with the JSON path of the field.
    static func describe(_ error: any Error) -> String {
        func path(_ keys: [any CodingKey]) -> String {
            "$" + keys.map { key in key.intValue.map { "[\($0)]" } ?? ".\(snake(key.stringValue))" }.joined()
        }
        switch error as? DecodingError {
        case .keyNotFound(let key, let context)?: return "\(path(context.codingPath + [key])) is missing"
        case .typeMismatch(_, let context)?: return "\(path(context.codingPath)): \(context.debugDescription)"
        case .valueNotFound(_, let context)?: return "\(path(context.codingPath)) is null"
        case .dataCorrupted(let context)?:
            return context.codingPath.isEmpty
                ? "not valid JSON" : "\(path(context.codingPath)): \(context.debugDescription)"
        default: return "\(error)"
        }
    }

    /// What Foundation's "not valid JSON" means for `data`: a syntax error (with its place, from the strict
    /// parser), or — for JSON that parses — the first number no integer field can hold: a fractional or
    /// exponent byte count, or an integer beyond Int64. Foundation's decoder reports both without a path.
    static func explainCorrupt(_ data: Data) -> String {
        let document: JSONValue
        do {
            document = try JSONParser().parse([UInt8](data))
        } catch {
            return "not valid JSON: \(error)"
        }
        var fractional: (String, String)?
        var outOfRange: (String, String)?
        func walk(_ value: JSONValue, _ path: String, key: String) {
            switch value {
            case .object(let members): for (k, v) in members where fractional == nil { walk(v, path + "." + k, key: k) }
            case .array(let items):
                for (i, v) in items.enumerated() where fractional == nil { walk(v, path + "[\(i)]", key: key) }
            case .number(let n) where n.intValue == nil:
                if key.hasSuffix("bytes"), fractional == nil { fractional = (path, n.literal) }
                if n.isIntegerLiteral, outOfRange == nil { outOfRange = (path, n.literal) }
            default: break
            }
        }
        walk(document, "$", key: "")
        if let (path, literal) = fractional {
            return "\(path) is \(literal); a byte count is a whole number of bytes that fits in 64 bits"
        }
        if let (path, literal) = outOfRange {
            return "\(path) is \(literal), beyond the 64-bit integers results files hold"
        }
        return "a value does not fit its field (Foundation's decoder names none)"
    }

    /// camelCase → snake_case, as the results encoder writes keys.
    static func snake(_ key: String) -> String {
        var out = ""
        for c in key {
            if c.isUppercase {
                out += "_" + c.lowercased()
            } else {
                out.append(c)
            }
        }
        return out
    }

    /// Writes `bytes` to `path` atomically (a temporary file renamed over it), creating the folder.
    package static func write(_ bytes: [UInt8], to path: String) throws(ReportError) {
        try writeAll([(path, bytes)])
    }

    /// Writes a set of files (a report and its charts) all or nothing: each to a temporary sibling first
    /// (``AtomicFile``); only when every one is written are they renamed into place, in the order given (the
    /// file that links the others last). A failure — a full disk, a read-only folder — removes every
    /// temporary file, so a report is never left without its charts or charts without their report.
    package static func writeAll(_ files: [(path: String, bytes: [UInt8])]) throws(ReportError) {
        var staged: [AtomicFile] = []
        defer { for file in staged { file.abort() } }
        for file in files {
            try prepareFolder(of: file.path)
            do {
                let atomic = try AtomicFile(path: file.path)
                staged.append(atomic)
                try atomic.write(file.bytes)
            } catch {
                throw ReportError("\(file.path): cannot write: \(cause(error))", category: .io)
            }
        }
        for (atomic, file) in zip(staged, files) {
            do {
                try atomic.commit(sync: false)
            } catch {
                throw ReportError("\(file.path): cannot write: \(cause(error))", category: .io)
            }
        }
    }

    /// The folder `path` goes in, created; a component that is a file is named (Foundation says only "error 512").
    static func prepareFolder(of path: String) throws(ReportError) {
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        var ancestor = URL(fileURLWithPath: folder)
        var isDirectory: ObjCBool = false
        while !FileManager.default.fileExists(atPath: ancestor.path, isDirectory: &isDirectory),
            ancestor.pathComponents.count > 1
        {
            ancestor.deleteLastPathComponent()
        }
        guard isDirectory.boolValue else {
            throw ReportError("\(path): cannot write: \(ancestor.path) is a file, not a folder", category: .io)
        }
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw ReportError("\(path): cannot write: \(FoundationErrorText.cause(error))", category: .io)
        }
    }

    /// The cause of an ``AtomicFile`` failure, without the path (the message names it once).
    static func cause(_ error: any Error) -> String {
        if let io = error as? FileIOError { return io.reason }
        return FoundationErrorText.cause(error)
    }
}
