import Foundation
import Loading
import OrderedCollections
import Placement
import StrictJSON
import TensorEngine

/// A `device-map` run's placement as the scenario writes it:
///
/// ```json
/// {"strategy": "device-map", "device_map": "auto", "max_memory": {"0": "30%", "cpu": "30%"},
///  "accelerator_memory": {"0": "16GiB"}, "no_split": ["GemmaDecoderLayer"]}
/// ```
///
/// `device_map` is accelerate's mode (`auto`, `balanced`, `sequential`), a map file, or the map itself.
/// `max_memory` / `accelerator_memory` take accelerate's keys (accelerator indices, `cpu`, `disk`) and sizes —
/// or, a scenario extension, percentages of the model's bytes at the target dtype (`"30%"`), so that the same
/// budgets force the same tiers at whatever scale the run is fitted to.
package struct PlacementSettings: Sendable, Equatable {
    package let deviceMap: JSONValue
    package let maxMemory: JSONValue?
    package let acceleratorMemory: JSONValue?
    /// nil: the model's own no-split classes.
    package let noSplit: [String]?
    /// The scenario file and the run's JSON path, for messages.
    let file: String
    let path: String

    /// The keys a device-map run may have besides `id`, `strategy` and `dtype`.
    static let keys: Set<String> = ["device_map", "max_memory", "accelerator_memory", "no_split"]

    /// Reads the settings of the run at `path`; validates them now (with a nominal 1 GB model) so that a bad
    /// key or size fails when the scenario is loaded, not after a checkpoint was generated.
    static func parse(_ run: OrderedDictionary<String, JSONValue>, file: String, path: String) throws
        -> PlacementSettings
    {
        var noSplit: [String]?
        if let value = run["no_split"] {
            guard case .array(let items) = value, let names = Optional(items.compactMap(\.stringValue)),
                names.count == items.count
            else {
                throw ScenarioError(file: file, path: path + ".no_split", "must be an array of module class names")
            }
            noSplit = names
        }
        let settings = PlacementSettings(
            deviceMap: run["device_map"] ?? .string("auto"), maxMemory: run["max_memory"],
            acceleratorMemory: run["accelerator_memory"],
            noSplit: noSplit, file: file, path: path)
        _ = try settings.request(modelBytes: 1_000_000_000, hostAvailableBytes: nil)
        return settings
    }

    /// The placement request for a model of `modelBytes` at the target dtype.
    package func request(modelBytes: Int, hostAvailableBytes: Int?) throws -> PlacementRequest {
        let folder = URL(fileURLWithPath: file).deletingLastPathComponent().path
        let spec = try DeviceMapSpec.parse(
            json: deviceMap, source: file, path: path + ".device_map", baseFolder: folder)
        let budgets = try maxMemory.map { value in
            try DeviceBudgets.parse(
                json: try Self.resolvePercentages(
                    value, modelBytes: modelBytes, file: file, path: path + ".max_memory"), source: file,
                path: path + ".max_memory")
        }
        let accelerators = try acceleratorMemory.map { value in
            try DeviceBudgets.parse(
                json: try Self.resolvePercentages(
                    value, modelBytes: modelBytes, file: file, path: path + ".accelerator_memory"), source: file,
                path: path + ".accelerator_memory", acceleratorsOnly: true)
        }
        return PlacementRequest(
            deviceMap: spec, maxMemory: budgets, acceleratorMemory: accelerators, noSplit: noSplit,
            hostAvailableBytes: budgets == nil ? hostAvailableBytes : nil)
    }

    /// Replaces `"NN%"` values with that share of `modelBytes` (rounded down); leaves every other value as is.
    static func resolvePercentages(_ value: JSONValue, modelBytes: Int, file: String, path: String) throws -> JSONValue
    {
        guard case .object(let object) = value else { return value }
        var resolved = OrderedDictionary<String, JSONValue>()
        for (key, entry) in object {
            if case .string(let text) = entry, text.hasSuffix("%") {
                guard let percent = Double(text.dropLast()), percent >= 0, percent <= 1000 else {
                    throw ScenarioError(
                        file: file, path: path + "." + key, "'\(text)' is not a percentage such as \"30%\"")
                }
                resolved[key] = JSONValue(Int((Double(modelBytes) * percent / 100).rounded(.down)))
            } else {
                resolved[key] = entry
            }
        }
        return .object(resolved)
    }
}
