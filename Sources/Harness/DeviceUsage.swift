import Loading
import TensorEngine

/// Where a device-map run put the model and what each device held, as the results file records it.
public struct DeviceUsage: Codable, Sendable, Equatable {
    public struct DeviceFigures: Codable, Sendable, Equatable {
        /// accelerate's spelling in JSON: "0", "1", …, "cpu", "disk".
        public var device: Device
        /// The user's `max_memory` for it (after percentages were resolved), when given.
        public var budgetBytes: Int?
        /// The budget the placement actually used (after balancing).
        public var placementBudgetBytes: Int?
        /// A simulated accelerator's hard capacity (allocations past it fail like a GPU OOM).
        public var capacityBytes: Int?
        /// Parameter bytes placed there.
        public var placedBytes: Int
        /// The conversion staging buffer (cpu only).
        public var stagingBytes: Int
        /// placed + staging for RAM devices; what the ledger must reach there exactly.
        public var predictedPeakBytes: Int
        /// The ledger's peak on this device (0 for disk: disk bytes are not RAM).
        public var ledgerPeakBytes: Int
        /// jemalloc `stats.arenas.<i>.{small,large}.allocated` of the accelerator's own arena at the end of the
        /// load, and what the placed tensors take at jemalloc size classes.
        public var arenaAllocatedBytes: Int?
        public var arenaExpectedBytes: Int?
    }

    public struct MapEntry: Codable, Sendable, Equatable {
        public var module: String
        public var device: Device
    }

    /// `auto`, `balanced`, `sequential` or `map`.
    public var mode: String
    /// The `hf_device_map`, in module order.
    public var deviceMap: [MapEntry]
    public var devices: [DeviceFigures]
    /// Parameter bytes over all devices.
    public var modelBytes: Int
    public var offloadFolder: String?
    /// Tensors written as `<name>.dat` into the offload folder, and their bytes.
    public var offloadWrittenFiles: Int
    public var offloadWrittenBytes: Int
    /// Tensors referenced in place in the checkpoint's safetensors files (nothing copied), and their bytes.
    public var offloadReferencedTensors: Int
    public var offloadReferencedBytes: Int

    public init(_ report: DevicePlacementReport) {
        mode = report.mode
        deviceMap = report.deviceMap.map { MapEntry(module: $0.key, device: $0.value) }
        devices = report.devices.map { d in
            DeviceFigures(
                device: d.device, budgetBytes: d.budgetBytes, placementBudgetBytes: d.placementBudgetBytes, capacityBytes: d.capacityBytes,
                placedBytes: d.placedBytes, stagingBytes: d.stagingBytes, predictedPeakBytes: d.predictedPeakBytes, ledgerPeakBytes: d.ledgerPeakBytes,
                arenaAllocatedBytes: d.arenaAllocatedBytes, arenaExpectedBytes: d.arenaExpectedBytes)
        }
        modelBytes = report.modelBytes
        offloadFolder = report.offload.folder
        offloadWrittenFiles = report.offload.writtenFiles.count
        offloadWrittenBytes = report.offload.writtenBytes
        offloadReferencedTensors = report.offload.referencedTensors.count
        offloadReferencedBytes = report.offload.referencedBytes
    }

    public func figures(_ device: Device) -> DeviceFigures? { devices.first { $0.device == device } }
}
