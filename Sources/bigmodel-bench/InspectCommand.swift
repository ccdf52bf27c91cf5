import ArgumentParser
import Checkpoint
import OrderedCollections
import StrictJSON
import TensorEngine

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract:
            "Describe a safetensors file or checkpoint folder from its headers (reads no tensor bytes unless --digests).",
        discussion:
            "Examples: bigmodel-bench inspect /tmp/model; bigmodel-bench inspect model.safetensors --json --digests")

    @Argument(help: "A .safetensors file, a model.safetensors.index.json, or a checkpoint folder.", completion: .file())
    var path: String

    @Flag(help: "Print one JSON object instead of the summary and table.")
    var json = false

    @Flag(help: "Read every tensor and include its SHA-256 (of the raw little-endian bytes as stored).")
    var digests = false

    func run() throws {
        try reportingErrors {
            let checkpoint = try Checkpoint(path: path)
            var digestByName: [String: String] = [:]
            if digests {
                try checkpoint.verify(digests: true) { digestByName[$0] = $1 }
            }
            if json {
                print(JSONWriter.pretty.string(Self.json(checkpoint, digests: digests ? digestByName : nil)))
            } else {
                print(Self.text(checkpoint, digests: digests ? digestByName : nil), terminator: "")
            }
            for warning in checkpoint.warnings { printWarning(warning) }
        }
    }

    static func json(_ checkpoint: Checkpoint, digests: [String: String]?) -> JSONValue {
        var files: [JSONValue] = []
        var metadata = OrderedDictionary<String, JSONValue>()
        for (name, file) in zip(checkpoint.fileNames, checkpoint.files) {
            files.append(
                .object([
                    "name": .string(name),
                    "bytes": JSONValue(file.fileSize),
                    "tensor_bytes": JSONValue(file.header.dataByteCount),
                    "tensors": JSONValue(file.header.tensors.count),
                ]))
            metadata[name] =
                file.header.metadata.map {
                    .object(OrderedDictionary(uniqueKeysWithValues: $0.map { ($0.key, JSONValue.string($0.value)) }))
                } ?? .null
        }
        var tensors: [JSONValue] = []
        for (name, location) in checkpoint.tensors {
            var entry: OrderedDictionary<String, JSONValue> = [
                "name": .string(name),
                "dtype": .string(location.tensor.dtype.safetensorsName),
                "shape": .array(location.tensor.shape.map { JSONValue($0) }),
                "file": .string(checkpoint.fileNames[location.fileIndex]),
                "nbytes": JSONValue(location.tensor.byteCount),
            ]
            if let digest = digests?[name] { entry["sha256"] = .string(digest) }
            tensors.append(.object(entry))
        }
        return .object([
            "format": .string(checkpoint.format.rawValue),
            "total_size": JSONValue(checkpoint.totalSize),
            "total_parameters": JSONValue(checkpoint.totalParameters),
            "largest_shard_bytes": JSONValue(checkpoint.largestShardBytes),
            "files": .array(files),
            "metadata": .object(metadata),
            "tensors": .array(tensors),
        ])
    }

    static func text(_ checkpoint: Checkpoint, digests: [String: String]?) -> String {
        var dtypeCounts = OrderedDictionary<String, Int>()
        for location in checkpoint.tensors.values {
            dtypeCounts[location.tensor.dtype.safetensorsName, default: 0] += 1
        }
        let largest = zip(checkpoint.fileNames, checkpoint.files).max {
            $0.1.header.dataByteCount < $1.1.header.dataByteCount
        }
        var out = ""
        out += "checkpoint   \(checkpoint.path) (\(checkpoint.format.rawValue))\n"
        out += "files        \(checkpoint.files.count)\n"
        out +=
            "tensors      \(checkpoint.tensors.count) (\(dtypeCounts.map { "\($0.key) × \($0.value)" }.joined(separator: ", ")))\n"
        out += "parameters   \(checkpoint.totalParameters)\n"
        out +=
            "tensor bytes \(checkpoint.totalSize) (\(ByteSize.binary(checkpoint.totalSize)), \(ByteSize.decimal(checkpoint.totalSize)))\n"
        if let largest {
            out +=
                "largest shard \(largest.0): \(largest.1.header.dataByteCount) tensor bytes (\(ByteSize.binary(largest.1.header.dataByteCount)))\n"
        }
        out += "\n"
        var rows: [[String]] = [["name", "dtype", "shape", "bytes", "file"] + (digests == nil ? [] : ["sha256"])]
        for (name, location) in checkpoint.tensors {
            rows.append(
                [
                    name, location.tensor.dtype.safetensorsName,
                    "[" + location.tensor.shape.map(String.init).joined(separator: ", ") + "]",
                    String(location.tensor.byteCount), checkpoint.fileNames[location.fileIndex],
                ]
                    + (digests.map { [$0[name] ?? ""] } ?? []))
        }
        out += TextTable.render(rows, rightAligned: [3])
        return out
    }
}
