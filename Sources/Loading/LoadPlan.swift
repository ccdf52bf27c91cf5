import Checkpoint
import Models
import OrderedCollections
import TensorEngine

/// How a load's target dtype was chosen, as transformers resolves `torch_dtype="auto"`.
package enum DTypeSource: String, Sendable, Codable, CustomStringConvertible {
    /// Given explicitly (`--dtype`, a run's `dtype`).
    case requested
    /// config.json's `dtype` / `torch_dtype`.
    case config
    /// The first floating-point tensor of the checkpoint.
    case firstFloatingTensor = "first floating tensor"

    package var description: String { rawValue }
}

/// Everything a load needs to know before it touches a tensor byte: the model's parameters at their final
/// dtypes, which checkpoint tensor feeds each, the keys that do not match, and the figures every strategy's
/// predicted peak is made of. Built from config.json and the safetensors headers only.
package struct LoadPlan: Sendable {
    /// One model parameter (tied aliases excluded: they share their target's storage).
    package struct Parameter: Sendable {
        package let name: String
        package let shape: [Int]
        /// The dtype the loaded model holds it in.
        package let dtype: DType
        package let initialization: ParameterInit
        /// Where its bytes come from; nil for a missing key (materialised and initialised instead).
        package let source: Checkpoint.Location?

        package var byteCount: Int { Tensor.byteCount(dtype: dtype, shape: shape) }
        /// Bytes at float32 (floating parameters) or as is (others): its share of M_32.
        package var float32ByteCount: Int {
            dtype.isConvertible ? Tensor.byteCount(dtype: .f32, shape: shape) : byteCount
        }
        /// True when loading it needs a dtype conversion.
        package var needsConversion: Bool { source.map { $0.tensor.dtype != dtype } ?? false }
    }

    package let checkpoint: Checkpoint
    package let architecture: ModelArchitecture
    /// The resolved target dtype (floating).
    package let dtype: DType
    /// How `dtype` was chosen.
    package let dtypeSource: DTypeSource
    package let parameters: [Parameter]
    package let tiedAliases: OrderedDictionary<String, String>
    /// Model keys the checkpoint lacks (aliases excluded), in model order.
    package let missingKeys: [String]
    /// Checkpoint tensors the model does not have, in checkpoint order.
    package let unexpectedKeys: [String]

    /// The cap on the staging buffer `low-memory` / `dtype-direct` convert through.
    package static let stagingCap = 16 << 20

    /// Tensor bytes in the checkpoint (M_ck).
    package var checkpointBytes: Int { checkpoint.totalSize }
    /// Tensor bytes of the largest shard (S).
    package var largestShardBytes: Int { checkpoint.largestShardBytes }

    /// Plans loading `checkpoint` at `requested` (nil = `auto`).
    package init(checkpoint: Checkpoint, requested: DType?) throws {
        var architecture: ModelArchitecture?
        var configDType: DType?
        if let configPath = checkpoint.configPath {
            let config = try ModelConfig.load(path: configPath)
            configDType = try config.dtype()
            architecture = try ModelArchitecture.fromConfig(config)?.scaled(
                by: SyntheticCheckpoint.recordedScale(in: config))
        }
        let model = architecture ?? ModelArchitecture.fromCheckpoint(checkpoint)

        // The target dtype, as transformers resolves `torch_dtype="auto"`.
        let dtype: DType
        let dtypeSource: DTypeSource
        if let requested {
            guard requested.isConvertible else {
                throw LoadError(
                    .invalidTargetDType, path: checkpoint.path,
                    "--dtype \(requested.torchName) is not a floating point dtype; use one of \(DType.convertibleTorchNames)"
                )
            }
            (dtype, dtypeSource) = (requested, .requested)
        } else if let configDType, configDType.isConvertible {
            (dtype, dtypeSource) = (configDType, .config)
        } else if let first = checkpoint.tensors.values.first(where: { $0.tensor.dtype.isConvertible }) {
            (dtype, dtypeSource) = (first.tensor.dtype, .firstFloatingTensor)
        } else {
            throw LoadError(
                .noDType, path: checkpoint.path,
                "no --dtype, no dtype in config.json and no floating tensor in the checkpoint")
        }

        var parameters: [Parameter] = []
        var missing: [String] = []
        for spec in model.parameters {
            let location = checkpoint.tensors[spec.name]
            if let location {
                guard location.tensor.shape == spec.shape else {
                    throw LoadError(
                        .shapeMismatch, path: checkpoint.file(of: location).path,
                        "tensor '\(spec.name)' has shape \(location.tensor.shape) but the model's parameter is \(spec.shape)"
                    )
                }
            } else {
                missing.append(spec.name)
            }
            // Integer, bool and exotic tensors keep their stored dtype (the fallback architecture has them);
            // the known architectures' parameters are all floating and take the target dtype.
            let stored = location?.tensor.dtype
            let parameterDType: DType
            if model.modelType == "checkpoint", let stored, !stored.isConvertible {
                parameterDType = stored
            } else {
                if let stored, !stored.isConvertible, let location {
                    throw LoadError(
                        .dtypeMismatch, path: checkpoint.file(of: location).path,
                        "tensor '\(spec.name)' is \(stored) but the model's parameter is floating (\(dtype.torchName)); only F16, BF16, F32 and F64 convert"
                    )
                }
                parameterDType = dtype
            }
            parameters.append(
                Parameter(
                    name: spec.name, shape: spec.shape, dtype: parameterDType, initialization: spec.initialization,
                    source: location))
        }
        let modelNames = Set(model.parameters.map(\.name)).union(model.tiedAliases.keys)
        self.checkpoint = checkpoint
        self.architecture = model
        self.dtype = dtype
        self.dtypeSource = dtypeSource
        self.parameters = parameters
        self.tiedAliases = model.tiedAliases
        self.missingKeys = missing
        self.unexpectedKeys = checkpoint.tensors.keys.filter { !modelNames.contains($0) }
    }

    /// Fails like `load_sharded_checkpoint(strict=True)`: before loading, listing both kinds of mismatch.
    package func checkStrict() throws {
        guard !missingKeys.isEmpty || !unexpectedKeys.isEmpty else { return }
        var parts: [String] = []
        if !missingKeys.isEmpty { parts.append("missing keys: \(missingKeys.joined(separator: ", "))") }
        if !unexpectedKeys.isEmpty { parts.append("unexpected keys: \(unexpectedKeys.joined(separator: ", "))") }
        throw LoadError(.keyMismatch, path: checkpoint.path, "--strict: " + parts.joined(separator: "; "))
    }

    /// The sizes the strategies' predictions are made of.
    package var figures: MemoryFigures { MemoryFigures(plan: self) }
}
