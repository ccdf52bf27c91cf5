import Foundation
import Models
import OrderedCollections
import StrictJSON
import TensorEngine

/// How `--device-map` asks for a placement.
package enum DeviceMapMode: String, Sendable, CaseIterable {
    /// transformers' `device_map="auto"`: `get_balanced_memory`, then `infer_auto_device_map`.
    case auto
    /// The same as `auto` (transformers treats "balanced" and "auto" alike).
    case balanced
    /// `infer_auto_device_map` on the budgets as given: fill accelerator 0, then 1, …, then cpu, then disk.
    case sequential

    package static var names: String { allCases.map(\.rawValue).joined(separator: ", ") }
}

/// A `--device-map` value: a mode, or a map the user wrote.
package enum DeviceMapSpec: Sendable, Equatable {
    case mode(DeviceMapMode)
    case user(UserDeviceMap)

    /// `auto`, `balanced`, `sequential`, or the path of a JSON map file (read and validated now).
    /// A value that is neither a mode nor an existing file is a usage error (exit 64) unless it ends in `.json`
    /// (then: a missing input, exit 66).
    package static func parse(_ text: String) throws -> DeviceMapSpec {
        if let mode = DeviceMapMode(rawValue: text) { return .mode(mode) }
        if !text.hasSuffix(".json") && !FileManager.default.fileExists(atPath: text) {
            throw PlacementError(
                .invalidMode, source: "--device-map", location: text,
                "is neither a mode (\(DeviceMapMode.names)) nor an existing JSON map file", category: .usage)
        }
        return .user(try UserDeviceMap.load(path: text))
    }

    /// The scenario form, at `path` in `source`: a mode string, the path of a map file (relative paths are
    /// taken relative to `baseFolder` when given), or the map itself as an object. Errors exit 65.
    package static func parse(json value: JSONValue, source: String, path: String, baseFolder: String? = nil) throws
        -> DeviceMapSpec
    {
        switch value {
        case .string(let text):
            if let mode = DeviceMapMode(rawValue: text) { return .mode(mode) }
            let file =
                text.hasPrefix("/") || baseFolder == nil
                ? text : (baseFolder!.hasSuffix("/") ? baseFolder! : baseFolder! + "/") + text
            guard FileManager.default.fileExists(atPath: file) else {
                throw PlacementError(
                    .invalidMode, source: source, location: path,
                    "'\(text)' is neither a mode (\(DeviceMapMode.names)) nor an existing map file")
            }
            return .user(try UserDeviceMap.load(path: file))
        case .object:
            return .user(try UserDeviceMap.parse(json: value, source: source, path: path))
        default:
            throw PlacementError(
                .invalidMode, source: source, location: path,
                "is \(value.typeName); give a mode (\(DeviceMapMode.names)), a map file or a map object")
        }
    }

    /// `auto` / `balanced` / `sequential`, or `map` for a user's map.
    package var name: String {
        switch self {
        case .mode(let mode): return mode.rawValue
        case .user: return "map"
        }
    }
}

/// Everything that decides a placement besides the model: the map or mode, the budgets, the simulated
/// accelerators and the no-split classes.
package struct PlacementRequest: Sendable, Equatable {
    package var deviceMap: DeviceMapSpec
    /// accelerate's `max_memory`; nil when the user gave none.
    package var maxMemory: DeviceBudgets?
    /// The simulated accelerators and their sizes (`--accelerator-memory 0=16GiB`). There is no GPU here: an
    /// accelerator is a memory pool in host RAM. Without `maxMemory`, these sizes are the accelerators'
    /// budgets (accelerate's "free memory of each GPU"); they are also each pool's hard capacity when loading.
    /// When nil, the accelerators are the integer keys of `maxMemory`, each as large as its budget.
    package var acceleratorMemory: DeviceBudgets?
    /// `no_split_module_classes`; nil means the model's own (`_no_split_modules`, the decoder layer).
    package var noSplit: [String]?
    /// The cpu budget when `maxMemory` is nil (accelerate uses the RAM available now); nil means unlimited.
    package var hostAvailableBytes: Int?

    package init(
        deviceMap: DeviceMapSpec, maxMemory: DeviceBudgets? = nil, acceleratorMemory: DeviceBudgets? = nil,
        noSplit: [String]? = nil,
        hostAvailableBytes: Int? = nil
    ) {
        self.deviceMap = deviceMap
        self.maxMemory = maxMemory
        self.acceleratorMemory = acceleratorMemory
        self.noSplit = noSplit
        self.hostAvailableBytes = hostAvailableBytes
    }

    /// `device_map={"": "cpu"}`: everything in host memory, no accelerator, nothing on disk.
    package static let cpuOnly = PlacementRequest(deviceMap: .user(UserDeviceMap(["": .cpu], source: "default map")))

    /// The same request with no accelerator: only the cpu and disk budgets (a loader that has no simulated
    /// accelerators, on a machine without GPUs).
    package var withoutAccelerators: PlacementRequest {
        let cpuAndDisk = maxMemory.map {
            DeviceBudgets(entries: $0.entries.filter { $0.device == .cpu || $0.device == .disk })
        }.flatMap { $0.isEmpty ? nil : $0 }
        return PlacementRequest(
            deviceMap: deviceMap, maxMemory: cpuAndDisk, acceleratorMemory: nil, noSplit: noSplit,
            hostAvailableBytes: hostAvailableBytes)
    }

    /// The accelerator indices this request knows.
    package var acceleratorIndices: [Int] {
        acceleratorMemory?.acceleratorIndices ?? maxMemory?.acceleratorIndices ?? []
    }

    /// The hard capacity of each simulated accelerator: its `--accelerator-memory` size, else its budget.
    package var acceleratorCapacities: [Int: Int] {
        var capacities: [Int: Int] = [:]
        for index in acceleratorIndices {
            capacities[index] = acceleratorMemory?[.accelerator(index)] ?? maxMemory?[.accelerator(index)]
        }
        return capacities
    }

    /// Places `architecture`'s modules at `dtype`. `parameterDTypes` overrides the dtype of individual
    /// parameters (integer tensors of a checkpoint-derived architecture keep theirs).
    package func place(architecture: ModelArchitecture, dtype: DType, parameterDTypes: [String: DType] = [:])
        throws(PlacementError) -> DevicePlacement
    {
        try checkAcceleratorKeys()
        let model = PlacedModel(architecture: architecture, dtype: dtype, parameterDTypes: parameterDTypes)
        let noSplit = self.noSplit ?? architecture.noSplitClasses
        var warnings: [String] = []
        let map: OrderedDictionary<String, Device>
        var placementBudgets: [(device: Device, bytes: Double)]?
        switch deviceMap {
        case .mode(let mode):
            let budgets = automaticBudgets(mode: mode, model: model, noSplit: noSplit)
            placementBudgets = budgets
            let raw = AutoDeviceMap.infer(
                root: model.root, sizes: model.sizes, budgets: budgets, noSplit: Set(noSplit),
                tiedGroups: model.tiedGroups)
            map = OrderedDictionary(
                uniqueKeysWithValues: raw.sorted { model.tree.rank($0.key) < model.tree.rank($1.key) }.map {
                    ($0.key, $0.value)
                })
        case .user(let user):
            warnings += try check(user, model: model)
            map = user.entries
        }
        let (tensorDevices, deviceWarnings) = model.tensorDevices(map)
        warnings += deviceWarnings
        return DevicePlacement(
            mode: deviceMap.name, dtype: dtype, deviceMap: map, maxMemory: maxMemory,
            placementBudgets: placementBudgets,
            noSplitClasses: noSplit, sizes: model.sizes, tensorDevices: tensorDevices, tiedGroups: model.tiedGroups,
            devices: shares(map: map, tensorDevices: tensorDevices, placementBudgets: placementBudgets, model: model),
            warnings: warnings)
    }

    /// `--max-memory` may name only accelerators `--accelerator-memory` defines.
    func checkAcceleratorKeys() throws(PlacementError) {
        guard let acceleratorMemory, let maxMemory else { return }
        for index in maxMemory.acceleratorIndices where acceleratorMemory[.accelerator(index)] == nil {
            throw PlacementError(
                .unknownDevice, source: "--max-memory", location: String(index),
                "accelerator \(index) does not exist; --accelerator-memory defines \(acceleratorMemory.acceleratorIndices.map(String.init).joined(separator: ", "))"
            )
        }
    }

    /// The budgets `auto`, `balanced` and `sequential` place with: the user's, else each accelerator's size and
    /// the host's available memory for cpu; balanced as accelerate balances them except for `sequential`.
    func automaticBudgets(mode: DeviceMapMode, model: PlacedModel, noSplit: [String]) -> [(
        device: Device, bytes: Double
    )] {
        var budgets: [(device: Device, bytes: Double)]
        if let maxMemory {
            budgets = maxMemory.entries.map { ($0.device, Double($0.bytes)) }
        } else {
            budgets = (acceleratorMemory?.entries ?? []).map { ($0.device, Double($0.bytes)) }
            budgets.append((.cpu, Double(hostAvailableBytes ?? Self.unlimited)))
        }
        guard mode != .sequential else { return budgets }
        return AutoDeviceMap.balanced(
            budgets, userSet: maxMemory != nil, sizes: model.sizes, noSplit: noSplit, classOf: model.tree.className)
    }

    /// A user map must use existing accelerators and give every state-dict tensor a device; keys that match
    /// no module are warned about.
    func check(_ user: UserDeviceMap, model: PlacedModel) throws(PlacementError) -> [String] {
        let known = Set(acceleratorIndices)
        for (key, device) in user.entries {
            if case .accelerator(let index) = device, !known.contains(index) {
                let defined =
                    known.isEmpty
                    ? "this run defines no accelerator (give --accelerator-memory or --max-memory with accelerator indices)"
                    : "the accelerators are \(known.sorted().map(String.init).joined(separator: ", "))"
                throw PlacementError(
                    .unknownDevice, source: user.source, location: key.isEmpty ? "\"\"" : key,
                    "accelerator \(index) does not exist; \(defined)")
            }
        }
        let stateDict = model.root.allParameters.map(\.name) + model.root.allBuffers.filter(\.persistent).map(\.name)
        let unmapped = stateDict.filter { user.key(for: $0) == nil }
        if !unmapped.isEmpty {
            throw PlacementError(
                .unmappedParameters, source: user.source,
                "the map gives no device for \(unmapped.count) parameter\(unmapped.count == 1 ? "" : "s"): \(unmapped.joined(separator: ", "))"
            )
        }
        let unknownKeys = user.entries.keys.filter { !$0.isEmpty && !model.tree.contains($0) }
        return unknownKeys.isEmpty
            ? [] : ["\(user.source): keys matching no module of the model: \(unknownKeys.joined(separator: ", "))"]
    }

    /// Bytes per device, accelerate's sizes, for every device the map, the budgets or the user name.
    func shares(
        map: OrderedDictionary<String, Device>, tensorDevices: OrderedDictionary<String, Device>,
        placementBudgets: [(device: Device, bytes: Double)]?,
        model: PlacedModel
    ) -> [DeviceShare] {
        var parameterBytes: [Device: Int] = [:]
        var bufferBytes: [Device: Int] = [:]
        let bufferNames = Set(model.root.allBuffers.map(\.name))
        for name in model.sizes.countedTensors {
            guard let device = tensorDevices[name] else { continue }
            if bufferNames.contains(name) {
                bufferBytes[device, default: 0] += model.sizes[name]
            } else {
                parameterBytes[device, default: 0] += model.sizes[name]
            }
        }
        var deviceSet = Set(map.values).union(parameterBytes.keys).union(bufferBytes.keys)
        deviceSet.formUnion((placementBudgets ?? []).map(\.device))
        deviceSet.formUnion(maxMemory?.devices ?? [])
        let capacities = acceleratorCapacities
        return deviceSet.sorted().map { device -> DeviceShare in
            var capacity: Int?
            if case .accelerator(let index) = device { capacity = capacities[index] }
            // The stand-in for "no limit" (no budget and no host figure) is shown as none.
            let placementBudget = placementBudgets?.first { $0.device == device && $0.bytes < Double(Self.unlimited) }
                .map { Int($0.bytes.rounded(.down)) }
            return DeviceShare(
                device: device, budgetBytes: maxMemory?[device],
                placementBudgetBytes: device == .disk ? nil : placementBudget,
                capacityBytes: capacity, parameterBytes: parameterBytes[device] ?? 0,
                bufferBytes: bufferBytes[device] ?? 0)
        }
    }

    /// The cpu budget standing for "no limit" (far above any machine, far below 2^53).
    static let unlimited = 1 << 52
}

/// One device's share of a placement.
package struct DeviceShare: Sendable, Equatable {
    package let device: Device
    /// The user's `max_memory` budget for the device; nil when none was given.
    package let budgetBytes: Int?
    /// The budget placement worked with (defaults and balancing applied; rounded down when accelerate's is
    /// fractional); nil for disk and for user-written maps.
    package let placementBudgetBytes: Int?
    /// A simulated accelerator's capacity (its hard limit when loading).
    package let capacityBytes: Int?
    /// Bytes of the model's parameters placed here (a tied weight counted once): what a load allocates here.
    package let parameterBytes: Int
    /// Bytes of buffers placed here (`rotary_emb.inv_freq`, …), at accelerate's sizes; never loaded.
    package let bufferBytes: Int

    /// accelerate's count for the device: parameters and buffers.
    package var placedBytes: Int { parameterBytes + bufferBytes }

    package var json: JSONValue {
        .object([
            "device": device.json,
            "budget_bytes": budgetBytes.map { JSONValue($0) } ?? .null,
            "placement_budget_bytes": placementBudgetBytes.map { JSONValue($0) } ?? .null,
            "capacity_bytes": capacityBytes.map { JSONValue($0) } ?? .null,
            "placed_bytes": JSONValue(placedBytes),
            "parameter_bytes": JSONValue(parameterBytes),
            "buffer_bytes": JSONValue(bufferBytes),
        ])
    }
}

/// A computed placement: the `hf_device_map`, the device of every tensor, and the bytes per device.
package struct DevicePlacement: Sendable {
    /// `auto`, `balanced`, `sequential` or `map`.
    package let mode: String
    package let dtype: DType
    /// `hf_device_map`: module (or tensor) names to devices. For the automatic modes the keys are in module
    /// order (accelerate's own order depends on Python's set iteration when it merges children); a user's
    /// map keeps its own order.
    package let deviceMap: OrderedDictionary<String, Device>
    /// The user's budgets, as given.
    package let maxMemory: DeviceBudgets?
    /// The budgets placement used (automatic modes), exact (accelerate's 90% can be fractional).
    package let placementBudgets: [(device: Device, bytes: Double)]?
    package let noSplitClasses: [String]
    /// accelerate's module sizes at `dtype`.
    package let sizes: ModuleSizes
    /// The device of every parameter (tied aliases included) and buffer that the map covers, in model order.
    package let tensorDevices: OrderedDictionary<String, Device>
    /// Tied parameter groups (`find_tied_parameters`).
    package let tiedGroups: [[String]]
    /// Per device, in device order (accelerators, cpu, disk).
    package let devices: [DeviceShare]
    /// Things accelerate warns about (unknown keys, tied weights split across devices, unplaced buffers).
    package let warnings: [String]

    /// `compute_module_sizes(model, dtype)[""]`.
    package var modelBytes: Int { sizes.total }

    package func share(of device: Device) -> DeviceShare? { devices.first { $0.device == device } }

    /// The device a tensor (parameter, alias or buffer) is placed on.
    package func device(of tensor: String) -> Device? { tensorDevices[tensor] }

    /// The placement as one JSON object (what `plan --json` prints).
    package var json: JSONValue {
        var object: OrderedDictionary<String, JSONValue> = [
            "mode": .string(mode),
            "dtype": .string(dtype.torchName),
            "model_bytes": JSONValue(modelBytes),
            "no_split_module_classes": .array(noSplitClasses.map { .string($0) }),
            "max_memory": maxMemory?.json ?? .null,
        ]
        object["placement_max_memory"] =
            placementBudgets.map { budgets in
                .object(
                    .init(
                        uniqueKeysWithValues: budgets.map {
                            ($0.device.description, JSONValue(Int($0.bytes.rounded(.down))))
                        }))
            } ?? .null
        object["device_map"] = .object(.init(uniqueKeysWithValues: deviceMap.map { ($0.key, $0.value.json) }))
        object["devices"] = .array(devices.map(\.json))
        object["warnings"] = .array(warnings.map { .string($0) })
        return .object(object)
    }
}

/// Names and classes of a module tree, and each name's position in module order.
struct TreeIndex {
    private var classes: [String: String] = [:]
    private var positions: [String: Int] = [:]

    init(_ root: ModuleNode) {
        var next = 0
        func visit(_ node: ModuleNode) {
            classes[node.name] = node.className
            positions[node.name] = next
            next += 1
            for parameter in node.parameters {
                classes[parameter.name] = "Parameter"
                positions[parameter.name] = next
                next += 1
            }
            for child in node.children { visit(child) }
            for buffer in node.buffers {
                classes[buffer.name] = "Tensor"
                positions[buffer.name] = next
                next += 1
            }
        }
        visit(root)
    }

    /// The class of a module (`LlamaDecoderLayer`), "Parameter" / "Tensor" for tensors.
    func className(_ name: String) -> String { classes[name] ?? "" }

    func contains(_ name: String) -> Bool { classes[name] != nil }

    /// Position in module order (a module before its parameters, children and buffers).
    func rank(_ name: String) -> Int { positions[name] ?? Int.max }
}

/// The model as placement sees it: its module tree, accelerate's sizes of every tensor, tied groups.
struct PlacedModel {
    let root: ModuleNode
    let aliases: [String: String]
    let sizes: ModuleSizes
    let tiedGroups: [[String]]
    let tree: TreeIndex

    init(architecture: ModelArchitecture, dtype: DType, parameterDTypes: [String: DType]) {
        root = architecture.root
        aliases = Dictionary(
            architecture.tiedAliases.map { ($0.key, $0.value) }, uniquingKeysWith: { first, _ in first })
        sizes = ModuleSizes(root: root, dtype: dtype, tiedAliases: aliases) { tensor in
            parameterDTypes[tensor.name] ?? tensor.fixedDType ?? dtype
        }
        tiedGroups = TiedParameters.groups(root: root, tiedAliases: aliases)
        tree = TreeIndex(root)
    }

    /// Every tensor's device, by the longest key naming it or a parent module; and warnings for tied weights
    /// split across devices and buffers left without one.
    func tensorDevices(_ map: OrderedDictionary<String, Device>) -> (OrderedDictionary<String, Device>, [String]) {
        let resolver = UserDeviceMap(map, source: "placement")
        var devices = OrderedDictionary<String, Device>()
        var unplacedBuffers: [String] = []
        var warnings: [String] = []
        for tensor in root.allParameters {
            if let device = resolver.device(for: tensor.name) { devices[tensor.name] = device }
        }
        for buffer in root.allBuffers {
            if let device = resolver.device(for: buffer.name) {
                devices[buffer.name] = device
            } else {
                unplacedBuffers.append(buffer.name)
            }
        }
        for group in tiedGroups where Set(group.compactMap { devices[$0] }).count > 1 {
            let loaded =
                group.first { !TiedParameters.duplicateNames(root: root, tiedAliases: aliases).contains($0) }
                ?? group[0]
            warnings.append(
                "tied parameters are on different devices: "
                    + group.map { "\($0) on \(devices[$0].map(String.init(describing:)) ?? "none")" }.joined(
                        separator: ", ")
                    + "; they share one weight, which is loaded where \(loaded) goes")
        }
        if !unplacedBuffers.isEmpty {
            warnings.append("buffers without a device (not counted): \(unplacedBuffers.joined(separator: ", "))")
        }
        return (devices, warnings)
    }
}
