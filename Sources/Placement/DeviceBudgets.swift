import StrictJSON
import TensorEngine

/// Memory budgets per device: accelerate's `max_memory` (`{0: "10GiB", 1: "10GiB", "cpu": "30GiB"}`), and the
/// sizes of the simulated accelerators (`--accelerator-memory`).
///
/// Keys are what accelerate's `get_max_memory` accepts: accelerator indices (integers; in JSON, where keys
/// are strings, integer strings such as `"0"`), `"cpu"` and `"disk"`. Anything else is refused, naming the
/// accepted keys. Values are byte counts or size strings in this tool's one grammar (`ByteSize`: `2GiB`,
/// `1.5GB`, `500MB`, plain bytes); 0 is a valid budget (the device then receives nothing). A `disk` budget is
/// accepted and ignored by placement, as accelerate ignores it.
package struct DeviceBudgets: Sendable, Equatable, CustomStringConvertible {
    /// One device's budget.
    package struct Entry: Sendable, Equatable {
        package let device: Device
        package let bytes: Int
        package init(device: Device, bytes: Int) {
            self.device = device
            self.bytes = bytes
        }
    }

    /// The budgets in accelerate's device order: accelerators by index, then `cpu`, then `disk`.
    package let entries: [Entry]

    /// The accepted keys, for messages.
    package static let acceptedKeys = "accelerator indices (0, 1, …), \"cpu\" and \"disk\""

    package init(_ budgets: [Device: Int]) {
        entries = budgets.map { Entry(device: $0.key, bytes: $0.value) }.sorted { $0.device < $1.device }
    }

    package init(entries: [Entry]) {
        self.init(Dictionary(entries.map { ($0.device, $0.bytes) }, uniquingKeysWith: { _, last in last }))
    }

    package subscript(device: Device) -> Int? { entries.first { $0.device == device }?.bytes }

    /// Devices in accelerate's order.
    package var devices: [Device] { entries.map(\.device) }

    /// The accelerator indices, ascending.
    package var acceleratorIndices: [Int] {
        entries.compactMap { if case .accelerator(let i) = $0.device { return i } else { return nil } }
    }

    package var isEmpty: Bool { entries.isEmpty }

    /// `0=2GiB,cpu=6GiB` with exact byte counts: `0=2147483648,cpu=6442450944`.
    package var description: String { entries.map { "\($0.device)=\($0.bytes)" }.joined(separator: ",") }

    /// The budgets as a JSON object (`{"0": 2147483648, "cpu": …}`), in device order.
    package var json: JSONValue {
        .object(.init(uniqueKeysWithValues: entries.map { ($0.device.description, JSONValue($0.bytes)) }))
    }

    // MARK: Parsing

    /// Parses the command-line form `KEY=SIZE[,KEY=SIZE…]` (`0=2GiB,1=2GiB,cpu=6GiB`). Errors are usage
    /// errors (exit 64) naming `option`. With `acceleratorsOnly`, only accelerator indices are keys
    /// (`--accelerator-memory`).
    package static func parse(_ text: String, option: String = "--max-memory", acceleratorsOnly: Bool = false)
        throws(PlacementError) -> DeviceBudgets
    {
        func fail(_ rule: PlacementRule, _ location: String?, _ detail: String) -> PlacementError {
            PlacementError(rule, source: option, location: location, detail, category: .usage)
        }
        let example = acceleratorsOnly ? "0=16GiB,1=16GiB" : "0=2GiB,1=2GiB,cpu=6GiB"
        guard !text.isEmpty else {
            throw fail(.invalidSyntax, nil, "is empty; write KEY=SIZE pairs separated by commas, e.g. \(example)")
        }
        var budgets: [Device: Int] = [:]
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw fail(
                    .invalidSyntax, nil,
                    "'\(item)' is not KEY=SIZE; write KEY=SIZE pairs separated by commas, e.g. \(example)")
            }
            let key = String(parts[0])
            guard let device = device(forKey: key), !acceleratorsOnly || device.isAccelerator else {
                throw fail(.unknownBudgetKey, key, acceptedMessage(key, acceleratorsOnly: acceleratorsOnly))
            }
            guard budgets[device] == nil else { throw fail(.duplicateDevice, key, "device \(device) is given twice") }
            guard let bytes = ByteSize.parseOrNil(String(parts[1])) else {
                throw fail(.invalidBudget, key, "'\(parts[1])' is not a size; \(ByteSize.example)")
            }
            budgets[device] = bytes
        }
        return DeviceBudgets(budgets)
    }

    /// Parses the JSON-object form (`{"0": "2GiB", "cpu": 6442450944}`) found at `path` in `source` (a
    /// scenario file). Errors are data errors (exit 65) naming the file and JSON path.
    package static func parse(json value: JSONValue, source: String, path: String, acceleratorsOnly: Bool = false)
        throws(PlacementError) -> DeviceBudgets
    {
        guard case .object(let object) = value else {
            throw PlacementError(
                .invalidSyntax, source: source, location: path,
                "is \(value.typeName), expected an object of device to size, e.g. {\"0\": \"2GiB\", \"cpu\": \"6GiB\"}")
        }
        var budgets: [Device: Int] = [:]
        for (key, entry) in object {
            let location = path + "." + key
            guard let device = device(forKey: key), !acceptsNothingBut(acceleratorsOnly, device) else {
                throw PlacementError(
                    .unknownBudgetKey, source: source, location: location,
                    acceptedMessage(key, acceleratorsOnly: acceleratorsOnly))
            }
            guard budgets[device] == nil else {
                throw PlacementError(
                    .duplicateDevice, source: source, location: location, "device \(device) is given twice")
            }
            let bytes: Int?
            switch entry {
            case .number(let number): bytes = number.intValue.flatMap { $0 >= 0 ? $0 : nil }
            case .string(let text): bytes = ByteSize.parseOrNil(text)
            default: bytes = nil
            }
            guard let bytes else {
                let shown: String
                switch entry {
                case .number(let number): shown = number.literal
                case .string(let text): shown = "\"\(text)\""
                default: shown = entry.typeName
                }
                throw PlacementError(
                    .invalidBudget, source: source, location: location,
                    "\(shown) is not a size; give a non-negative integer of bytes or a size string such as \"2GiB\" (\(ByteSize.example))"
                )
            }
            budgets[device] = bytes
        }
        return DeviceBudgets(budgets)
    }

    private static func acceptsNothingBut(_ acceleratorsOnly: Bool, _ device: Device) -> Bool {
        acceleratorsOnly && !device.isAccelerator
    }

    private static func acceptedMessage(_ key: String, acceleratorsOnly: Bool) -> String {
        acceleratorsOnly
            ? "'\(key)' is not an accelerator index; the keys are accelerator indices (0, 1, …)"
            : "'\(key)' is not a device accelerate knows; the accepted keys are \(acceptedKeys)"
    }

    /// A budget key as accelerate accepts it: a decimal accelerator index, "cpu" or "disk" (case-sensitive).
    static func device(forKey key: String) -> Device? {
        switch key {
        case "cpu": return .cpu
        case "disk": return .disk
        default:
            guard !key.isEmpty, key.count <= 7, key.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let index = Int(key)
            else { return nil }
            return .accelerator(index)
        }
    }
}

extension Device {
    /// True for `.accelerator(_)`.
    package var isAccelerator: Bool {
        if case .accelerator = self { return true }
        return false
    }

    /// The device as `hf_device_map` writes it: an integer for an accelerator, else `"cpu"` / `"disk"`.
    package var json: JSONValue {
        switch self {
        case .accelerator(let index): return JSONValue(index)
        case .cpu, .disk: return .string(description)
        }
    }
}
