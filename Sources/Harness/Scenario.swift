import Checkpoint
import Foundation
import Loading
import Models
import OrderedCollections
import StrictJSON
import TensorEngine

/// A scenario file is invalid: the message names the file, the JSON path and the rule broken.
public struct ScenarioError: ReportableError, Equatable {
    public let file: String
    /// A JSONPath-style location (`$.runs[2].dtype`).
    public let path: String
    public let detail: String

    public init(file: String, path: String, _ detail: String) {
        self.file = file
        self.path = path
        self.detail = detail
    }

    public var description: String { "\(file): \(path): \(detail)" }
    public var exitStatus: ExitStatus { .dataError }
}

/// What a scenario asks for: one model, one checkpoint layout, the loading runs to compare.
///
/// ```json
/// {
///   "name": "gemma7b",
///   "description": "…",
///   "model": {"config": { …config.json… }},          // or {"config": "path/to/config.json"}
///   "checkpoint": {"dtype": "bfloat16", "max_shard_size": "5GB", "seed": 0},   // or {"path": "/models/x"}
///   "scale": "fit",                                  // or a number in (0, 1]
///   "runs": [{"strategy": "naive"}, {"strategy": "dtype-direct", "dtype": "float16"}],
///   "repeat": 1,
///   "cache": "warm",                                 // or "cold"
///   "tolerance": {"relative": 0.03, "absolute": "32MiB"},
///   "sample_interval_ms": 1
/// }
/// ```
/// Paths inside a scenario are relative to the scenario file's folder.
public struct Scenario: Sendable {
    public enum CacheMode: String, Sendable, Codable { case warm, cold }

    public enum ScaleRequest: Sendable, Equatable {
        case fit
        case fixed(Double)
    }

    public enum CheckpointSource: Sendable {
        /// Generate a synthetic checkpoint with these settings (max shard size at full scale).
        case generated(dtype: DType, maxShardSize: Int, seed: UInt64)
        /// Use an existing checkpoint folder as it is (scale must be 1).
        case existing(path: String)
    }

    public struct Run: Sendable, Equatable {
        /// A label unique within the scenario (defaults to the strategy, plus the dtype when given).
        public let id: String
        public let strategy: StrategyName
        /// nil = auto.
        public let dtype: DType?
        /// `device-map` runs only: where the model goes.
        public let placement: PlacementSettings?
    }

    public struct Tolerance: Sendable, Equatable, Codable {
        /// Fraction of the predicted figure allowed above (or below) it.
        public var relative: Double
        /// Bytes allowed on top of the relative share.
        public var absoluteBytes: Int

        public static let `default` = Tolerance(relative: 0.03, absoluteBytes: 32 << 20)

        public func bytes(for predicted: Int) -> Int { Int((Double(predicted) * relative).rounded(.up)) + absoluteBytes }
    }

    /// The scenario file as given.
    public let file: String
    public let name: String
    public let description: String
    public let config: ModelConfig
    public let checkpoint: CheckpointSource
    public let scale: ScaleRequest
    public let runs: [Run]
    public let repeatCount: Int
    public let cache: CacheMode
    public let tolerance: Tolerance
    public let sampleIntervalMilliseconds: Double

    /// The keys a scenario may have at its top level.
    static let topLevelKeys: Set<String> = [
        "name", "description", "model", "checkpoint", "scale", "runs", "repeat", "cache", "tolerance", "sample_interval_ms",
    ]

    /// Reads and validates a scenario file.
    public static func load(path: String) throws -> Scenario {
        let bytes = try Checkpoint.readSmallFile(path, limit: 16 << 20)
        return try parse(bytes, file: path)
    }

    public static func parse(_ bytes: [UInt8], file: String) throws -> Scenario {
        let document: JSONValue
        do {
            document = try JSONParser().parse(bytes)
        } catch {
            throw ScenarioError(file: file, path: "$", "not valid JSON: \(error)")
        }
        let v = Validator(file: file)
        let root = try v.object(document, "$", allowed: topLevelKeys)
        let name = try v.string(root["name"], "$.name", required: true) ?? ""
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
            throw ScenarioError(file: file, path: "$.name", "must be a non-empty name of letters, digits, '-', '_' or '.' (it names the report files)")
        }
        let description = try v.string(root["description"], "$.description", required: false) ?? ""

        // checkpoint
        let checkpointObject = try v.object(
            v.required(root["checkpoint"], "$.checkpoint"), "$.checkpoint", allowed: ["dtype", "max_shard_size", "seed", "path"])
        var checkpoint: CheckpointSource
        var defaultDType = false
        if let pathValue = checkpointObject["path"] {
            for key in ["dtype", "max_shard_size", "seed"] where checkpointObject[key] != nil {
                throw ScenarioError(file: file, path: "$.checkpoint.\(key)", "cannot be combined with $.checkpoint.path (an existing checkpoint is used as it is)")
            }
            guard let relative = pathValue.stringValue, !relative.isEmpty else {
                throw ScenarioError(file: file, path: "$.checkpoint.path", "must be a non-empty string")
            }
            checkpoint = .existing(path: Self.resolve(relative, against: file))
        } else {
            // No dtype: the config's, resolved below once the config is read (float32 when it has none).
            let dtype = try v.dtype(checkpointObject["dtype"], "$.checkpoint.dtype") ?? .f32
            defaultDType = checkpointObject["dtype"] == nil
            guard dtype.isConvertible else {
                throw ScenarioError(file: file, path: "$.checkpoint.dtype", "\(dtype.torchName) is not a floating dtype (\(DType.convertibleTorchNames))")
            }
            let shard = try v.size(checkpointObject["max_shard_size"], "$.checkpoint.max_shard_size") ?? 5_000_000_000
            let seed = try v.integer(checkpointObject["seed"], "$.checkpoint.seed", range: 0...Int.max) ?? 0
            checkpoint = .generated(dtype: dtype, maxShardSize: shard, seed: UInt64(seed))
        }

        // model: required to generate a checkpoint; for an existing one, its own config.json is used.
        let config: ModelConfig
        if let modelValue = root["model"] {
            let model = try v.object(modelValue, "$.model", allowed: ["config"])
            let configValue = try v.required(model["config"], "$.model.config")
            switch configValue {
            case .object(let fields):
                config = ModelConfig(path: "\(file) ($.model.config)", fields: fields)
            case .string(let relative):
                let configPath = Self.resolve(relative, against: file)
                do {
                    config = try ModelConfig.load(path: configPath)
                } catch let error as FileIOError {
                    throw ScenarioError(file: file, path: "$.model.config", "cannot read \(configPath): \(error.reason)")
                } catch let error as ModelConfigError {
                    throw ScenarioError(file: file, path: "$.model.config", error.description)
                }
            default:
                throw ScenarioError(file: file, path: "$.model.config", "must be a config object or the path of a config.json, not \(configValue.typeName)")
            }
        } else if case .existing(let folder) = checkpoint {
            let configPath = folder + "/config.json"
            config = FileManager.default.fileExists(atPath: configPath)
                ? try ModelConfig.load(path: configPath) : ModelConfig(path: configPath, fields: [:])
        } else {
            throw ScenarioError(file: file, path: "$.model", "is required to generate a checkpoint")
        }
        if case .generated = checkpoint, !ModelArchitecture.knownModelTypes.contains(config.modelType ?? "") {
            throw ScenarioError(
                file: file, path: "$.model.config.model_type",
                "'\(config.modelType ?? "(missing)")' is not an architecture this tool can generate (\(ModelArchitecture.knownModelTypes.joined(separator: ", ")))")
        }
        if defaultDType, case .generated(_, let shard, let seed) = checkpoint,
            let configDType = try? config.dtype(), configDType.isConvertible {
            checkpoint = .generated(dtype: configDType, maxShardSize: shard, seed: seed)
        }
        do {
            _ = try ModelArchitecture.fromConfig(config)
        } catch let error as ModelConfigError {
            throw ScenarioError(file: file, path: "$.model.config" + (error.field.map { ".\($0)" } ?? ""), error.detail)
        }

        // scale
        let scale: ScaleRequest
        switch root["scale"] {
        case nil, .some(.null):
            scale = .fit
        case .some(.string("fit")):
            scale = .fit
        case .some(.number(let n)) where n.doubleValue > 0 && n.doubleValue <= 1:
            scale = .fixed(n.doubleValue)
        case .some(let other):
            throw ScenarioError(file: file, path: "$.scale", "must be \"fit\" or a number in (0, 1], not \(other.numberValue?.literal ?? other.typeName)")
        }
        if case .existing = checkpoint, case .fixed(let f) = scale, f != 1 {
            throw ScenarioError(file: file, path: "$.scale", "an existing checkpoint ($.checkpoint.path) cannot be scaled; use 1 or \"fit\"")
        }

        // runs
        guard case .array(let runValues) = try v.required(root["runs"], "$.runs"), !runValues.isEmpty else {
            throw ScenarioError(file: file, path: "$.runs", "must be a non-empty array of runs")
        }
        var runs: [Run] = []
        var ids = Set<String>()
        for (i, runValue) in runValues.enumerated() {
            let at = "$.runs[\(i)]"
            let run = try v.object(runValue, at, allowed: Set(["id", "strategy", "dtype"]).union(PlacementSettings.keys))
            let strategyName = try v.string(run["strategy"], at + ".strategy", required: true) ?? ""
            guard let strategy = StrategyName(rawValue: strategyName) else {
                throw ScenarioError(file: file, path: at + ".strategy", "unknown strategy '\(strategyName)'; known: \(StrategyName.names)")
            }
            var placement: PlacementSettings?
            if strategy == .deviceMap {
                placement = try PlacementSettings.parse(run, file: file, path: at)
            } else if let key = run.keys.first(where: { PlacementSettings.keys.contains($0) }) {
                throw ScenarioError(file: file, path: at + "." + key, "applies only to the device-map strategy")
            }
            let dtype = try v.dtype(run["dtype"], at + ".dtype")
            if let dtype, !dtype.isConvertible {
                throw ScenarioError(file: file, path: at + ".dtype", "\(dtype.torchName) is not a floating dtype (\(DType.convertibleTorchNames))")
            }
            let id = try v.string(run["id"], at + ".id", required: false) ?? (strategy.rawValue + (dtype.map { "-" + $0.torchName } ?? ""))
            guard ids.insert(id).inserted else {
                throw ScenarioError(file: file, path: at, "run id '\(id)' is used twice; give one of them an \"id\"")
            }
            runs.append(Run(id: id, strategy: strategy, dtype: dtype, placement: placement))
        }

        let repeatCount = try v.integer(root["repeat"], "$.repeat", range: 1...100) ?? 1
        let cache: CacheMode
        switch root["cache"] {
        case nil: cache = .warm
        case .some(.string(let text)):
            guard let mode = CacheMode(rawValue: text) else {
                throw ScenarioError(file: file, path: "$.cache", "must be \"warm\" or \"cold\", not \"\(text)\"")
            }
            cache = mode
        case .some(let other):
            throw ScenarioError(file: file, path: "$.cache", "must be \"warm\" or \"cold\", not \(other.typeName)")
        }

        var tolerance = Tolerance.default
        if let toleranceValue = root["tolerance"] {
            let object = try v.object(toleranceValue, "$.tolerance", allowed: ["relative", "absolute"])
            if let relative = object["relative"] {
                guard let r = relative.numberValue?.doubleValue, r >= 0, r < 1 else {
                    throw ScenarioError(file: file, path: "$.tolerance.relative", "must be a number in [0, 1) (0.03 = 3%)")
                }
                tolerance.relative = r
            }
            if let absolute = try v.size(object["absolute"], "$.tolerance.absolute", allowZero: true) { tolerance.absoluteBytes = absolute }
        }
        let interval: Double
        if let value = root["sample_interval_ms"] {
            guard let ms = value.numberValue?.doubleValue, ms >= 0.1, ms <= 2 else {
                throw ScenarioError(file: file, path: "$.sample_interval_ms", "must be a number of milliseconds in [0.1, 2]")
            }
            interval = ms
        } else {
            interval = 1
        }
        return Scenario(
            file: file, name: name, description: description, config: config, checkpoint: checkpoint, scale: scale, runs: runs,
            repeatCount: repeatCount, cache: cache, tolerance: tolerance, sampleIntervalMilliseconds: interval)
    }

    static func resolve(_ relative: String, against file: String) -> String {
        if relative.hasPrefix("/") { return relative }
        let folder = URL(fileURLWithPath: file).deletingLastPathComponent().path
        return folder + "/" + relative
    }
}

/// Typed access to scenario JSON with errors that name the path.
private struct Validator {
    let file: String

    func fail(_ path: String, _ detail: String) -> ScenarioError { ScenarioError(file: file, path: path, detail) }

    func required(_ value: JSONValue?, _ path: String) throws -> JSONValue {
        guard let value else { throw fail(path, "is required") }
        return value
    }

    func object(_ value: JSONValue, _ path: String, allowed: Set<String>) throws -> OrderedDictionary<String, JSONValue> {
        guard case .object(let object) = value else { throw fail(path, "must be an object, not \(value.typeName)") }
        for key in object.keys where !allowed.contains(key) {
            throw fail(path + "." + key, "unknown key; allowed here: \(allowed.sorted().joined(separator: ", "))")
        }
        return object
    }

    func string(_ value: JSONValue?, _ path: String, required: Bool) throws -> String? {
        guard let value else {
            if required { throw fail(path, "is required") }
            return nil
        }
        guard case .string(let text) = value else { throw fail(path, "must be a string, not \(value.typeName)") }
        return text
    }

    func integer(_ value: JSONValue?, _ path: String, range: ClosedRange<Int>) throws -> Int? {
        guard let value else { return nil }
        guard case .number(let number) = value, let int = number.intValue else {
            throw fail(path, "must be an integer, not \(value.numberValue?.literal ?? value.typeName)")
        }
        guard range.contains(int) else { throw fail(path, "must be in \(range.lowerBound)…\(range.upperBound), not \(int)") }
        return int
    }

    func dtype(_ value: JSONValue?, _ path: String) throws -> DType? {
        guard let value else { return nil }
        guard case .string(let name) = value else { throw fail(path, "must be a dtype name such as \"bfloat16\", not \(value.typeName)") }
        guard let dtype = DType(torchName: name) else { throw fail(path, "unknown dtype '\(name)' (use \(DType.convertibleTorchNames))") }
        return dtype
    }

    /// A size: a string in ByteSize's grammar or a non-negative integer of bytes.
    func size(_ value: JSONValue?, _ path: String, allowZero: Bool = false) throws -> Int? {
        guard let value else { return nil }
        let bytes: Int?
        switch value {
        case .string(let text): bytes = ByteSize.parseOrNil(text)
        case .number(let n): bytes = n.intValue
        default: bytes = nil
        }
        guard let bytes, bytes > 0 || (allowZero && bytes == 0) else {
            throw fail(path, "must be a size: \(ByteSize.example)")
        }
        return bytes
    }
}
