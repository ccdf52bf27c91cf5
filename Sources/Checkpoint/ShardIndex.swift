import OrderedCollections
import StrictJSON
import TensorEngine

/// `model.safetensors.index.json`: which shard holds each tensor.
package struct ShardIndex: Sendable, Equatable {
    /// The largest index read: a 405B-parameter model's is ~100 KiB, so 16 MiB is generous and keeps a hostile
    /// index from costing seconds and gigabytes to parse.
    package static let maximumFileBytes = 16 << 20

    package static let fileName = "model.safetensors.index.json"

    /// `metadata.total_size`: tensor data bytes over all shards (not file sizes).
    package var totalSize: Int?
    /// `metadata.total_parameters` (written since mid-2025).
    package var totalParameters: Int?
    /// Any other `metadata` entries, kept as found.
    package var otherMetadata: OrderedDictionary<String, JSONValue>
    /// Tensor name → shard file name, in the file's order.
    package var weightMap: OrderedDictionary<String, String>

    package init(
        totalSize: Int?, totalParameters: Int?, weightMap: OrderedDictionary<String, String>,
        otherMetadata: OrderedDictionary<String, JSONValue> = [:]
    ) {
        self.totalSize = totalSize
        self.totalParameters = totalParameters
        self.weightMap = weightMap
        self.otherMetadata = otherMetadata
    }

    /// The shard file names in the order their tensors should be read: sorted by name, which for
    /// `model-0000i-of-0000N` names is shard order.
    package var shardFileNames: [String] {
        Set(weightMap.values).sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    /// Parses an index file's bytes; `path` names it in errors.
    package static func parse(_ bytes: [UInt8], path: String) throws(CheckpointError) -> ShardIndex {
        func invalid(_ detail: String) -> CheckpointError { CheckpointError(.invalidIndex, source: path, detail) }
        let document: JSONValue
        do {
            document = try JSONParser().parse(bytes)
        } catch {
            throw invalid("not valid JSON: \(error)")
        }
        guard case .object(let root) = document else {
            throw invalid("the index is \(document.typeName), not an object")
        }
        guard let mapValue = root["weight_map"] else { throw invalid("missing 'weight_map'") }
        guard case .object(let map) = mapValue else {
            throw invalid("'weight_map' is \(mapValue.typeName), not an object")
        }
        var weightMap = OrderedDictionary<String, String>()
        for (name, file) in map {
            guard case .string(let fileName) = file else {
                throw CheckpointError(
                    .invalidIndex, source: path, location: name, "weight_map value is \(file.typeName), not a file name"
                )
            }
            weightMap[name] = fileName
        }
        var totalSize: Int?
        var totalParameters: Int?
        var other = OrderedDictionary<String, JSONValue>()
        if let metadataValue = root["metadata"], !metadataValue.isNull {
            guard case .object(let metadata) = metadataValue else {
                throw invalid("'metadata' is \(metadataValue.typeName), not an object")
            }
            for (key, value) in metadata {
                switch key {
                case "total_size", "total_parameters":
                    guard case .number(let number) = value, let int = Self.integer(number) else {
                        throw invalid(
                            "metadata.\(key) is \(value.typeName == "a number" ? "not a non-negative integer" : value.typeName)"
                        )
                    }
                    if key == "total_size" { totalSize = int } else { totalParameters = int }
                default:
                    other[key] = value
                }
            }
        }
        return ShardIndex(
            totalSize: totalSize, totalParameters: totalParameters, weightMap: weightMap, otherMetadata: other)
    }

    /// Older writers stored `total_size` as a float (`1.3e10`); accept a float only when it is integral.
    private static func integer(_ number: JSONNumber) -> Int? {
        if let exact = number.uint64Value, exact <= UInt64(Int.max) { return Int(exact) }
        let value = number.doubleValue
        guard value.isFinite, value >= 0, value.rounded() == value, value < 9.0e18 else { return nil }
        return Int(value)
    }

    /// The bytes transformers writes: `json.dumps(index, indent=2, sort_keys=True) + "\n"`.
    package func serialized() -> [UInt8] {
        var metadata = otherMetadata
        if let totalParameters { metadata["total_parameters"] = JSONValue(totalParameters) }
        if let totalSize { metadata["total_size"] = JSONValue(totalSize) }
        let root: JSONValue = .object([
            "metadata": .object(metadata),
            "weight_map": .object(
                OrderedDictionary(uniqueKeysWithValues: weightMap.map { ($0.key, JSONValue.string($0.value)) })),
        ])
        return JSONWriter.pythonSorted.bytes(root) + [0x0A]
    }
}
