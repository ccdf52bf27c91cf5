import OrderedCollections
import TensorEngine

/// The placement request as JSON, in accelerate's own vocabulary so that a loader in any language can pass it
/// straight to `from_pretrained`:
///
/// ```json
/// {"device_map": "auto", "max_memory": {"0": 1073741824, "cpu": 2147483648}, "accelerator_memory": {"0": 1073741824},
///  "no_split": ["GemmaDecoderLayer"], "host_available_bytes": 17179869184}
/// ```
/// `device_map` is a mode (`auto`, `balanced`, `sequential`) or a map `{module prefix: device}`; a device is
/// accelerate's name as a string (`"0"`, `"1"`, `"cpu"`, `"disk"`); budgets are byte counts keyed by device.
extension PlacementRequest: Codable {
    enum CodingKeys: String, CodingKey {
        case deviceMap, maxMemory, acceleratorMemory, noSplit, hostAvailableBytes
    }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let deviceMap: DeviceMapSpec
        if let mode = try? container.decode(String.self, forKey: .deviceMap) {
            guard let parsed = DeviceMapMode(rawValue: mode) else {
                throw DecodingError.dataCorruptedError(
                    forKey: .deviceMap, in: container,
                    debugDescription: "'\(mode)' is not a device_map mode (\(DeviceMapMode.names))")
            }
            deviceMap = .mode(parsed)
        } else {
            let entries = try container.decode([String: Device].self, forKey: .deviceMap)
            deviceMap = .user(
                UserDeviceMap(
                    OrderedDictionary(
                        uniqueKeysWithValues: entries.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }),
                    source: "device_map"))
        }
        func budgets(_ key: CodingKeys) throws -> DeviceBudgets? {
            guard let values = try container.decodeIfPresent([String: Int].self, forKey: key) else { return nil }
            var budgets: [Device: Int] = [:]
            for (name, bytes) in values {
                guard let device = Device(parsing: name), bytes >= 0 else {
                    throw DecodingError.dataCorruptedError(
                        forKey: key, in: container, debugDescription: "'\(name)': \(bytes) is not a device budget")
                }
                budgets[device] = bytes
            }
            return DeviceBudgets(budgets)
        }
        self.init(
            deviceMap: deviceMap, maxMemory: try budgets(.maxMemory),
            acceleratorMemory: try budgets(.acceleratorMemory),
            noSplit: try container.decodeIfPresent([String].self, forKey: .noSplit),
            hostAvailableBytes: try container.decodeIfPresent(Int.self, forKey: .hostAvailableBytes))
    }

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch deviceMap {
        case .mode(let mode): try container.encode(mode.rawValue, forKey: .deviceMap)
        case .user(let map):
            try container.encode(
                Dictionary(uniqueKeysWithValues: map.entries.map { ($0.key, $0.value) }), forKey: .deviceMap)
        }
        func budgets(_ budgets: DeviceBudgets?) -> [String: Int]? {
            budgets.map { Dictionary(uniqueKeysWithValues: $0.entries.map { ($0.device.description, $0.bytes) }) }
        }
        try container.encodeIfPresent(budgets(maxMemory), forKey: .maxMemory)
        try container.encodeIfPresent(budgets(acceleratorMemory), forKey: .acceleratorMemory)
        try container.encodeIfPresent(noSplit, forKey: .noSplit)
        try container.encodeIfPresent(hostAvailableBytes, forKey: .hostAvailableBytes)
    }
}
