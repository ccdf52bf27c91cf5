import Checkpoint
import Foundation
import Loading
import Models
import OSLayer
import OrderedCollections
import Probes
import ResultsFormat
import StrictJSON
import TensorEngine

/// Reading a scenario file: one function per section, each error naming the file, the JSON path and the rule.
extension Scenario {
    package static func parse(_ bytes: [UInt8], file: String) throws -> Scenario {
        let document: JSONValue
        do {
            document = try JSONParser().parse(bytes)
        } catch {
            throw ScenarioError(file: file, path: "$", "not valid JSON: \(error)")
        }
        let v = Validator(file: file)
        let root = try v.object(document, "$", allowed: topLevelKeys)
        let name = try v.string(root["name"], "$.name", required: true) ?? ""
        guard Self.isFileSafe(name, extra: "") else {
            throw ScenarioError(
                file: file, path: "$.name",
                "must be 1–100 ASCII letters, digits, '-', '_' or '.', not starting with '.' (it names the report files)"
            )
        }
        var (checkpoint, defaultDType) = try parseCheckpoint(root, v)
        let config = try parseModel(root, checkpoint: checkpoint, v)
        if defaultDType, case .generated(_, let shard, let seed) = checkpoint, let configDType = try? config.dtype(),
            configDType.isConvertible
        {
            checkpoint = .generated(dtype: configDType, maxShardSize: shard, seed: seed)
        }
        let scale = try parseScale(root["scale"], checkpoint: checkpoint, v)
        let interval = try parseInterval(root["sample_interval_ms"], v)
        var scenario = Scenario(
            file: file, name: name,
            description: try v.string(root["description"], "$.description", required: false) ?? "", config: config,
            checkpoint: checkpoint, scale: scale, runs: try parseRuns(root["runs"], v),
            repeatCount: try v.integer(root["repeat"], "$.repeat", range: 1...100) ?? 1,
            cache: try parseCache(root["cache"], v),
            tolerance: try parseTolerance(root["tolerance"], v, at: "$.tolerance"),
            sampleIntervalMilliseconds: interval ?? RSSSampler.defaultInterval / .milliseconds(1),
            limits: try parseLimits(root, v))
        scenario.outsideProbeIntervalMilliseconds = interval ?? 1
        scenario.python = try v.string(root["python"], "$.python", required: false)
        if let text = try v.string(root["scaling"], "$.scaling", required: false) {
            guard let scaling = SyntheticCheckpoint.Scaling(rawValue: text) else {
                throw v.fail("$.scaling", "must be \"rows\" or \"layers\", not \"\(text)\"")
            }
            scenario.scaling = scaling
        }
        scenario.sweep = try parseSweep(root, checkpoint: checkpoint, v)
        switch root["attribute"] {
        case nil: break
        case .some(.bool(let attribute)): scenario.attribute = attribute
        case .some(let other): throw v.fail("$.attribute", "must be true or false, not \(other.typeName)")
        }
        if root["subject_tolerance"] != nil {
            scenario.subjectTolerance = try parseTolerance(
                root["subject_tolerance"], v, at: "$.subject_tolerance", base: Subject.loaderTolerance)
        }
        return scenario
    }

    /// `$.checkpoint`: how to generate it, or the path of an existing one. Also says whether the dtype was left
    /// to default (then the config's dtype is used, once the config is read).
    static func parseCheckpoint(_ root: OrderedDictionary<String, JSONValue>, _ v: Validator) throws -> (
        CheckpointSource, Bool
    ) {
        let object = try v.object(
            v.required(root["checkpoint"], "$.checkpoint"), "$.checkpoint",
            allowed: ["dtype", "max_shard_size", "seed", "path"])
        if let pathValue = object["path"] {
            for key in ["dtype", "max_shard_size", "seed"] where object[key] != nil {
                throw v.fail(
                    "$.checkpoint.\(key)",
                    "cannot be combined with $.checkpoint.path (an existing checkpoint is used as it is)")
            }
            guard let relative = pathValue.stringValue, !relative.isEmpty else {
                throw v.fail("$.checkpoint.path", "must be a non-empty string")
            }
            return (.existing(path: resolve(relative, against: v.file)), false)
        }
        // No dtype: the config's, resolved once the config is read (float32 when it has none).
        let dtype = try v.dtype(object["dtype"], "$.checkpoint.dtype") ?? .f32
        guard dtype.isConvertible else {
            throw v.fail(
                "$.checkpoint.dtype", "\(dtype.torchName) is not a floating dtype (\(DType.convertibleTorchNames))")
        }
        let shard = try v.size(object["max_shard_size"], "$.checkpoint.max_shard_size") ?? 5_000_000_000
        let seed = try v.integer(object["seed"], "$.checkpoint.seed", range: 0...Int.max) ?? 0
        return (.generated(dtype: dtype, maxShardSize: shard, seed: UInt64(seed)), object["dtype"] == nil)
    }

    /// `$.model`: required to generate a checkpoint; for an existing one, its own config.json is used.
    static func parseModel(_ root: OrderedDictionary<String, JSONValue>, checkpoint: CheckpointSource, _ v: Validator)
        throws -> ModelConfig
    {
        let config: ModelConfig
        if let modelValue = root["model"] {
            let model = try v.object(modelValue, "$.model", allowed: ["config"])
            config = try parseConfig(try v.required(model["config"], "$.model.config"), v)
        } else if case .existing(let folder) = checkpoint {
            let configPath = folder + "/config.json"
            config =
                FileManager.default.fileExists(atPath: configPath)
                ? try ModelConfig.load(path: configPath) : ModelConfig(path: configPath, fields: [:])
        } else {
            throw v.fail("$.model", "is required to generate a checkpoint")
        }
        if case .generated = checkpoint, !ModelArchitecture.knownModelTypes.contains(config.modelType ?? "") {
            throw v.fail(
                "$.model.config.model_type",
                "'\(config.modelType ?? "(missing)")' is not an architecture this tool can generate (\(ModelArchitecture.knownModelTypes.joined(separator: ", ")))"
            )
        }
        do {
            _ = try ModelArchitecture.fromConfig(config)
        } catch let error as ModelConfigError {
            throw v.fail("$.model.config" + (error.field.map { ".\($0)" } ?? ""), error.detail)
        }
        return config
    }

    /// `$.model.config`: a config object inline, or the path of a config.json.
    static func parseConfig(_ value: JSONValue, _ v: Validator) throws -> ModelConfig {
        switch value {
        case .object(let fields):
            return ModelConfig(path: "\(v.file) ($.model.config)", fields: fields)
        case .string(let relative):
            let configPath = resolve(relative, against: v.file)
            do {
                return try ModelConfig.load(path: configPath)
            } catch let error as FileIOError {
                throw v.fail("$.model.config", "cannot read \(configPath): \(error.reason)")
            } catch let error as ModelConfigError {
                throw v.fail("$.model.config", error.description)
            }
        default:
            throw v.fail(
                "$.model.config", "must be a config object or the path of a config.json, not \(value.typeName)")
        }
    }

    static func parseScale(_ value: JSONValue?, checkpoint: CheckpointSource, _ v: Validator) throws -> ScaleRequest {
        let scale: ScaleRequest
        switch value {
        case nil, .some(.null), .some(.string("fit")):
            scale = .fit
        case .some(.number(let n)) where n.doubleValue > 0 && n.doubleValue <= 1:
            scale = .fixed(n.doubleValue)
        case .some(let other):
            throw v.fail(
                "$.scale", "must be \"fit\" or a number in (0, 1], not \(other.numberValue?.literal ?? other.typeName)")
        }
        if case .existing = checkpoint, case .fixed(let f) = scale, f != 1 {
            throw v.fail("$.scale", "an existing checkpoint ($.checkpoint.path) cannot be scaled; use 1 or \"fit\"")
        }
        return scale
    }

    /// `$.scales` (fractions of `$.scale`) and `$.holdout` (default true).
    static func parseSweep(_ root: OrderedDictionary<String, JSONValue>, checkpoint: CheckpointSource, _ v: Validator)
        throws -> SweepPlan?
    {
        var holdout = true
        switch root["holdout"] {
        case nil: break
        case .some(.bool(let value)): holdout = value
        case .some(let other): throw v.fail("$.holdout", "must be true or false, not \(other.typeName)")
        }
        guard let value = root["scales"] else {
            if root["holdout"] != nil { throw v.fail("$.holdout", "applies to a sweep: give $.scales") }
            return nil
        }
        guard case .array(let items) = value else { throw v.fail("$.scales", "must be an array of numbers") }
        let fractions = try items.enumerated().map { index, item in
            guard let number = item.numberValue?.doubleValue else {
                throw v.fail("$.scales[\(index)]", "must be a number in (0, 1], not \(item.typeName)")
            }
            return number
        }
        if let problem = SweepPlan.problem(fractions, holdout: holdout) { throw v.fail("$.scales", problem) }
        if case .existing = checkpoint {
            throw v.fail(
                "$.scales", "an existing checkpoint ($.checkpoint.path) has one size; a sweep generates its sizes")
        }
        return SweepPlan(fractions: fractions, holdout: holdout)
    }

    static func parseRuns(_ value: JSONValue?, _ v: Validator) throws -> [Run] {
        guard case .array(let runValues) = try v.required(value, "$.runs"), !runValues.isEmpty else {
            throw v.fail("$.runs", "must be a non-empty array of runs")
        }
        var runs: [Run] = []
        var ids = Set<String>()
        for (i, runValue) in runValues.enumerated() {
            let run = try parseRun(runValue, at: "$.runs[\(i)]", v)
            guard ids.insert(run.id).inserted else {
                throw v.fail("$.runs[\(i)]", "run id '\(run.id)' is used twice; give one of them an \"id\"")
            }
            runs.append(run)
        }
        return runs
    }

    static func parseRun(_ value: JSONValue, at: String, _ v: Validator) throws -> Run {
        let run = try v.object(
            value, at,
            allowed: Set(["id", "strategy", "dtype", "subject", "touch", "ranks"]).union(PlacementSettings.keys))
        let strategyName = try v.string(run["strategy"], at + ".strategy", required: true) ?? ""
        guard let strategy = StrategyName(rawValue: strategyName) else {
            throw v.fail(at + ".strategy", "unknown strategy '\(strategyName)'; known: \(StrategyName.names)")
        }
        var placement: PlacementSettings?
        if strategy == .deviceMap {
            placement = try PlacementSettings.parse(run, file: v.file, path: at)
        } else if let key = run.keys.first(where: { PlacementSettings.keys.contains($0) }) {
            throw v.fail(at + "." + key, "applies only to the device-map strategy")
        }
        let dtype = try v.dtype(run["dtype"], at + ".dtype")
        if let dtype, !dtype.isConvertible {
            throw v.fail(at + ".dtype", "\(dtype.torchName) is not a floating dtype (\(DType.convertibleTorchNames))")
        }
        let subject = try parseSubject(run["subject"], at: at + ".subject", v)
        guard subject.supports(strategy) else {
            throw v.fail(
                at + ".subject",
                "\(subject.name) reads a state dict and places no modules: it has no \(strategy.rawValue) run")
        }
        let id =
            try v.string(run["id"], at + ".id", required: false)
            ?? Run.defaultID(strategy: strategy, dtype: dtype, subject: subject)
        guard Self.isFileSafe(id, extra: "@") else {
            throw v.fail(
                at + ".id",
                "must be 1–100 ASCII letters, digits, '-', '_', '.' or '@', not starting with '.' (it names the run's chart and log files)"
            )
        }
        var parsed = Run(id: id, strategy: strategy, dtype: dtype, placement: placement, subject: subject)
        switch run["touch"] {
        case nil: break
        case .some(.bool(let touch)): parsed.touch = touch
        case .some(let other): throw v.fail(at + ".touch", "must be true or false, not \(other.typeName)")
        }
        parsed.ranks = try v.integer(run["ranks"], at + ".ranks", range: 1...1024) ?? 1
        return parsed
    }

    /// Whether `text` can name a file on its own: 1–100 ASCII letters, digits, `-`, `_`, `.` and `extra`, not
    /// starting with `.` (no `/`, NUL, `..` or hidden file). Scenario names and run ids become file names.
    static func isFileSafe(_ text: String, extra: String) -> Bool {
        (1...100).contains(text.utf8.count) && !text.hasPrefix(".")
            && text.unicodeScalars.allSatisfy {
                $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "-_.\(extra)".unicodeScalars.contains($0))
            }
    }

    /// A subject's name (``Subject/named``), or `{"command": ["prog", "arg", …]}`.
    static func parseSubject(_ value: JSONValue?, at: String, _ v: Validator) throws -> Subject {
        switch value {
        case nil: return .engine
        case .some(.string(let name)) where Subject.named[name] != nil: return Subject.named[name] ?? .engine
        case .some(.object(let object)):
            _ = try v.object(.object(object), at, allowed: ["command"])
            guard case .array(let items)? = object["command"], !items.isEmpty,
                items.allSatisfy({ $0.stringValue != nil })
            else {
                throw v.fail(
                    at + ".command",
                    "must be a non-empty array of strings: the program and its arguments, e.g. [\"python3\", \"loader.py\", \"{checkpoint}\"]"
                )
            }
            return .command(items.compactMap(\.stringValue))
        case .some(let other):
            throw v.fail(
                at,
                "must be \"engine\", \"transformers\", \"safetensors\", \"runai-streamer\", \"fastsafetensors\" or {\"command\": [...]}, not \(other.stringValue.map { "\"\($0)\"" } ?? other.typeName)"
            )
        }
    }

    static func parseCache(_ value: JSONValue?, _ v: Validator) throws -> CacheMode {
        switch value {
        case nil: return .warm
        case .some(.string(let text)):
            guard let mode = CacheMode(rawValue: text) else {
                throw v.fail("$.cache", "must be \"warm\" or \"cold\", not \"\(text)\"")
            }
            return mode
        case .some(let other):
            throw v.fail("$.cache", "must be \"warm\" or \"cold\", not \(other.typeName)")
        }
    }

    static func parseTolerance(_ value: JSONValue?, _ v: Validator, at: String, base: Tolerance = .default) throws
        -> Tolerance
    {
        var tolerance = base
        guard let value else { return tolerance }
        let object = try v.object(value, at, allowed: ["relative", "absolute"])
        if let relative = object["relative"] {
            guard let r = relative.numberValue?.doubleValue, r >= 0, r < 1 else {
                throw v.fail(at + ".relative", "must be a number in [0, 1) (0.03 = 3%)")
            }
            tolerance.relative = r
        }
        if let absolute = try v.size(object["absolute"], at + ".absolute", allowZero: true) {
            tolerance.absoluteBytes = absolute
        }
        return tolerance
    }

    /// `sample_interval_ms`, nil when absent (each kind of run then has its own default).
    static func parseInterval(_ value: JSONValue?, _ v: Validator) throws -> Double? {
        guard let value else { return nil }
        guard let ms = value.numberValue?.doubleValue, ms >= 0.1, ms <= 50 else {
            throw v.fail("$.sample_interval_ms", "must be a number of milliseconds in [0.1, 50]")
        }
        return ms
    }

    static func parseLimits(_ root: OrderedDictionary<String, JSONValue>, _ v: Validator) throws -> ChildRunner.Limits {
        func seconds(_ key: String, default value: Double) throws -> Double {
            guard let given = root[key] else { return value }
            guard let number = given.numberValue?.doubleValue, number >= 1, number <= 86_400 else {
                throw v.fail("$." + key, "must be a number of seconds in [1, 86400]")
            }
            return number
        }
        return ChildRunner.Limits(
            wallSeconds: try seconds("run_timeout_s", default: ChildRunner.Limits.default.wallSeconds),
            stallSeconds: try seconds("stall_timeout_s", default: ChildRunner.Limits.default.stallSeconds),
            rendezvousSeconds: try seconds(
                "rendezvous_timeout_s", default: ChildRunner.Limits.default.rendezvousSeconds))
    }
}

/// Typed access to scenario JSON with errors that name the path.
struct Validator {
    let file: String

    func fail(_ path: String, _ detail: String) -> ScenarioError { ScenarioError(file: file, path: path, detail) }

    func required(_ value: JSONValue?, _ path: String) throws -> JSONValue {
        guard let value else { throw fail(path, "is required") }
        return value
    }

    func object(_ value: JSONValue, _ path: String, allowed: Set<String>) throws -> OrderedDictionary<String, JSONValue>
    {
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
        guard range.contains(int) else {
            throw fail(path, "must be in \(range.lowerBound)…\(range.upperBound), not \(int)")
        }
        return int
    }

    func dtype(_ value: JSONValue?, _ path: String) throws -> DType? {
        guard let value else { return nil }
        guard case .string(let name) = value else {
            throw fail(path, "must be a dtype name such as \"bfloat16\", not \(value.typeName)")
        }
        guard let dtype = DType(torchName: name) else {
            throw fail(path, "unknown dtype '\(name)' (use \(DType.convertibleTorchNames))")
        }
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
