import Foundation
import OrderedCollections
import StrictJSON
import TensorEngine

/// A device map written by the user (`--device-map FILE.json`): module-name prefixes to devices,
/// `{"model.embed_tokens": 0, "model.layers": "cpu", "": "disk"}`.
///
/// A tensor goes where the longest key naming it or one of its parent modules says, on dotted boundaries
/// (`name == key` or `name` starts with `key + "."`; `""` covers everything) — how accelerate resolves a map
/// when loading. Values: an accelerator index (a JSON integer, or a string of digits or `cuda:N`-style),
/// `"cpu"` or `"disk"`.
package struct UserDeviceMap: Sendable, Equatable {
    /// The entries in the file's order.
    package let entries: OrderedDictionary<String, Device>
    /// The file the map came from (for messages).
    package let source: String

    package init(_ entries: OrderedDictionary<String, Device>, source: String = "device map") {
        self.entries = entries
        self.source = source
    }

    /// Reads and validates a map file. Errors (exit 65) name the file and, where it applies, the key.
    package static func load(path: String) throws -> UserDeviceMap {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw PlacementError(
                .invalidMode, source: "--device-map", location: path,
                "no such file; give auto, balanced, sequential or a JSON map file", category: .missingInput)
        }
        guard !isDirectory.boolValue, let data = FileManager.default.contents(atPath: path) else {
            throw PlacementError(.invalidDeviceMap, source: path, "cannot be read as a file", category: .missingInput)
        }
        guard data.count <= 64 << 20 else {
            throw PlacementError(
                .invalidDeviceMap, source: path, "is larger than 64 MiB; a device map is a small JSON object")
        }
        let bytes = [UInt8](data)
        let value: JSONValue
        do {
            value = try JSONParser().parse(bytes)
        } catch {
            throw PlacementError(.invalidDeviceMap, source: path, "is not valid JSON: \(error)")
        }
        return try parse(json: value, source: path, path: "$")
    }

    /// Validates a map given as JSON (a file's content or a scenario's `device_map` object) at `path` in `source`.
    package static func parse(json value: JSONValue, source: String, path: String = "$") throws(PlacementError)
        -> UserDeviceMap
    {
        guard case .object(let object) = value else {
            throw PlacementError(
                .invalidDeviceMap, source: source, location: path,
                "is \(value.typeName), expected an object of module names to devices, e.g. {\"model.embed_tokens\": 0, \"\": \"cpu\"}"
            )
        }
        var entries = OrderedDictionary<String, Device>()
        for (key, entry) in object {
            let location = key.isEmpty ? path + "[\"\"]" : path + "." + key
            guard let device = device(from: entry) else {
                let shown: String
                switch entry {
                case .string(let s): shown = "\"\(s)\""
                case .number(let n): shown = n.literal
                default: shown = entry.typeName
                }
                throw PlacementError(
                    .unknownDevice, source: source, location: location,
                    "\(shown) is not a device; use an accelerator index (0, 1, …), \"cpu\" or \"disk\"")
            }
            entries[key] = device
        }
        return UserDeviceMap(entries, source: source)
    }

    static func device(from value: JSONValue) -> Device? {
        switch value {
        case .number(let number):
            guard number.isIntegerLiteral, let index = number.intValue, index >= 0, index < 1 << 20 else { return nil }
            return .accelerator(index)
        case .string(let text):
            return Device(parsing: text)
        default:
            return nil
        }
    }

    /// The entry that places `tensor`: the longest key equal to it or to one of its parent modules.
    package func key(for tensor: String) -> String? {
        var name = tensor
        while true {
            if entries[name] != nil { return name }
            guard let dot = name.lastIndex(of: ".") else { break }
            name = String(name[..<dot])
        }
        return entries[""] != nil ? "" : nil
    }

    package func device(for tensor: String) -> Device? { key(for: tensor).flatMap { entries[$0] } }
}
