import Loading
import TensorEngine

/// Where a device-map run put the model and what each device held, as the results file records it.
package struct DeviceUsage: Codable, Sendable, Equatable {
    package struct DeviceFigures: Codable, Sendable, Equatable {
        /// accelerate's spelling in JSON: "0", "1", …, "cpu", "disk".
        package var device: Device
        /// The user's `max_memory` for it (after percentages were resolved), when given.
        package var budgetBytes: Int?
        /// The budget the placement actually used (after balancing).
        package var placementBudgetBytes: Int?
        /// A simulated accelerator's hard capacity (allocations past it fail like a GPU OOM).
        package var capacityBytes: Int?
        /// Parameter bytes placed there.
        package var placedBytes: Int
        /// The conversion staging buffer (cpu only).
        package var stagingBytes: Int
        /// placed + staging for RAM devices; what the ledger must reach there exactly.
        package var predictedPeakBytes: Int
        /// The ledger's peak on this device (0 for disk: disk bytes are not RAM).
        package var ledgerPeakBytes: Int
        /// jemalloc `stats.arenas.<i>.{small,large}.allocated` of the accelerator's own arena at the end of the
        /// load, and what the placed tensors take at jemalloc size classes.
        package var arenaAllocatedBytes: Int?
        package var arenaExpectedBytes: Int?

        package init(
            device: Device,
            budgetBytes: Int? = nil,
            placementBudgetBytes: Int? = nil,
            capacityBytes: Int? = nil,
            placedBytes: Int,
            stagingBytes: Int,
            predictedPeakBytes: Int,
            ledgerPeakBytes: Int,
            arenaAllocatedBytes: Int? = nil,
            arenaExpectedBytes: Int? = nil
        ) {
            self.device = device
            self.budgetBytes = budgetBytes
            self.placementBudgetBytes = placementBudgetBytes
            self.capacityBytes = capacityBytes
            self.placedBytes = placedBytes
            self.stagingBytes = stagingBytes
            self.predictedPeakBytes = predictedPeakBytes
            self.ledgerPeakBytes = ledgerPeakBytes
            self.arenaAllocatedBytes = arenaAllocatedBytes
            self.arenaExpectedBytes = arenaExpectedBytes
        }
    }

    package struct MapEntry: Codable, Sendable, Equatable {
        package var module: String
        package var device: Device

        package init(
            module: String,
            device: Device
        ) {
            self.module = module
            self.device = device
        }
    }

    /// `auto`, `balanced`, `sequential` or `map`.
    package var mode: String
    /// The `hf_device_map`, in module order.
    package var deviceMap: [MapEntry]
    package var devices: [DeviceFigures]
    /// Parameter bytes over all devices.
    package var modelBytes: Int
    package var offloadFolder: String?
    /// Tensors written as `<name>.dat` into the offload folder, and their bytes.
    package var offloadWrittenFiles: Int
    package var offloadWrittenBytes: Int
    /// Tensors referenced in place in the checkpoint's safetensors files (nothing copied), and their bytes.
    package var offloadReferencedTensors: Int
    package var offloadReferencedBytes: Int

    package init(_ report: DevicePlacementReport) {
        mode = report.mode
        deviceMap = report.deviceMap.map { MapEntry(module: $0.key, device: $0.value) }
        devices = report.devices.map { d in
            DeviceFigures(
                device: d.device, budgetBytes: d.budgetBytes, placementBudgetBytes: d.placementBudgetBytes,
                capacityBytes: d.capacityBytes,
                placedBytes: d.placedBytes, stagingBytes: d.stagingBytes, predictedPeakBytes: d.predictedPeakBytes,
                ledgerPeakBytes: d.ledgerPeakBytes,
                arenaAllocatedBytes: d.arenaAllocatedBytes, arenaExpectedBytes: d.arenaExpectedBytes)
        }
        modelBytes = report.modelBytes
        offloadFolder = report.offload.folder
        offloadWrittenFiles = report.offload.writtenFiles.count
        offloadWrittenBytes = report.offload.writtenBytes
        offloadReferencedTensors = report.offload.referencedTensors.count
        offloadReferencedBytes = report.offload.referencedBytes
    }

    package func figures(_ device: Device) -> DeviceFigures? { devices.first { $0.device == device } }
}
