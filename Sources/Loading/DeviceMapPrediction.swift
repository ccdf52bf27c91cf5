import Checkpoint
import Models
import Placement
import TensorEngine

/// What loading into a placement costs, per device, before anything is loaded.
///
/// Every parameter is allocated once, on its device, at its final dtype, and read straight into place (the
/// low-memory path per device). So the ledger's peak is exact per device:
/// - an accelerator: exactly the parameter bytes placed on it (`P_i`);
/// - cpu: the parameter bytes placed there (`P_cpu`) plus the staging buffer, which lives in host memory for
///   the whole load when anything converts (bounded at `LoadPlan.stagingCap`);
/// - disk: nothing in RAM. A disk tensor whose stored bytes are already in the target dtype is referenced in
///   place in its safetensors file (nothing copied); any other (converted, or missing from the checkpoint and
///   initialised) is written to the offload folder as `<name>.dat` through the staging buffer.
/// The RAM total (accelerators are host memory here) is `Σ P_i + P_cpu + staging`.
///
/// Staging: the largest converted source tensor bound for RAM (capped, rounded down to 8 bytes as
/// `MemoryFigures.stagingBytes`), or — for tensors written to disk, which need room for a source chunk and its
/// converted chunk side by side — the largest `source + target` bytes (capped), whichever is larger.
package struct DeviceMapPrediction: Sendable, Equatable {
    /// One parameter as the prediction sees it.
    package struct Parameter: Sendable, Equatable {
        package let name: String
        /// Bytes at the loaded dtype.
        package let byteCount: Int
        /// The dtype the model holds it in.
        package let dtype: DType
        /// The stored tensor's dtype and bytes; nil when the checkpoint lacks it (initialised instead).
        package let storedDType: DType?
        package let storedByteCount: Int?

        package init(name: String, byteCount: Int, dtype: DType, storedDType: DType?, storedByteCount: Int?) {
            self.name = name
            self.byteCount = byteCount
            self.dtype = dtype
            self.storedDType = storedDType
            self.storedByteCount = storedByteCount
        }

        package var converts: Bool { storedDType.map { $0 != dtype } ?? false }
    }

    /// How a disk-placed parameter reaches the disk.
    package enum Offload: String, Sendable, Equatable {
        /// Stored in the target dtype: the index points into the checkpoint's safetensors file.
        case referenced
        /// Converted (or initialised) and written as `<offload_folder>/<name>.dat`.
        case written
    }

    /// The device of every parameter (tied aliases excluded: they share their target's storage), in model order.
    package let devices: [(name: String, device: Device)]
    /// Parameter bytes per device (disk included).
    package let parameterBytes: [Device: Int]
    package let stagingBytes: Int
    /// Disk parameters and how each gets there, in model order.
    package let offloads: [(name: String, offload: Offload)]
    /// Bytes written to the offload folder (`.dat` files).
    package let writtenBytes: Int
    /// Bytes left in the checkpoint and referenced by the offload index.
    package let referencedBytes: Int

    package static let formula = "Σ P_accelerator + P_cpu + staging (P_disk stays on disk)"

    /// Predicts a load of `parameters` into `placement`. Throws when the placement leaves a parameter without a
    /// device (a validated placement never does).
    package init(placement: DevicePlacement, parameters: [Parameter], stagingCap: Int = LoadPlan.stagingCap)
        throws(LoadError)
    {
        var devices: [(name: String, device: Device)] = []
        var bytes: [Device: Int] = [:]
        var offloads: [(name: String, offload: Offload)] = []
        var written = 0
        var referenced = 0
        var largestRAMSource = 0
        var largestDiskNeed = 0
        for parameter in parameters {
            guard let device = placement.device(of: parameter.name) else {
                throw LoadError(
                    .unplacedParameter, source: "device map",
                    "parameter '\(parameter.name)' has no device in the placement")
            }
            devices.append((parameter.name, device))
            bytes[device, default: 0] += parameter.byteCount
            if device == .disk {
                if let stored = parameter.storedByteCount, !parameter.converts {
                    offloads.append((parameter.name, .referenced))
                    referenced += stored
                } else {
                    offloads.append((parameter.name, .written))
                    written += parameter.byteCount
                    largestDiskNeed = max(
                        largestDiskNeed, (parameter.converts ? parameter.storedByteCount ?? 0 : 0) + parameter.byteCount
                    )
                }
            } else if parameter.converts {
                largestRAMSource = max(largestRAMSource, parameter.storedByteCount ?? 0)
            }
        }
        var ramStaging = min(largestRAMSource, stagingCap)
        if ramStaging >= 8 { ramStaging -= ramStaging % 8 }
        self.devices = devices
        self.parameterBytes = bytes
        self.stagingBytes = max(ramStaging, min(largestDiskNeed, stagingCap))
        self.offloads = offloads
        self.writtenBytes = written
        self.referencedBytes = referenced
    }

    /// The prediction for a planned load (a real checkpoint).
    package init(plan: LoadPlan, placement: DevicePlacement) throws(LoadError) {
        try self.init(
            placement: placement,
            parameters: plan.parameters.map {
                Parameter(
                    name: $0.name, byteCount: $0.byteCount, dtype: $0.dtype, storedDType: $0.source?.tensor.dtype,
                    storedByteCount: $0.source?.tensor.byteCount)
            })
    }

    /// The prediction for the checkpoint `save_pretrained` would write for `architecture` in `storedDType`,
    /// loaded at `target` (no files needed: for predicting full-size runs).
    package init(placement: DevicePlacement, architecture: ModelArchitecture, storedDType: DType, target: DType)
        throws(LoadError)
    {
        try self.init(
            placement: placement,
            parameters: architecture.parameters.map {
                Parameter(
                    name: $0.name, byteCount: Tensor.byteCount(dtype: target, shape: $0.shape), dtype: target,
                    storedDType: storedDType,
                    storedByteCount: Tensor.byteCount(dtype: storedDType, shape: $0.shape))
            })
    }

    /// The ledger's predicted peak on `device`: its parameter bytes, plus staging on cpu; 0 on disk.
    package func peakBytes(on device: Device) -> Int {
        switch device {
        case .disk: return 0
        case .cpu: return (parameterBytes[.cpu] ?? 0) + stagingBytes
        case .accelerator: return parameterBytes[device] ?? 0
        }
    }

    /// The ledger's predicted RAM peak (accelerators are pools in host memory): `Σ P_i + P_cpu + staging`.
    package var ramPeakBytes: Int {
        parameterBytes.filter { $0.key != .disk }.values.reduce(0, +) + stagingBytes
    }

    /// True when something must be written to an offload folder.
    package var needsOffloadFolder: Bool { offloads.contains { $0.offload == .written } }

    package static func == (lhs: DeviceMapPrediction, rhs: DeviceMapPrediction) -> Bool {
        lhs.devices.elementsEqual(rhs.devices) { $0.name == $1.name && $0.device == $1.device }
            && lhs.parameterBytes == rhs.parameterBytes
            && lhs.stagingBytes == rhs.stagingBytes
            && lhs.offloads.elementsEqual(rhs.offloads) { $0.name == $1.name && $0.offload == $1.offload }
            && lhs.writtenBytes == rhs.writtenBytes && lhs.referencedBytes == rhs.referencedBytes
    }
}
