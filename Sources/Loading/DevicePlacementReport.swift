import OrderedCollections
import Placement
import Probes
import StrictJSON
import TensorEngine

/// What went to disk in a device-map load.
package struct OffloadSummary: Sendable, Equatable {
    package struct File: Sendable, Equatable {
        /// `<tensor name>.dat`.
        package let name: String
        package let bytes: Int
    }

    /// The offload folder, when one was given.
    package let folder: String?
    /// True when `index.json` was written.
    package let indexWritten: Bool
    /// `.dat` files written, in the order they were written.
    package let writtenFiles: [File]
    /// Tensors left in the checkpoint and referenced by the index (tied aliases included), in index order.
    package let referencedTensors: [String]
    /// Bytes of the referenced tensors (aliases not counted twice).
    package let referencedBytes: Int

    package var writtenBytes: Int { writtenFiles.reduce(0) { $0 + $1.bytes } }

    package var json: JSONValue {
        .object([
            "folder": folder.map { .string($0) } ?? .null,
            "index_written": .bool(indexWritten),
            "written_bytes": JSONValue(writtenBytes),
            "written_files": .array(
                writtenFiles.map { .object(["name": .string($0.name), "bytes": JSONValue($0.bytes)]) }),
            "referenced_bytes": JSONValue(referencedBytes),
            "referenced_tensors": .array(referencedTensors.map { .string($0) }),
        ])
    }
}

/// Per-device figures of a device-map load, as plain values for the harness and reports: for each device its
/// budget, the bytes placed there, the ledger's predicted and measured live and peak bytes, and for a simulated
/// accelerator its jemalloc arena's allocated bytes (`stats.arenas.<i>.small/large.allocated`) next to what
/// the allocations should take at jemalloc's size classes.
package struct DevicePlacementReport: Sendable, Equatable {
    package struct DeviceFigures: Sendable, Equatable {
        package let device: Device
        /// The user's `max_memory` budget; nil when none was given for the device.
        package let budgetBytes: Int?
        /// The budget placement used (after defaults and balancing); nil for disk and user maps.
        package let placementBudgetBytes: Int?
        /// A simulated accelerator's capacity (its ledger budget: past it, an allocation is out of memory).
        package let capacityBytes: Int?
        /// Parameter bytes placed on the device (on disk: kept in files).
        package let placedBytes: Int
        /// The loader's staging buffer, in host memory for the whole load (cpu only; 0 elsewhere).
        package let stagingBytes: Int
        /// The ledger peak the prediction says (placed bytes, plus staging on cpu; 0 on disk).
        package let predictedPeakBytes: Int
        package let ledgerLiveBytes: Int
        package let ledgerPeakBytes: Int
        /// The accelerator's jemalloc arena.
        package let arena: UInt32?
        /// jemalloc's allocated bytes in that arena when the report was made; nil when unreadable.
        package let arenaAllocatedBytes: Int?
        /// What the live allocations take at jemalloc size classes (`nallocx`): what the arena should show.
        package let arenaExpectedBytes: Int?

        /// The measured peak, staging included, is within the budget (the user's, else the capacity); true
        /// when there is none. accelerate's budgets govern the weights placed; on cpu the staging buffer comes on
        /// top (placement keeps the largest layer's room free on cpu, which covers it unless a model's largest
        /// layer is smaller than its largest tensor pair): `ledgerPeakBytes - stagingBytes` is the placed share.
        package var withinBudget: Bool {
            guard let limit = budgetBytes ?? capacityBytes else { return true }
            return ledgerPeakBytes <= limit
        }

        package var json: JSONValue {
            func optional(_ value: Int?) -> JSONValue { value.map { JSONValue($0) } ?? .null }
            return .object([
                "device": device.json,
                "budget_bytes": optional(budgetBytes),
                "placement_budget_bytes": optional(placementBudgetBytes),
                "capacity_bytes": optional(capacityBytes),
                "placed_bytes": JSONValue(placedBytes),
                "staging_bytes": JSONValue(stagingBytes),
                "predicted_peak_bytes": JSONValue(predictedPeakBytes),
                "ledger_live_bytes": JSONValue(ledgerLiveBytes),
                "ledger_peak_bytes": JSONValue(ledgerPeakBytes),
                "within_budget": .bool(withinBudget),
                "arena": arena.map { JSONValue(Int($0)) } ?? .null,
                "arena_allocated_bytes": optional(arenaAllocatedBytes),
                "arena_expected_bytes": optional(arenaExpectedBytes),
            ])
        }
    }

    /// `auto`, `balanced`, `sequential` or `map`.
    package let mode: String
    /// `hf_device_map`.
    package let deviceMap: OrderedDictionary<String, Device>
    /// In device order: accelerators, cpu, disk.
    package let devices: [DeviceFigures]
    /// Parameter bytes over all devices (tied weights once).
    package let modelBytes: Int
    package let stagingBytes: Int
    /// `Σ P_i + P_cpu + staging`: the predicted RAM-resident ledger peak.
    package let predictedRAMPeakBytes: Int
    /// The ledger's measured RAM-resident peak (accelerators and cpu).
    package let ledgerRAMPeakBytes: Int
    package let offload: OffloadSummary

    package func figures(for device: Device) -> DeviceFigures? { devices.first { $0.device == device } }

    /// The report of a load into `placement` just measured by `ledger`; arena statistics are read now.
    package init(
        placement: DevicePlacement, prediction: DeviceMapPrediction, ledger: MemoryLedger, pools: [AcceleratorPool],
        offload: OffloadSummary
    ) {
        let stats = JemallocStats()
        var devices = Set(placement.devices.map(\.device)).union(prediction.parameterBytes.keys).union(
            pools.map { .accelerator($0.index) })
        devices.insert(.cpu)
        self.devices = devices.sorted().map { device in
            let share = placement.share(of: device)
            var pool: AcceleratorPool?
            if case .accelerator(let index) = device { pool = pools.first { $0.index == index } }
            return DeviceFigures(
                device: device, budgetBytes: share?.budgetBytes, placementBudgetBytes: share?.placementBudgetBytes,
                capacityBytes: pool?.capacityBytes ?? share?.capacityBytes,
                placedBytes: prediction.parameterBytes[device] ?? 0,
                stagingBytes: device == .cpu ? prediction.stagingBytes : 0,
                predictedPeakBytes: prediction.peakBytes(on: device),
                ledgerLiveBytes: device == .disk ? 0 : ledger.liveBytes(on: device),
                ledgerPeakBytes: device == .disk ? 0 : ledger.peakBytes(on: device), arena: pool?.arena,
                arenaAllocatedBytes: pool.flatMap { stats?.arenaStats(arena: $0.arena).allocatedBytes },
                arenaExpectedBytes: pool?.allocatedSizeClassBytes)
        }
        mode = placement.mode
        deviceMap = placement.deviceMap
        modelBytes = prediction.parameterBytes.values.reduce(0, +)
        stagingBytes = prediction.stagingBytes
        predictedRAMPeakBytes = prediction.ramPeakBytes
        ledgerRAMPeakBytes = ledger.peakBytes
        self.offload = offload
    }

    package var json: JSONValue {
        .object([
            "mode": .string(mode),
            "device_map": .object(.init(uniqueKeysWithValues: deviceMap.map { ($0.key, $0.value.json) })),
            "model_bytes": JSONValue(modelBytes),
            "staging_bytes": JSONValue(stagingBytes),
            "predicted_ram_peak_bytes": JSONValue(predictedRAMPeakBytes),
            "ledger_ram_peak_bytes": JSONValue(ledgerRAMPeakBytes),
            "devices": .array(devices.map(\.json)),
            "offload": offload.json,
        ])
    }
}
