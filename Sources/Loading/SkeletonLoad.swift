import Checkpoint
import Foundation
import OrderedCollections
import Synchronization
import TensorEngine

/// The low-memory path (`low_cpu_mem_usage=True`, a meta-device skeleton) and its dtype-direct variant
/// (`torch_dtype=float16`): no parameter exists until its turn; then it is allocated at its final dtype and
/// read straight into place with `pread`. Weights that are loaded are never initialised. A tensor stored in
/// another dtype streams through one bounded staging buffer. Peak M_t (+ staging when anything converts).
///
/// The two names share this implementation: `dtype-direct` is the same path with an explicit target dtype.
public struct SkeletonLoad: LoadStrategy {
    public let name: StrategyName
    public var formula: String { "M_t + staging" }

    public init(name: StrategyName) {
        self.name = name
    }

    public func predictedPeakBytes(_ f: MemoryFigures) -> Int { f.modelBytes + f.stagingBytes }

    public func load(_ plan: LoadPlan, ledger: MemoryLedger, phases: PhaseLog) throws -> LoadedModel {
        phases.begin("skeleton")
        // The meta model: shapes and dtypes, no bytes.
        var model = OrderedDictionary<String, Tensor>()
        for parameter in plan.parameters { model[parameter.name] = Tensor.meta(dtype: parameter.dtype, shape: parameter.shape) }
        let stagingBytes = plan.figures.stagingBytes
        let staging: TensorStorage? = stagingBytes > 0 ? try TensorStorage.allocate(byteCount: stagingBytes, ledger: ledger) : nil

        let checkpoint = plan.checkpoint
        let byFile = Dictionary(grouping: plan.parameters.filter { $0.source != nil }) { $0.source?.fileIndex ?? -1 }
        for fileIndex in 0..<checkpoint.files.count {
            phases.begin("load shard \(fileIndex + 1)/\(checkpoint.files.count)")
            let file = checkpoint.files[fileIndex]
            // Data order within the file: sequential reads.
            let parameters = (byFile[fileIndex] ?? []).sorted { ($0.source?.tensor.begin ?? 0) < ($1.source?.tensor.begin ?? 0) }
            for parameter in parameters {
                guard let stored = parameter.source?.tensor else { continue }
                let tensor = try Tensor.empty(dtype: parameter.dtype, shape: parameter.shape, ledger: ledger)
                if stored.dtype == parameter.dtype {
                    try file.read(stored, into: tensor.storage.mutableBytes)
                } else if let staging {
                    try Self.streamConvert(stored, from: file, through: staging.mutableBytes, into: tensor)
                }
                model[parameter.name] = tensor
            }
        }
        if !plan.missingKeys.isEmpty {
            phases.begin("materialize missing")
            let initializer = ModelInitializer(plan: plan, ledger: ledger)
            for parameter in plan.parameters where parameter.source == nil {
                model[parameter.name] = try initializer.materialize(parameter)
            }
        }
        tie(&model, plan)
        phases.end()
        withExtendedLifetime(staging) {}
        return LoadedModel(tensors: model)
    }

    /// Reads `stored` chunk by chunk into `staging` and converts each chunk into its place in `tensor`. Every
    /// core takes a contiguous share of the elements and its own slice of the staging buffer (so the staging
    /// bytes, and the ledger's figure, stay what they were), reading and converting its share in turn: one
    /// core's `pread` overlaps the other's conversion.
    static func streamConvert(_ stored: StoredTensor, from file: SafetensorsFile, through staging: UnsafeMutableRawBufferPointer, into tensor: Tensor) throws {
        guard let sourceWidth = stored.dtype.byteWidth, let targetWidth = tensor.dtype.byteWidth else {
            preconditionFailure("sub-byte dtypes never convert")
        }
        let count = stored.byteCount / sourceWidth
        let workers = max(1, min(streamWorkers, staging.count / (sourceWidth * minimumSliceElements), count / minimumSliceElements))
        let slice = staging.count / workers / sourceWidth * sourceWidth
        let failure = Mutex<(any Error)?>(nil)
        let shared = DisjointAccess((staging, tensor.storage.mutableBytes))
        parallelRanges(count: count, workers: workers, minimumPerWorker: 1) { range in
            let (staging, destination) = shared.value
            let part = range.lowerBound / max(1, (count + workers - 1) / workers)
            let own = UnsafeMutableRawBufferPointer(rebasing: staging[(part * slice)..<((part + 1) * slice)])
            do {
                try convertRange(range, of: stored, from: file, through: own, into: destination, to: tensor.dtype, widths: (sourceWidth, targetWidth))
            } catch {
                failure.withLock { if $0 == nil { $0 = error } }
            }
        }
        if let error = failure.withLock({ $0 }) { throw error }
    }

    static let streamWorkers = ProcessInfo.processInfo.activeProcessorCount
    /// A worker's share is at least 256 Ki elements: below that the threads cost more than they save.
    static let minimumSliceElements = 1 << 18

    /// One worker's loop: its `range` of elements through its own `staging` slice.
    static func convertRange(
        _ range: Range<Int>, of stored: StoredTensor, from file: SafetensorsFile, through staging: UnsafeMutableRawBufferPointer,
        into destination: UnsafeMutableRawBufferPointer, to dtype: DType, widths: (source: Int, target: Int)
    ) throws {
        let perChunk = max(1, staging.count / widths.source)
        var element = range.lowerBound
        while element < range.upperBound {
            let n = min(perChunk, range.upperBound - element)
            let chunk = UnsafeMutableRawBufferPointer(rebasing: staging[0..<(n * widths.source)])
            try file.read(stored, range: (element * widths.source)..<((element + n) * widths.source), into: chunk, parallel: false)
            DTypeConversion.convert(
                UnsafeRawBufferPointer(chunk), from: stored.dtype,
                into: UnsafeMutableRawBufferPointer(rebasing: destination[(element * widths.target)..<((element + n) * widths.target)]), to: dtype,
                threads: 1)
            element += n
        }
    }
}
