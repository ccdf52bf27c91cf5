import Foundation
import TensorEngine

/// Just enough of safetensors to pull a tensor's bytes out of a fixture file, so the conversion tests do not
/// depend on the project's real checkpoint reader (written and tested separately). Not a validating parser:
/// the fixtures are known-good files.
package struct ConversionFixtureFile {
    package struct Entry {
        package let dtype: DType
        package let shape: [Int]
        package let byteRange: Range<Int>
    }

    package let bytes: [UInt8]
    package let entries: [String: Entry]

    package struct Malformed: Error, CustomStringConvertible {
        package let description: String
    }

    package init(path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw Malformed(description: "cannot read \(path)")
        }
        bytes = [UInt8](data)
        guard bytes.count >= 8 else { throw Malformed(description: "\(path): shorter than the header length") }
        let headerLength = bytes[0..<8].reversed().reduce(0) { ($0 << 8) | Int($1) }
        let dataStart = 8 + headerLength
        guard dataStart <= bytes.count,
            let header = try JSONSerialization.jsonObject(with: Data(bytes[8..<dataStart])) as? [String: Any]
        else { throw Malformed(description: "\(path): bad header") }

        var entries: [String: Entry] = [:]
        for (name, value) in header where name != "__metadata__" {
            guard let fields = value as? [String: Any],
                let dtypeName = fields["dtype"] as? String, let dtype = DType(safetensorsName: dtypeName),
                let shape = fields["shape"] as? [Int],
                let offsets = fields["data_offsets"] as? [Int], offsets.count == 2,
                offsets[0] <= offsets[1], dataStart + offsets[1] <= bytes.count
            else { throw Malformed(description: "\(path): bad entry \(name)") }
            entries[name] = Entry(
                dtype: dtype, shape: shape, byteRange: (dataStart + offsets[0])..<(dataStart + offsets[1]))
        }
        self.entries = entries
    }

    package func tensorBytes(_ name: String) throws -> (dtype: DType, bytes: [UInt8]) {
        guard let entry = entries[name] else { throw Malformed(description: "no tensor \(name)") }
        return (entry.dtype, Array(bytes[entry.byteRange]))
    }
}

/// A fixture folder's `expected.json`, reduced to what the conversion tests check.
package struct ConversionExpectations {
    package struct StoredTensor {
        package let file: String
        package let dtype: String
        package let sha256: String
    }

    /// Tensor name → torch dtype name (`float16`, `bfloat16`, `float32`) → sha256 of the converted bytes.
    package let converted: [String: [String: String]]
    package let tensors: [String: StoredTensor]
    package let tied: [String]

    package init(folder: String) throws {
        let path = FixturePaths.path(folder + "/expected.json")
        guard let data = FileManager.default.contents(atPath: path),
            let root = try JSONSerialization.jsonObject(with: data) as? [String: Any],
            let converted = root["converted"] as? [String: [String: String]],
            let tensors = root["tensors"] as? [String: [String: Any]]
        else { throw ConversionFixtureFile.Malformed(description: "cannot read \(path)") }
        self.converted = converted
        var stored: [String: StoredTensor] = [:]
        for (name, fields) in tensors {
            guard let file = fields["file"] as? String, let dtype = fields["dtype"] as? String,
                let sha256 = fields["sha256"] as? String
            else { throw ConversionFixtureFile.Malformed(description: "\(path): bad tensor \(name)") }
            stored[name] = StoredTensor(file: file, dtype: dtype, sha256: sha256)
        }
        self.tensors = stored
        self.tied = root["tied"] as? [String] ?? []
    }
}
