import Checkpoint
import Foundation
import OrderedCollections
import TensorEngine

/// One way of getting a checkpoint into a model, with the exact ledger peak it must reach.
///
/// Each strategy is one of the loading paths the Hugging Face documentation describes; `predictedPeakBytes`
/// is its memory claim as a formula over the plan's figures, and the ledger must reach exactly that peak —
/// any difference is a bug in the strategy (or the claim), never noise.
package protocol LoadStrategy: Sendable {
    var name: StrategyName { get }
    /// The formula, in the plan's symbols (M_t, M_ck, M_32, S, T_t, staging).
    var formula: String { get }
    func predictedPeakBytes(_ figures: MemoryFigures) -> Int
    func load(_ plan: LoadPlan, ledger: MemoryLedger, phases: PhaseLog) throws -> LoadedModel
}

/// The strategies by their command-line names.
package enum StrategyName: String, Sendable, CaseIterable, Codable, CustomStringConvertible {
    case naive
    case sharded
    case lowMemory = "low-memory"
    case dtypeDirect = "dtype-direct"
    case loadThenCast = "load-then-cast"
    case deviceMap = "device-map"
    case mmap

    package var strategy: any LoadStrategy {
        switch self {
        case .naive: return NaiveLoad()
        case .sharded: return ShardedLoad()
        case .lowMemory: return SkeletonLoad(name: .lowMemory)
        case .dtypeDirect: return SkeletonLoad(name: .dtypeDirect)
        case .loadThenCast: return LoadThenCast()
        case .deviceMap: return DeviceMapLoad()
        case .mmap: return MmapLoad()
        }
    }

    package static var names: String { allCases.map(\.rawValue).joined(separator: ", ") }

    package var description: String { rawValue }
}

// MARK: - Shared steps

/// Copies (same dtype) or converts a source tensor's bytes into a parameter.
let copyThreads = ProcessInfo.processInfo.activeProcessorCount

func copyOrConvert(_ source: UnsafeRawBufferPointer, from sourceDType: DType, into tensor: Tensor) {
    let destination = tensor.storage.mutableBytes
    if sourceDType == tensor.dtype {
        precondition(source.count == destination.count)
        // Large copies on every core: faulting the destination in and moving the bytes are both per-core work.
        let shared = DisjointAccess((source, destination))
        parallelRanges(count: source.count, workers: copyThreads, minimumPerWorker: 8 << 20) { range in
            let (source, destination) = shared.value
            guard let base = destination.baseAddress, let from = source.baseAddress else { return }
            (base + range.lowerBound).copyMemory(from: from + range.lowerBound, byteCount: range.count)
        }
    } else {
        DTypeConversion.convert(source, from: sourceDType, into: destination, to: tensor.dtype)
    }
}

/// Reads stored tensors whole into owned memory: a state dict, as `load_state_dict` builds one.
func readStateDict(_ locations: [Checkpoint.Location], from checkpoint: Checkpoint, ledger: MemoryLedger) throws
    -> [String: Tensor]
{
    var stateDict: [String: Tensor] = [:]
    // In file and data order: each file read front to back, as `load_file` does, as one stream of pieces
    // every core takes from (ShardStream).
    let byFile = Dictionary(grouping: locations, by: \.fileIndex)
    for fileIndex in byFile.keys.sorted() {
        var items: [ShardStream.Item] = []
        for location in (byFile[fileIndex] ?? []).sorted(by: { $0.tensor.begin < $1.tensor.begin }) {
            let stored = location.tensor
            let tensor = try Tensor.empty(dtype: stored.dtype, shape: stored.shape, ledger: ledger)
            items.append(ShardStream.Item(stored: stored, tensor: tensor))
            stateDict[stored.name] = tensor
        }
        try ShardStream.load(items, from: checkpoint.files[fileIndex], staging: nil)
    }
    return stateDict
}

/// A model whose every parameter is allocated and randomly initialised (missing keys included), tied weights
/// tied: the first step (phase `init`) of the naive and sharded paths, which build the model before loading.
func initializedModel(_ plan: LoadPlan, ledger: MemoryLedger, phases: PhaseLog) throws -> OrderedDictionary<
    String, Tensor
> {
    phases.begin("init")
    let initializer = ModelInitializer(plan: plan, ledger: ledger)
    var tensors = OrderedDictionary<String, Tensor>()
    for parameter in plan.parameters { tensors[parameter.name] = try initializer.materialize(parameter) }
    tie(&tensors, plan)
    return tensors
}

/// Adds each tied alias as a second name for its target's tensor (same storage, counted once).
func tie(_ tensors: inout OrderedDictionary<String, Tensor>, _ plan: LoadPlan) {
    for (alias, target) in plan.tiedAliases {
        if let tensor = tensors[target] { tensors[alias] = tensor }
    }
}

/// Copies each state-dict tensor the model wants into its parameter.
func copyStateDict(_ stateDict: [String: Tensor], into model: OrderedDictionary<String, Tensor>, _ plan: LoadPlan) {
    for parameter in plan.parameters {
        guard let source = parameter.source, let loaded = stateDict[source.tensor.name],
            let target = model[parameter.name]
        else { continue }
        copyOrConvert(loaded.storage.bytes, from: loaded.dtype, into: target)
    }
}

/// Does any loaded parameter need a conversion? (Names the copy phase honestly.)
func copyPhaseName(_ plan: LoadPlan, suffix: String = "") -> String {
    (plan.parameters.contains(where: \.needsConversion) ? "convert" : "copy") + suffix
}
