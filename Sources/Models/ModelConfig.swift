import Checkpoint
import OSLayer
import OrderedCollections
import StrictJSON
import TensorEngine

/// A config.json is missing a field the architecture needs, or a field has the wrong type or value.
package enum ConfigRule: String, FailureRule {
    case invalidConfig = "InvalidConfig"
    package var ruleName: String? { nil }
    package var category: FailureCategory { .badData }
    package static var locationKind: String? { "field" }
}

/// `path: field 'name': detail`.
package typealias ModelConfigError = RuleViolation<ConfigRule>

extension RuleViolation where Rule == ConfigRule {
    package init(path: String, field: String?, _ detail: String) {
        self.init(.invalidConfig, source: path, location: field, detail)
    }

    package var path: String { source }
    package var field: String? { location }
}

/// A transformers `config.json`, read leniently where transformers is lenient (unknown fields are kept and
/// ignored) and strictly where a value is needed (a missing or mistyped dimension is an error naming it).
package struct ModelConfig: Sendable {
    /// The path as given, for messages.
    package let path: String
    /// Every field, in the file's order; numbers keep their literal text.
    package let fields: OrderedDictionary<String, JSONValue>

    package init(path: String, fields: OrderedDictionary<String, JSONValue>) {
        self.path = path
        self.fields = fields
    }

    /// Reads and parses `path`.
    package static func load(path: String) throws -> ModelConfig {
        let bytes = try Checkpoint.readSmallFile(path, limit: Self.maximumFileBytes)
        return try parse(bytes, path: path)
    }

    package static func parse(_ bytes: [UInt8], path: String) throws(ModelConfigError) -> ModelConfig {
        let document: JSONValue
        do {
            document = try JSONParser().parse(bytes)
        } catch {
            throw ModelConfigError(path: path, field: nil, "not valid JSON: \(error)")
        }
        guard case .object(let object) = document else {
            throw ModelConfigError(path: path, field: nil, "the config is \(document.typeName), not an object")
        }
        return ModelConfig(path: path, fields: object)
    }

    /// `model_type`, when present.
    package var modelType: String? { fields["model_type"]?.stringValue }

    /// The config's dtype: `dtype` (transformers 5.x) or `torch_dtype` (4.x), when present and known.
    /// Throws when present but not a dtype name.
    package func dtype() throws(ModelConfigError) -> DType? {
        for key in ["dtype", "torch_dtype"] {
            guard let value = fields[key], !value.isNull else { continue }
            guard case .string(let name) = value else {
                throw ModelConfigError(
                    path: path, field: key, "is \(value.typeName), not a dtype name such as \"bfloat16\"")
            }
            if name == "auto" { continue }
            guard let dtype = DType(torchName: name) else {
                throw ModelConfigError(path: path, field: key, "unknown dtype '\(name)'")
            }
            return dtype
        }
        return nil
    }

    package static let maximumDimension = 1 << 31
    /// The largest config.json read: real ones are a few KiB; anything near this is not a config.
    package static let maximumFileBytes = 4 << 20

    /// A required positive integer field.
    package func positiveInt(_ key: String) throws(ModelConfigError) -> Int {
        guard let value = fields[key], !value.isNull else {
            throw ModelConfigError(path: path, field: key, "missing; the \(modelType ?? "model") architecture needs it")
        }
        guard case .number(let number) = value, let int = number.intValue else {
            throw ModelConfigError(
                path: path, field: key,
                "is \(value.typeName == "a number" ? "not an integer" : value.typeName); expected a positive integer")
        }
        guard int > 0 else { throw ModelConfigError(path: path, field: key, "is \(int); expected a positive integer") }
        // 2^31: a product of two dimensions (heads × head_dim) still fits in Int; the model's total is checked
        // after it is built (ModelArchitecture.checkSize).
        guard int <= Self.maximumDimension else {
            throw ModelConfigError(
                path: path, field: key,
                "is \(int), larger than any model dimension this tool accepts (\(Self.maximumDimension) = 2^31)")
        }
        return int
    }

    /// An optional positive integer field: nil when absent or null.
    package func optionalPositiveInt(_ key: String) throws(ModelConfigError) -> Int? {
        guard let value = fields[key], !value.isNull else { return nil }
        return try positiveInt(key)
    }

    /// An optional non-negative integer (e.g. `pad_token_id`); nil when absent, null, or a list.
    package func optionalIndex(_ key: String) -> Int? {
        guard let number = fields[key]?.numberValue, let int = number.intValue, int >= 0 else { return nil }
        return int
    }

    package func bool(_ key: String, default fallback: Bool) throws(ModelConfigError) -> Bool {
        guard let value = fields[key], !value.isNull else { return fallback }
        guard case .bool(let flag) = value else {
            throw ModelConfigError(path: path, field: key, "is \(value.typeName), expected true or false")
        }
        return flag
    }

    package func positiveDouble(_ key: String, default fallback: Double) throws(ModelConfigError) -> Double {
        guard let value = fields[key], !value.isNull else { return fallback }
        guard case .number(let number) = value, number.doubleValue.isFinite, number.doubleValue > 0 else {
            throw ModelConfigError(path: path, field: key, "must be a positive number")
        }
        return number.doubleValue
    }

    /// This config with its dtype field(s) set to `dtype`, serialised as transformers writes configs
    /// (`json.dumps(indent=2, sort_keys=True)` plus a newline).
    package func serialized(withDType dtype: DType) -> [UInt8] {
        var object = fields
        Resharder.setDType(&object, to: dtype)
        return JSONWriter.pythonSorted.bytes(.object(object)) + [0x0A]
    }
}
