import Checkpoint
import Foundation
import Models
import OSLayer
import OrderedCollections
import Placement
import StrictJSON
import TensorEngine

/// `from_pretrained(device_map=…)`: the model placed across simulated accelerators, cpu and disk within
/// budgets (accelerate's rules, module `Placement`), then loaded the low-memory way, each parameter read
/// straight into place on its device.
///
/// - Each simulated accelerator is a memory pool in host RAM with its own jemalloc arena
///   (`HostAllocator.makeArena()`), so per-arena statistics show its use, and its own ledger budget, its
///   capacity (`--accelerator-memory`, else its `max_memory` budget): an allocation past it throws
///   `OutOfMemoryError`, as CUDA would.
/// - cpu tensors come from the standard allocator.
/// - disk: a tensor stored in the target dtype is referenced in place (offload index entry
///   `{"safetensors_file", "weight_name", "dtype"}`, nothing copied) — what transformers does for safetensors
///   checkpoints; any other disk tensor (converted, or missing and initialised) is written as accelerate's
///   `offload_weight` writes it, `<offload_folder>/<name>.dat` (raw bytes at the target dtype; bfloat16 as its
///   int16 bit patterns, which are the same bytes) with an `index.json` entry `{"dtype", "shape"}`. Disk tensors
///   are memory-mapped read-only: read on access, never in RAM, never in the ledger.
///
/// `StrategyName.deviceMap.strategy` is `DeviceMapLoad()`, which places everything on cpu
/// (`device_map={"": "cpu"}`); a run with a real request uses `DeviceMapLoad(request:offloadFolder:)` and,
/// for the exact per-device prediction and report, `prepare(_:)`.
package struct DeviceMapLoad: LoadStrategy {
    package var name: StrategyName { .deviceMap }
    package var formula: String { DeviceMapPrediction.formula }

    package let request: PlacementRequest
    package let offloadFolder: String?

    package init(request: PlacementRequest = .cpuOnly, offloadFolder: String? = nil) {
        self.request = request
        self.offloadFolder = offloadFolder
    }

    /// From the figures alone the placement is unknown; this is the cpu-only figure `M_t + staging`, exact for
    /// the default request (everything on cpu). For any other request use `prepare(plan).predictedPeakBytes`.
    package func predictedPeakBytes(_ f: MemoryFigures) -> Int { f.modelBytes + f.stagingBytes }

    /// Places the plan's model and predicts each device's peak, without loading or checking the offload folder.
    package func predict(_ plan: LoadPlan) throws -> (placement: DevicePlacement, prediction: DeviceMapPrediction) {
        let dtypes = Dictionary(plan.parameters.map { ($0.name, $0.dtype) }, uniquingKeysWith: { first, _ in first })
        let placement = try request.place(architecture: plan.architecture, dtype: plan.dtype, parameterDTypes: dtypes)
        return (placement, try DeviceMapPrediction(plan: plan, placement: placement))
    }

    /// Places the plan's model and predicts the load, without loading anything.
    package func prepare(_ plan: LoadPlan) throws -> PreparedDeviceMapLoad {
        let (placement, prediction) = try predict(plan)
        if prediction.needsOffloadFolder && offloadFolder == nil {
            let written = prediction.offloads.filter { $0.offload == .written }.map(\.name)
            throw PlacementError(
                .offloadFolderRequired, source: "--offload-folder",
                "\(written.count) disk-placed tensor\(written.count == 1 ? "" : "s") must be written (converted to \(plan.dtype.torchName) or initialised), e.g. \(written[0]); give an offload folder",
                category: .usage)
        }
        return PreparedDeviceMapLoad(
            placement: placement, prediction: prediction, capacities: request.acceleratorCapacities,
            offloadFolder: offloadFolder)
    }

    package func load(_ plan: LoadPlan, ledger: MemoryLedger, phases: PhaseLog) throws -> LoadedModel {
        try prepare(plan).load(plan, ledger: ledger, phases: phases)
    }
}

/// A device-map load whose placement and prediction are computed: its `predictedPeakBytes` is exact.
package struct PreparedDeviceMapLoad: LoadStrategy {
    package var name: StrategyName { .deviceMap }
    package var formula: String { DeviceMapPrediction.formula }

    package let placement: DevicePlacement
    package let prediction: DeviceMapPrediction
    /// Each simulated accelerator's hard capacity (its ledger budget).
    package let capacities: [Int: Int]
    package let offloadFolder: String?

    package init(
        placement: DevicePlacement, prediction: DeviceMapPrediction, capacities: [Int: Int], offloadFolder: String?
    ) {
        self.placement = placement
        self.prediction = prediction
        self.capacities = capacities
        self.offloadFolder = offloadFolder
    }

    /// The RAM-resident ledger peak: `Σ P_i + P_cpu + staging`. (`figures` are not needed: the prediction was
    /// made from the plan.)
    package func predictedPeakBytes(_ f: MemoryFigures) -> Int { prediction.ramPeakBytes }

    package func load(_ plan: LoadPlan, ledger: MemoryLedger, phases: PhaseLog) throws -> LoadedModel {
        try loadReporting(plan, ledger: ledger, phases: phases).model
    }

    /// Loads, and reports per device: budget, prediction, ledger live and peak, arena statistics, offload.
    /// A load that fails removes what it wrote to the offload folder.
    package func loadReporting(_ plan: LoadPlan, ledger: MemoryLedger, phases: PhaseLog) throws -> DeviceMapLoadResult {
        phases.begin("accelerator pools")
        let session = try DeviceMapSession(load: self, plan: plan, ledger: ledger)
        do {
            for fileIndex in 0..<plan.checkpoint.files.count {
                phases.begin("load shard \(fileIndex + 1)/\(plan.checkpoint.files.count)")
                try session.loadShard(fileIndex)
            }
            if !plan.missingKeys.isEmpty {
                phases.begin("materialize missing")
                try session.materializeMissing()
            }
            tie(&session.model, plan)
            session.offload.addTiedAliases(plan.tiedAliases)
            if session.offload.folder != nil && !session.offload.index.isEmpty {
                phases.begin("write offload index")
                try session.offload.writeIndex()
            }
        } catch {
            phases.end()
            session.offload.removeWritten()
            throw error
        }
        phases.end()
        session.staging = nil
        let report = DevicePlacementReport(
            placement: placement, prediction: prediction, ledger: ledger,
            pools: session.pools.values.sorted { $0.index < $1.index },
            offload: session.offload.summary)
        return DeviceMapLoadResult(model: LoadedModel(tensors: session.model), report: report)
    }
}

/// One device-map load under way: the accelerator pools, the model as it fills, the offload writer and the
/// staging buffer.
final class DeviceMapSession {
    let plan: LoadPlan
    let ledger: MemoryLedger
    var pools: [Int: AcceleratorPool] = [:]
    /// The meta skeleton, in model order; each parameter replaced when it is loaded.
    var model = OrderedDictionary<String, Tensor>()
    var offload: OffloadWriter
    var staging: TensorStorage?
    let routes: [String: Device]
    let offloadRoutes: [String: DeviceMapPrediction.Offload]

    init(load: PreparedDeviceMapLoad, plan: LoadPlan, ledger: MemoryLedger) throws {
        self.plan = plan
        self.ledger = ledger
        for (index, capacity) in load.capacities.sorted(by: { $0.key < $1.key }) {
            guard let allocator = HostAllocator.makeArena(), let arena = allocator.arena else {
                throw LoadError(
                    .arenaUnavailable, source: "device map",
                    "jemalloc did not create an arena for accelerator \(index) (arenas.create failed)")
            }
            pools[index] = AcceleratorPool(index: index, allocator: allocator, arena: arena, capacityBytes: capacity)
            ledger.setBudget(capacity, for: .accelerator(index))
        }
        let prediction = load.prediction
        routes = Dictionary(prediction.devices.map { ($0.name, $0.device) }, uniquingKeysWith: { first, _ in first })
        offloadRoutes = Dictionary(
            prediction.offloads.map { ($0.name, $0.offload) }, uniquingKeysWith: { first, _ in first })
        offload = OffloadWriter(folder: load.offloadFolder)
        if prediction.needsOffloadFolder || (load.offloadFolder != nil && !prediction.offloads.isEmpty) {
            try offload.createFolder()
        }
        for parameter in plan.parameters {
            model[parameter.name] = Tensor.meta(dtype: parameter.dtype, shape: parameter.shape)
        }
        staging =
            prediction.stagingBytes > 0
            ? try TensorStorage.allocate(byteCount: prediction.stagingBytes, device: .cpu, ledger: ledger) : nil
    }

    var stagingBytes: UnsafeMutableRawBufferPointer {
        staging?.mutableBytes ?? UnsafeMutableRawBufferPointer(start: nil, count: 0)
    }

    func device(_ parameter: LoadPlan.Parameter) throws -> Device {
        guard let device = routes[parameter.name] else {
            throw LoadError(
                .unplacedParameter, source: "device map", "parameter '\(parameter.name)' has no device in the placement"
            )
        }
        return device
    }

    func allocate(_ parameter: LoadPlan.Parameter, on device: Device) throws -> Tensor {
        guard case .accelerator(let index) = device else {
            return try Tensor.empty(dtype: parameter.dtype, shape: parameter.shape, device: .cpu, ledger: ledger)
        }
        guard var pool = pools[index] else {
            throw LoadError(
                .unplacedParameter, source: "device map",
                "parameter '\(parameter.name)' is placed on accelerator \(index), which has no pool")
        }
        let tensor = try Tensor.empty(
            dtype: parameter.dtype, shape: parameter.shape, device: device, ledger: ledger, allocator: pool.allocator)
        pool.allocatedSizeClassBytes += pool.allocator.usableSize(tensor.byteCount)
        pools[index] = pool
        return tensor
    }

    /// Every parameter stored in one shard, in data order (sequential reads): to its device, or to disk.
    func loadShard(_ fileIndex: Int) throws {
        let file = plan.checkpoint.files[fileIndex]
        let parameters = plan.parameters.filter { $0.source?.fileIndex == fileIndex }.sorted {
            ($0.source?.tensor.begin ?? 0) < ($1.source?.tensor.begin ?? 0)
        }
        for parameter in parameters {
            guard let stored = parameter.source?.tensor else { continue }
            let target = try device(parameter)
            if target == .disk {
                if offloadRoutes[parameter.name] == .referenced {
                    model[parameter.name] = Tensor(
                        dtype: parameter.dtype, shape: parameter.shape, storage: try file.map(stored, device: .disk))
                    offload.reference(parameter, file: file.path, storedName: stored.name)
                } else {
                    model[parameter.name] = try offload.writeConverted(
                        parameter, stored: stored, from: file, staging: stagingBytes)
                }
                continue
            }
            let tensor = try allocate(parameter, on: target)
            if stored.dtype == parameter.dtype {
                try file.read(stored, into: tensor.storage.mutableBytes)
            } else {
                try ShardStream.convert(stored, from: file, through: stagingBytes, into: tensor)
            }
            model[parameter.name] = tensor
        }
    }

    /// Missing keys, initialised on their device (written to the offload folder for disk).
    func materializeMissing() throws {
        let initializer = ModelInitializer(plan: plan, ledger: ledger)
        for parameter in plan.parameters where parameter.source == nil {
            let target = try device(parameter)
            if target == .disk {
                model[parameter.name] = try offload.writeInitialized(parameter, plan: plan, staging: stagingBytes)
            } else {
                let tensor = try allocate(parameter, on: target)
                try initializer.initialize(parameter, into: tensor)
                model[parameter.name] = tensor
            }
        }
    }
}

/// A finished device-map load: the model and its per-device report.
package struct DeviceMapLoadResult: Sendable {
    package let model: LoadedModel
    package let report: DevicePlacementReport
}

/// One simulated accelerator: its arena and capacity, and the bytes its allocations take at jemalloc's size
/// classes (what `stats.arenas.<i>` counts).
package struct AcceleratorPool: Sendable, Equatable {
    package let index: Int
    package let allocator: HostAllocator
    package let arena: UInt32
    package let capacityBytes: Int
    package var allocatedSizeClassBytes = 0
}

/// Writes disk-placed tensors the way accelerate offloads them, and the offload index.
struct OffloadWriter {
    let folder: String?
    /// `index.json`: tensor name → entry; sorted by name (then tied aliases) by `addTiedAliases`.
    private(set) var index = OrderedDictionary<String, JSONValue>()
    private(set) var writtenFiles: [(name: String, bytes: Int)] = []
    private(set) var referencedBytes = 0
    private var referenced: Set<String> = []

    init(folder: String?) { self.folder = folder }

    /// True when ``createFolder()`` made the folder (then a failed load removes it again, if empty).
    private(set) var createdFolder = false

    mutating func createFolder() throws {
        guard let folder else { return }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else {
                throw FileIOError(
                    path: folder, operation: "create the offload folder",
                    reason: "a file is in the way (it is not a folder)")
            }
            return
        }
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            createdFolder = true
        } catch {
            throw FileIOError(
                path: folder, operation: "create the offload folder", reason: FoundationErrorText.cause(error))
        }
    }

    /// `<folder>/<name>.dat`. A name that is not a plain file name (a checkpoint-derived architecture takes
    /// its names from the checkpoint) is refused rather than written outside the folder.
    func datPath(_ name: String) throws -> String {
        guard let folder else { preconditionFailure("writing offloaded weights needs a folder (checked in prepare)") }
        guard !name.isEmpty, !name.hasPrefix("."), !name.contains("/"), !name.contains("\0") else {
            throw LoadError(
                .unsafeOffloadName, source: "device map",
                "tensor name '\(name)' cannot be an offload file name (<name>.dat in \(folder))")
        }
        return (folder.hasSuffix("/") ? folder : folder + "/") + name + ".dat"
    }

    /// Records an in-place reference into the checkpoint (transformers' offload index for safetensors).
    mutating func reference(_ parameter: LoadPlan.Parameter, file: String, storedName: String) {
        index[parameter.name] = .object([
            "safetensors_file": .string(file), "weight_name": .string(storedName),
            "dtype": .string(parameter.dtype.torchName),
        ])
        referenced.insert(parameter.name)
        referencedBytes += parameter.byteCount
    }

    /// Converts a stored tensor chunk by chunk (source chunk and converted chunk side by side in `staging`)
    /// into `<name>.dat`, and maps the result.
    mutating func writeConverted(
        _ parameter: LoadPlan.Parameter, stored: StoredTensor, from file: SafetensorsFile,
        staging: UnsafeMutableRawBufferPointer
    ) throws -> Tensor {
        guard let sourceWidth = stored.dtype.byteWidth, let targetWidth = parameter.dtype.byteWidth else {
            preconditionFailure("sub-byte dtypes never convert")
        }
        let count = stored.byteCount / sourceWidth
        let perChunk = staging.count / (sourceWidth + targetWidth)
        precondition(perChunk > 0 || count == 0, "staging smaller than one element pair")
        return try write(parameter) { out in
            var element = 0
            while element < count {
                let n = min(perChunk, count - element)
                let source = UnsafeMutableRawBufferPointer(rebasing: staging[0..<(n * sourceWidth)])
                let converted = UnsafeMutableRawBufferPointer(
                    rebasing: staging[(n * sourceWidth)..<(n * (sourceWidth + targetWidth))])
                try file.read(stored, range: (element * sourceWidth)..<((element + n) * sourceWidth), into: source)
                DTypeConversion.convert(
                    UnsafeRawBufferPointer(source), from: stored.dtype, into: converted, to: parameter.dtype)
                try out.write(UnsafeRawBufferPointer(converted))
                element += n
            }
        }
    }

    /// Writes a missing parameter's initial values (as a fresh model has them) chunk by chunk into `<name>.dat`.
    mutating func writeInitialized(
        _ parameter: LoadPlan.Parameter, plan: LoadPlan, staging: UnsafeMutableRawBufferPointer
    ) throws -> Tensor {
        let spec = TensorSpec(name: parameter.name, dtype: parameter.dtype, shape: parameter.shape)
        let source = SyntheticSource(
            parameters: plan.parameters.map {
                ParameterSpec(name: $0.name, shape: $0.shape, initialization: $0.initialization)
            },
            initializerRange: plan.architecture.initializerRange, dtype: parameter.dtype, seed: ModelInitializer.seed)
        let width = parameter.dtype.byteWidth ?? 1
        let total = parameter.byteCount
        let chunk = max(width, staging.count - staging.count % width)
        return try write(parameter) { out in
            var offset = 0
            while offset < total {
                let n = min(chunk, total - offset)
                let destination = UnsafeMutableRawBufferPointer(rebasing: staging[0..<n])
                if parameter.dtype.isConvertible {
                    try source.fill(spec, byteOffset: offset, into: destination)
                } else {
                    destination.initializeMemory(as: UInt8.self, repeating: 0)
                }
                try out.write(UnsafeRawBufferPointer(destination))
                offset += n
            }
        }
    }

    /// Writes `<name>.dat` atomically with `body`, records its index entry and maps it back (device disk).
    private mutating func write(_ parameter: LoadPlan.Parameter, _ body: (AtomicFile) throws -> Void) throws -> Tensor {
        let path = try datPath(parameter.name)
        let file = try AtomicFile(path: path)
        try body(file)
        try file.commit(sync: false)
        index[parameter.name] = .object([
            "dtype": .string(parameter.dtype.torchName), "shape": .array(parameter.shape.map { JSONValue($0) }),
        ])
        writtenFiles.append((parameter.name + ".dat", parameter.byteCount))
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw FileIOError(path: path, operation: "open", reason: String(cString: strerror(errno)))
        }
        defer { close(descriptor) }
        let storage = try TensorStorage.mapFile(
            descriptor: descriptor, offset: 0, length: parameter.byteCount, device: .disk)
        return Tensor(dtype: parameter.dtype, shape: parameter.shape, storage: storage)
    }

    /// transformers' rule: a tied alias whose target is referenced in place gets the same entry (after the others).
    mutating func addTiedAliases(_ aliases: OrderedDictionary<String, String>) {
        var added = OrderedDictionary<String, JSONValue>()
        for (alias, target) in aliases where referenced.contains(target) && index[alias] == nil {
            added[alias] = index[target]
            referenced.insert(alias)
        }
        // The tensors by name (transformers builds its index from the sorted weight map), then the aliases.
        let sorted = index.sorted { $0.key.unicodeScalars.lexicographicallyPrecedes($1.key.unicodeScalars) }
        index = OrderedDictionary(uniqueKeysWithValues: sorted.map { ($0.key, $0.value) })
        for (alias, entry) in added { index[alias] = entry }
    }

    /// `index.json` as accelerate's `save_offload_index` writes it: `json.dump(index, indent=2)` (ASCII
    /// escapes, `": "`, no trailing newline).
    var indexBytes: [UInt8] { JSONWriter(indent: 2, sortKeys: false, escaping: .asciiOnly).bytes(.object(index)) }

    func writeIndex() throws {
        guard let folder else { return }
        try AtomicFile.write(
            indexBytes, to: (folder.hasSuffix("/") ? folder : folder + "/") + "index.json", sync: false)
    }

    /// Removes every `.dat` this writer wrote (a failed load leaves nothing in the offload folder).
    func removeWritten() {
        guard let folder else { return }
        for file in writtenFiles {
            try? FileManager.default.removeItem(atPath: (folder.hasSuffix("/") ? folder : folder + "/") + file.name)
        }
        if createdFolder { rmdir(folder) }  // only when empty: nothing of the user's is removed
    }

    var summary: OffloadSummary {
        OffloadSummary(
            folder: folder, indexWritten: folder != nil && !index.isEmpty,
            writtenFiles: writtenFiles.map { OffloadSummary.File(name: $0.name, bytes: $0.bytes) },
            referencedTensors: index.keys.filter { referenced.contains($0) }, referencedBytes: referencedBytes)
    }
}
