import Checkpoint
import Foundation
import OrderedCollections
import Synchronization
import TensorEngine

/// transformers 5's and `safe_open`'s way: every parameter stored in the target dtype becomes a read-only
/// view of the mapped shard file (a file window: no owned bytes, counted by the kernel as RssFile once its
/// pages are touched, and shared with every process mapping the same file); a parameter that needs converting
/// takes the dtype-direct path (owned, in the ledger, through the staging buffer); missing keys are
/// materialised. After the load every mapped page is read once, as a first forward pass would. The ledger
/// counts the owned bytes only: peak M_t − M_map + staging; the mapped M_map is reported beside it.
package struct MmapLoad: LoadStrategy {
    package var name: StrategyName { .mmap }
    package var formula: String { "M_t − M_map + staging" }

    package func predictedPeakBytes(_ f: MemoryFigures) -> Int { f.modelBytes - (f.mappedBytes ?? 0) + f.stagingBytes }

    package func load(_ plan: LoadPlan, ledger: MemoryLedger, phases: PhaseLog) throws -> LoadedModel {
        phases.begin("skeleton")
        var model = OrderedDictionary<String, Tensor>()
        for parameter in plan.parameters {
            model[parameter.name] = Tensor.meta(dtype: parameter.dtype, shape: parameter.shape)
        }
        let stagingBytes = plan.figures.stagingBytes
        let staging: TensorStorage? =
            stagingBytes > 0 ? try TensorStorage.allocate(byteCount: stagingBytes, ledger: ledger) : nil
        let files = plan.checkpoint.files
        for (fileIndex, file) in files.enumerated() {
            phases.begin("map shard \(fileIndex + 1)/\(files.count)")
            let parameters = plan.parameters.filter { $0.source?.fileIndex == fileIndex }.sorted {
                ($0.source?.tensor.begin ?? 0) < ($1.source?.tensor.begin ?? 0)
            }
            var converting: [ShardStream.Item] = []
            for parameter in parameters {
                guard let stored = parameter.source?.tensor else { continue }
                if stored.dtype == parameter.dtype {
                    model[parameter.name] = Tensor(
                        dtype: parameter.dtype, shape: parameter.shape, storage: try file.map(stored))
                } else if staging != nil {
                    let tensor = try Tensor.empty(dtype: parameter.dtype, shape: parameter.shape, ledger: ledger)
                    converting.append(ShardStream.Item(stored: stored, tensor: tensor))
                    model[parameter.name] = tensor
                }
            }
            try ShardStream.load(converting, from: file, staging: staging?.mutableBytes)
        }
        if !plan.missingKeys.isEmpty {
            phases.begin("materialize missing")
            let initializer = ModelInitializer(plan: plan, ledger: ledger)
            for parameter in plan.parameters where parameter.source == nil {
                model[parameter.name] = try initializer.materialize(parameter)
            }
        }
        tie(&model, plan)
        withExtendedLifetime(staging) {}
        phases.begin("touch")
        Self.touch(model.values)
        try Self.checkIntact(model, plan)
        phases.end()
        return LoadedModel(tensors: model)
    }

    /// Reads one byte of every page of every mapped tensor, so each page is faulted in from the page cache
    /// (or the disk) as a forward pass reading the weights would; in 64 MiB pieces, every core at once (a fault
    /// is per-core kernel work). (`madvise(MADV_POPULATE_READ)` was tried instead: slower here, 0.11 s against
    /// 0.085 s for 6.66 GB.)
    static func touch(_ tensors: some Sequence<Tensor>) {
        let piece = 64 << 20
        var pieces: [UnsafeRawBufferPointer] = []
        for tensor in tensors where tensor.storage.kind == .fileWindow {
            let bytes = tensor.storage.bytes
            for start in stride(from: 0, to: bytes.count, by: piece) {
                pieces.append(UnsafeRawBufferPointer(rebasing: bytes[start..<min(bytes.count, start + piece)]))
            }
        }
        let shared = DisjointAccess(pieces)
        let sums = Mutex<UInt8>(0)
        parallelRanges(count: pieces.count, workers: touchThreads, minimumPerWorker: 1) { range in
            var sum: UInt8 = 0
            for index in range {
                let bytes = shared.value[index]
                for offset in stride(from: 0, to: bytes.count, by: 4096) { sum &+= bytes[offset] }
            }
            sums.withLock { $0 &+= sum }
        }
        touchSink = sums.withLock { $0 }
    }

    /// After the touch: a mapped tensor whose file shrank read zeros where it faulted; refuse the load.
    static func checkIntact(_ model: OrderedDictionary<String, Tensor>, _ plan: LoadPlan) throws {
        for parameter in plan.parameters {
            guard let source = parameter.source, let tensor = model[parameter.name], tensor.storage.kind == .fileWindow
            else { continue }
            try plan.checkpoint.files[source.fileIndex].checkIntact(tensor.storage, of: source.tensor)
        }
    }

    static let touchThreads = ProcessInfo.processInfo.activeProcessorCount

    /// Where the touch's sum goes, so the reads are not optimised away.
    nonisolated(unsafe) static var touchSink: UInt8 = 0
}
