import Checkpoint
import Models
import TensorEngine

/// The sizes every strategy's predicted peak is made of, computable without opening a checkpoint (from a
/// model and a shard plan) so that a scenario can predict full-size peaks it will never run.
///
/// Symbols: M_t model bytes at the target dtype, M_ck checkpoint tensor bytes, M_32 model bytes in float32,
/// S the largest shard's tensor bytes, T_t the largest parameter at the target dtype, staging the conversion
/// buffer of the skeleton paths.
package struct MemoryFigures: Sendable, Equatable, Codable {
    package var modelBytes: Int
    package var checkpointBytes: Int
    package var model32Bytes: Int
    package var largestShardBytes: Int
    package var largestTensorBytes: Int
    package var stagingBytes: Int
    /// The load-then-cast peak simulated over its cast order (M_32 + T_t for targets narrower than float32).
    package var loadThenCastPeakBytes: Int
    /// M_map: bytes of the parameters stored in the target dtype, which the mmap strategy maps instead of
    /// owning (absent in version-1 results).
    package var mappedBytes: Int?

    /// One parameter as the figures see it.
    package struct Parameter: Sendable {
        /// Bytes at the loaded dtype.
        package let byteCount: Int
        /// Bytes at float32 (for floating parameters), else as loaded.
        package let float32ByteCount: Int
        /// True when the cast step of load-then-cast converts it (floating, target ≠ float32).
        package let isCast: Bool
        /// Bytes of the stored tensor when loading converts it, else nil.
        package let convertedSourceBytes: Int?
        /// True when the checkpoint stores it in the target dtype, so the mmap strategy can map it.
        package let isMappable: Bool

        package init(
            byteCount: Int, float32ByteCount: Int, isCast: Bool, convertedSourceBytes: Int?, isMappable: Bool = false
        ) {
            self.byteCount = byteCount
            self.float32ByteCount = float32ByteCount
            self.isCast = isCast
            self.convertedSourceBytes = convertedSourceBytes
            self.isMappable = isMappable
        }
    }

    package init(
        parameters: [Parameter], checkpointBytes: Int, largestShardBytes: Int, stagingCap: Int = LoadPlan.stagingCap
    ) {
        modelBytes = parameters.reduce(0) { $0 + $1.byteCount }
        model32Bytes = parameters.reduce(0) { $0 + $1.float32ByteCount }
        self.checkpointBytes = checkpointBytes
        self.largestShardBytes = largestShardBytes
        largestTensorBytes = parameters.map(\.byteCount).max() ?? 0
        mappedBytes = parameters.filter(\.isMappable).reduce(0) { $0 + $1.byteCount }
        if let largest = parameters.compactMap(\.convertedSourceBytes).max() {
            let capped = min(largest, stagingCap)
            stagingBytes = capped >= 8 ? capped - capped % 8 : capped
        } else {
            stagingBytes = 0
        }
        // The cast goes largest first; see LoadThenCast.
        var live = model32Bytes
        var peak = live
        for parameter in parameters.filter(\.isCast).sorted(by: { $0.byteCount > $1.byteCount }) {
            live += parameter.byteCount
            peak = max(peak, live)
            live -= parameter.float32ByteCount
        }
        loadThenCastPeakBytes = peak
    }

    /// The figures of a load plan (a real checkpoint on disk).
    package init(plan: LoadPlan) {
        self.init(
            parameters: plan.parameters.map { p in
                Parameter(
                    byteCount: p.byteCount, float32ByteCount: p.float32ByteCount,
                    isCast: p.dtype.isConvertible && p.dtype != .f32,
                    convertedSourceBytes: p.needsConversion ? p.source?.tensor.byteCount : nil,
                    isMappable: p.source != nil && !p.needsConversion)
            },
            checkpointBytes: plan.checkpointBytes, largestShardBytes: plan.largestShardBytes)
    }

    /// The figures of loading a checkpoint that `save_pretrained` would write for `architecture` stored as
    /// `storedDType` with `shardPlan`, into `target`. Used to predict runs (full size, or before generating).
    package init(architecture: ModelArchitecture, storedDType: DType, shardPlan: ShardPlan, target: DType) {
        let parameters = architecture.parameters.map { p -> Parameter in
            let bytes = Tensor.byteCount(dtype: target, shape: p.shape)
            return Parameter(
                byteCount: bytes, float32ByteCount: Tensor.byteCount(dtype: .f32, shape: p.shape),
                isCast: target != .f32,
                convertedSourceBytes: storedDType == target
                    ? nil : Tensor.byteCount(dtype: storedDType, shape: p.shape), isMappable: storedDType == target)
        }
        self.init(
            parameters: parameters, checkpointBytes: shardPlan.totalSize, largestShardBytes: shardPlan.largestShardBytes
        )
    }
}
