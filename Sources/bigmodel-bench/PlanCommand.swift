import ArgumentParser
import Checkpoint
import Foundation
import Loading
import Models
import OSLayer
import Placement
import Probes
import StrictJSON
import TensorEngine

/// The device-map options `plan` and `load --strategy device-map` share.
struct DeviceMapOptions: ParsableArguments {
    @Option(
        name: .customLong("device-map"),
        help:
            "auto, balanced (both: accelerate's balanced budgets, then its placement), sequential (budgets as given), or a JSON map file {\"module\": device, …}.",
        completion: .list(["auto", "balanced", "sequential"]))
    var deviceMap: String?

    @Option(
        name: .customLong("max-memory"),
        help:
            "Budgets per device, accelerate's max_memory: KEY=SIZE pairs, keys accelerator indices, cpu, disk (e.g. 0=2GiB,1=2GiB,cpu=6GiB). Default: each simulated accelerator's size and the RAM available now for cpu."
    )
    var maxMemory: String?

    @Option(
        name: .customLong("accelerator-memory"),
        help:
            "The simulated accelerators and their sizes (e.g. 0=16GiB,1=16GiB): there is no GPU, each is a memory pool in host RAM with this hard capacity. Default: the accelerators of --max-memory, each as large as its budget."
    )
    var acceleratorMemory: String?

    @Option(
        name: .customLong("no-split"), parsing: .upToNextOption,
        help:
            "Module classes never split across devices (accelerate's no_split_module_classes); default the model's decoder layer; 'none' for none."
    )
    var noSplit: [String] = []

    var isGiven: Bool { deviceMap != nil || maxMemory != nil || acceleratorMemory != nil || !noSplit.isEmpty }

    /// The request these options describe (`--device-map` defaults to `auto`).
    func request() throws -> PlacementRequest {
        let spec = try DeviceMapSpec.parse(deviceMap ?? "auto")
        let budgets = try maxMemory.map { text throws(PlacementError) in
            try DeviceBudgets.parse(text, option: "--max-memory")
        }
        let accelerators = try acceleratorMemory.map { text throws(PlacementError) in
            try DeviceBudgets.parse(text, option: "--accelerator-memory", acceleratorsOnly: true)
        }
        var classes: [String]? = noSplit.isEmpty ? nil : noSplit
        if noSplit == ["none"] { classes = [] }
        return PlacementRequest(
            deviceMap: spec, maxMemory: budgets, acceleratorMemory: accelerators, noSplit: classes,
            hostAvailableBytes: budgets == nil ? SystemInfo.current().memAvailableBytes : nil)
    }
}

struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Compute a device map (accelerate's placement) and the bytes per device, without loading anything.",
        discussion: """
            Devices are the simulated accelerators 0, 1, … (memory pools in host RAM: there is no GPU here), cpu and \
            disk. Module sizes are accelerate's: parameters at the target dtype (a tied weight once), buffers such as \
            rotary_emb.inv_freq at min(dtype size, their own size). auto/balanced first balance the accelerator \
            budgets (get_balanced_memory); sequential fills devices in order. A JSON map file assigns module-name \
            prefixes to devices; every parameter must get one (exit 65 otherwise).

            Examples:
              bigmodel-bench plan /tmp/model --device-map auto --max-memory 0=2GiB,cpu=6GiB
            """)

    @Argument(
        help: "A checkpoint folder, a .safetensors file or index, or a folder holding only config.json.",
        completion: .file())
    var path: String

    @OptionGroup var placement: DeviceMapOptions

    @Option(
        help:
            "Target dtype (float16, bfloat16, float32, float64); default the config's dtype (else the first floating tensor)."
    )
    var dtype: DTypeArgument?

    @Flag(help: "Print one JSON object.")
    var json = false

    func run() throws {
        try reportingErrors {
            let request = try placement.request()
            let target = try dtype?.castTarget()
            let (architecture, modelDType, parameterDTypes) = try Self.model(at: path, requested: target)
            let result = try request.place(
                architecture: architecture, dtype: modelDType, parameterDTypes: parameterDTypes)
            if json {
                print(JSONWriter.pretty.string(result.json))
            } else {
                print(Self.text(result, architecture: architecture), terminator: "")
            }
            for warning in result.warnings { printWarning(warning) }
        }
    }

    /// The model to place: from a checkpoint (its plan), or from a folder holding only config.json.
    static func model(at path: String, requested: DType?) throws -> (ModelArchitecture, DType, [String: DType]) {
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
        let configPath = (path.hasSuffix("/") ? path : path + "/") + "config.json"
        if exists && isDirectory.boolValue
            && !FileManager.default.fileExists(atPath: (path.hasSuffix("/") ? path : path + "/") + "model.safetensors")
            && !FileManager.default.fileExists(atPath: (path.hasSuffix("/") ? path : path + "/") + ShardIndex.fileName)
            && FileManager.default.fileExists(atPath: configPath)
        {
            let config = try ModelConfig.load(path: configPath)
            guard
                let architecture = try ModelArchitecture.fromConfig(config)?.scaled(
                    by: SyntheticCheckpoint.recordedScale(in: config))
            else {
                throw ModelConfigError(
                    path: configPath, field: "model_type",
                    "'\(config.modelType ?? "(missing)")' is not an architecture this tool knows (\(ModelArchitecture.knownModelTypes.joined(separator: ", "))); give a checkpoint folder instead"
                )
            }
            guard let dtype = try requested ?? config.dtype() else {
                throw UsageError("\(configPath) names no dtype; give --dtype")
            }
            guard dtype.isConvertible else {
                throw ModelConfigError(
                    path: configPath, field: "dtype", "\(dtype.torchName) is not a floating point dtype; give --dtype")
            }
            return (architecture, dtype, [:])
        }
        let plan = try LoadPlan(checkpoint: try Checkpoint(path: path), requested: requested)
        return (
            plan.architecture, plan.dtype,
            Dictionary(plan.parameters.map { ($0.name, $0.dtype) }, uniquingKeysWith: { first, _ in first })
        )
    }

    static func text(_ placement: DevicePlacement, architecture: ModelArchitecture) -> String {
        var out = "device map (\(placement.mode)) for \(architecture.className) at \(placement.dtype.torchName)\n"
        out +=
            "model bytes \(placement.modelBytes) (\(ByteSize.binary(placement.modelBytes))): accelerate's count, parameters at the dtype (tied weights once), buffers at min(dtype, own)\n"
        out +=
            "no-split classes: \(placement.noSplitClasses.isEmpty ? "(none)" : placement.noSplitClasses.joined(separator: ", "))\n\n"
        var rows = [["module", "device", "bytes"]]
        for (name, device) in placement.deviceMap {
            rows.append([name.isEmpty ? "\"\"" : name, device.description, String(placement.sizes[name])])
        }
        out += TextTable.render(rows, rightAligned: [2])
        out += "\n"
        var devices = [["device", "budget", "placement budget", "placed", "parameters", "buffers", "share"]]
        for share in placement.devices {
            let percent = placement.modelBytes > 0 ? Double(share.placedBytes) * 100 / Double(placement.modelBytes) : 0
            devices.append([
                share.device.description, share.budgetBytes.map(String.init) ?? "-",
                share.placementBudgetBytes.map(String.init) ?? "-",
                String(share.placedBytes), String(share.parameterBytes), String(share.bufferBytes),
                ByteSize.fixed(percent, digits: 1) + "%",
            ])
        }
        out += TextTable.render(devices, rightAligned: [1, 2, 3, 4, 5, 6])
        return out
    }
}
