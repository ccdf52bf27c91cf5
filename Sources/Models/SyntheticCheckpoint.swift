import Checkpoint
import Dispatch
import Foundation
import OSLayer
import OrderedCollections
import StrictJSON
import TensorEngine

/// A Hugging Face–compatible checkpoint of a model with synthetic weights: the same file names, index,
/// tensor order and bytes-per-shard `save_pretrained` would write for that model, dtype and shard size.
///
/// Values are deterministic in (seed, tensor name, element index) alone, so any chunk of any tensor can be
/// produced independently, in parallel, and identically whatever the sharding. Weights are N(0, std²) with
/// std = `initializer_range` (embedding `padding_idx` row zeroed), RMSNorm weights 1.0 (0.0 for Gemma),
/// biases 0, as transformers initialises a fresh model.
package struct SyntheticCheckpoint: Sendable {
    /// The config key recording how a scaled checkpoint was made, so loaders can rebuild its shapes.
    package static let provenanceKey = "bigmodel_bench"

    /// How a checkpoint is made smaller than the model.
    package enum Scaling: String, Sendable, Codable, CaseIterable {
        /// Every tensor's first dimension × the scale (every name, the layer count and the shard count kept);
        /// the shapes are no real config's, so only this tool loads such a checkpoint (it reads the scale back
        /// from config.json).
        case rows
        /// The decoder layers × the scale (`num_hidden_layers`, at least 1), every width kept: a real, smaller
        /// model of the same family that any loader (transformers) can load from its config.json.
        case layers
    }

    package let config: ModelConfig
    /// The architecture at the generated scale.
    package let architecture: ModelArchitecture
    package let dtype: DType
    package let seed: UInt64
    package let scale: Double
    /// The shard size after scaling (`max_shard_size × scale`).
    package let maxShardSize: Int
    package let scaling: Scaling

    /// `maxShardSize` is the full-size limit; it is multiplied by `scale` like every tensor.
    package init(
        config: ModelConfig, dtype: DType, maxShardSize: Int, seed: UInt64, scale: Double, scaling: Scaling = .rows
    ) throws {
        guard scale > 0 && scale <= 1 && scale.isFinite else {
            throw UsageError("--scale \(scale) is outside (0, 1]")
        }
        guard dtype.isConvertible else {
            throw UsageError(
                "--dtype \(dtype.torchName) is not a floating dtype; use one of \(DType.convertibleTorchNames)")
        }
        let config = scaling == .layers && scale < 1 ? try Self.withFewerLayers(config, scale: scale) : config
        guard let architecture = try ModelArchitecture.fromConfig(config) else {
            throw ModelConfigError(
                path: config.path, field: "model_type",
                "'\(config.modelType ?? "(missing)")' is not an architecture this tool can generate; known: \(ModelArchitecture.knownModelTypes.joined(separator: ", "))"
            )
        }
        self.config = config
        self.scaling = scaling
        self.architecture = scaling == .rows ? architecture.scaled(by: scale) : architecture
        self.dtype = dtype
        self.seed = seed
        self.scale = scale
        self.maxShardSize = max(1, Int((Double(maxShardSize) * scale).rounded(.down)))
    }

    /// The shard plan: the model's stored parameters in registration order, split as `save_pretrained` splits.
    package var plan: ShardPlan {
        ShardPlan(
            tensors: architecture.tensorSpecs(dtype: dtype), maxShardSize: maxShardSize,
            totalParameters: architecture.parameterCount)
    }

    /// The config.json to write: the input config with its dtype set and, when scaled, a `bigmodel_bench`
    /// entry recording scale and seed (transformers keeps unknown config keys as attributes and ignores them).
    package func configBytes() -> [UInt8] {
        var object = config.fields
        Resharder.setDType(&object, to: dtype)
        if scale < 1 {
            object[Self.provenanceKey] = .object([
                "scale": JSONValue(scale), "seed": JSONValue(seed), "scaling": .string(scaling.rawValue),
            ])
        }
        return JSONWriter.pythonSorted.bytes(.object(object)) + [0x0A]
    }

    /// Writes the folder: shards, index (when more than one shard) and config.json.
    @discardableResult
    package func write(to folder: String, progress: (Int) -> Void = { _ in }, isCancelled: () -> Bool = { false })
        throws -> CheckpointWriter.Summary
    {
        let source = SyntheticSource(architecture: architecture, dtype: dtype, seed: seed)
        return try CheckpointWriter(plan: plan).write(
            to: folder, source: source, extraFiles: [("config.json", configBytes())], progress: progress,
            isCancelled: isCancelled)
    }

    /// Reads the row scale a checkpoint was generated at from its config (1 when not recorded, and for a
    /// checkpoint scaled by layers, whose config.json already describes its shapes).
    package static func recordedScale(in config: ModelConfig) -> Double {
        guard let provenance = config.fields[provenanceKey],
            provenance["scaling"]?.stringValue != Scaling.layers.rawValue,
            let scale = provenance["scale"]?.numberValue?.doubleValue, scale > 0, scale <= 1
        else { return 1 }
        return scale
    }

    /// The config with `num_hidden_layers` × `scale` (Python's round, at least 1).
    static func withFewerLayers(_ config: ModelConfig, scale: Double) throws -> ModelConfig {
        let layers = try config.positiveInt("num_hidden_layers")
        var fields = config.fields
        fields["num_hidden_layers"] = JSONValue(ModelArchitecture.scaledDimension(layers, by: scale))
        return ModelConfig(path: config.path, fields: fields)
    }
}

/// Produces the synthetic bytes of any chunk of any parameter.
package final class SyntheticSource: TensorByteSource, @unchecked Sendable {
    private let parameters: [String: ParameterSpec]
    private let dtype: DType
    private let seed: UInt64
    private let table: NormalTable
    private let threads: Int

    package convenience init(
        architecture: ModelArchitecture, dtype: DType, seed: UInt64,
        threads: Int = ProcessInfo.processInfo.activeProcessorCount
    ) {
        self.init(
            parameters: architecture.parameters, initializerRange: architecture.initializerRange, dtype: dtype,
            seed: seed, threads: threads)
    }

    /// A source for `parameters` (the standard deviation of `.normal` inits comes from `initializerRange`).
    package init(
        parameters: [ParameterSpec], initializerRange: Double, dtype: DType, seed: UInt64,
        threads: Int = ProcessInfo.processInfo.activeProcessorCount
    ) {
        self.parameters = Dictionary(parameters.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        self.dtype = dtype
        self.seed = seed
        self.table = NormalTable(std: initializerRange, dtype: dtype)
        self.threads = max(1, threads)
    }

    package func fill(_ tensor: TensorSpec, byteOffset: Int, into destination: UnsafeMutableRawBufferPointer) throws {
        guard let parameter = parameters[tensor.name], let width = tensor.dtype.byteWidth, tensor.dtype == dtype else {
            preconditionFailure("SyntheticSource cannot produce \(tensor.name) as \(tensor.dtype)")
        }
        precondition(byteOffset % width == 0 && destination.count % width == 0)
        let firstElement = byteOffset / width
        let count = destination.count / width
        switch parameter.initialization {
        case .zeros:
            destination.initializeMemory(as: UInt8.self, repeating: 0)
        case .constant(let value):
            fillConstant(value, width: width, into: destination)
        case .normal(_, let zeroRow):
            let tensorSeed = SyntheticSource.mix(seed ^ SyntheticSource.fnv1a(tensor.name))
            table.bytes.withUnsafeBytes { tableBytes in
                let shared = DisjointAccess((tableBytes, destination))
                parallelRanges(count: count, workers: threads, minimumPerWorker: 1 << 19) { range in
                    let (tableBytes, destination) = shared.value
                    SyntheticSource.fillNormal(
                        table: tableBytes, width: width, seed: tensorSeed,
                        firstElement: firstElement + range.lowerBound, count: range.count,
                        into: UnsafeMutableRawBufferPointer(
                            rebasing: destination[(range.lowerBound * width)..<(range.upperBound * width)]))
                }
            }
            let columns = tensor.shape.dropFirst().reduce(1, *)
            if let row = zeroRow, columns > 0 {
                let rowStart = row * columns
                let lo = max(rowStart, firstElement)
                let hi = min(rowStart + columns, firstElement + count)
                if lo < hi {
                    UnsafeMutableRawBufferPointer(
                        rebasing: destination[((lo - firstElement) * width)..<((hi - firstElement) * width)]
                    )
                    .initializeMemory(as: UInt8.self, repeating: 0)
                }
            }
        }
    }

    private func fillConstant(_ value: Double, width: Int, into destination: UnsafeMutableRawBufferPointer) {
        var element = [UInt8](repeating: 0, count: width)
        withUnsafeBytes(of: value) { source in
            element.withUnsafeMutableBytes {
                DTypeConversion.convert(source, from: .f64, into: $0, to: dtype, threads: 1)
            }
        }
        if element.allSatisfy({ $0 == 0 }) {
            destination.initializeMemory(as: UInt8.self, repeating: 0)
            return
        }
        var offset = 0
        while offset < destination.count {
            for (i, byte) in element.enumerated() { destination[offset + i] = byte }
            offset += width
        }
    }

    /// Element i takes bits 16·(i mod 4) … of `mix(seed + i/4)`: four values per 64-bit hash.
    private static func fillNormal(
        table: UnsafeRawBufferPointer, width: Int, seed: UInt64, firstElement: Int, count: Int,
        into destination: UnsafeMutableRawBufferPointer
    ) {
        switch width {
        case 2:
            emit(
                table.bindMemory(to: UInt16.self), destination.bindMemory(to: UInt16.self), seed: seed,
                firstElement: firstElement, count: count)
        case 4:
            emit(
                table.bindMemory(to: UInt32.self), destination.bindMemory(to: UInt32.self), seed: seed,
                firstElement: firstElement, count: count)
        default:
            emit(
                table.bindMemory(to: UInt64.self), destination.bindMemory(to: UInt64.self), seed: seed,
                firstElement: firstElement, count: count)
        }
    }

    /// The fill loop, specialised per element width (inlined at each concrete call above): an unaligned head,
    /// whole blocks of four values per hash, a tail.
    @inline(__always)
    private static func emit<T: FixedWidthInteger>(
        _ values: UnsafeBufferPointer<T>, _ out: UnsafeMutableBufferPointer<T>, seed: UInt64, firstElement: Int,
        count: Int
    ) {
        @inline(__always) func single(_ element: Int) -> T {
            let hash = mix(seed &+ UInt64(element >> 2)) >> UInt64(16 * (element & 3))
            return values[Int(truncatingIfNeeded: hash & 0xFFFF)]
        }
        var i = 0
        while i < count && (firstElement + i) & 3 != 0 {
            out[i] = single(firstElement + i)
            i += 1
        }
        var block = UInt64((firstElement + i) >> 2)
        while i + 4 <= count {
            let hash = mix(seed &+ block)
            out[i] = values[Int(truncatingIfNeeded: hash & 0xFFFF)]
            out[i + 1] = values[Int(truncatingIfNeeded: (hash >> 16) & 0xFFFF)]
            out[i + 2] = values[Int(truncatingIfNeeded: (hash >> 32) & 0xFFFF)]
            out[i + 3] = values[Int(truncatingIfNeeded: hash >> 48)]
            i += 4
            block &+= 1
        }
        while i < count {
            out[i] = single(firstElement + i)
            i += 1
        }
    }

    /// SplitMix64's finaliser: a bijective 64-bit mix, good enough that consecutive counters look independent.
    @inline(__always)
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// FNV-1a over the name's UTF-8: a stable per-tensor seed (Swift's `Hasher` is randomly seeded per process).
    static func fnv1a(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01B3
        }
        return hash
    }
}
