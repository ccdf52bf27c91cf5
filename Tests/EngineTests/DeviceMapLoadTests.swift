import CJemalloc
import Foundation
import OrderedCollections
import TestSupport
import Testing

@testable import Checkpoint
@testable import Loading
@testable import Models
@testable import Placement
@testable import StrictJSON
@testable import TensorEngine

/// End-to-end device-map loads of small generated checkpoints: per-device ledger peaks exact, accelerator
/// pools in their own jemalloc arenas within their capacity, the offload folder exact, the loaded bytes the
/// same as a low-memory load's.
@Suite("Device map: loading into a placement")
struct DeviceMapLoadTests {
    /// A synthetic checkpoint of one of the device-map fixture configs, written to a fresh folder.
    static func checkpoint(_ model: String, dtype: DType, maxShardSize: Int = 2_000_000) throws -> TemporaryFolder {
        let folder = try TemporaryFolder("devmap-\(model)")
        let config = try ModelConfig.load(path: FixturePaths.path("device-maps/\(model)/config.json"))
        try SyntheticCheckpoint(config: config, dtype: dtype, maxShardSize: maxShardSize, seed: 7, scale: 1).write(
            to: folder.path)
        return folder
    }

    /// The low-memory load's digests of the same checkpoint at the same dtype: what every device must hold.
    static func lowMemoryDigests(_ plan: LoadPlan) throws -> [String: String] {
        let ledger = MemoryLedger()
        let model = try SkeletonLoad(name: .dtypeDirect).load(plan, ledger: ledger, phases: PhaseLog(ledger: ledger))
        return Dictionary(uniqueKeysWithValues: model.digests().map { ($0.name, $0.sha256) })
    }

    /// Python's `json.dump(index, indent=2)` of `{name: {"dtype": …, "shape": […]}}`, written out by hand.
    static func datIndexText(_ entries: [(name: String, dtype: String, shape: [Int])]) -> String {
        let items = entries.map { entry in
            "  \"\(entry.name)\": {\n    \"dtype\": \"\(entry.dtype)\",\n    \"shape\": [\n"
                + entry.shape.map { "      \($0)" }.joined(separator: ",\n") + "\n    ]\n  }"
        }
        return "{\n" + items.joined(separator: ",\n") + "\n}"
    }

    // llama-deep (hidden 128, 4 heads of 32, 2 kv heads, MLP 384, vocab 512, 12 layers) in elements.
    static let layerElements = 128 * 128 + 64 * 128 + 64 * 128 + 128 * 128 + 3 * 384 * 128 + 2 * 128  // 196,864
    static let embedElements = 512 * 128

    /// Pinned accelerate case llama-deep float16 sequential {0: 2493600, cpu: 1496160}: embed and layers 0–4
    /// on accelerator 0, layers 5–6 on cpu, the rest on disk. Loaded from a float32 checkpoint, so every
    /// tensor converts and the disk ones are written as float16 .dat files.
    @Test func threeTiersFromFloat32ToFloat16() throws {
        let folder = try Self.checkpoint("llama-deep", dtype: .f32)
        defer { folder.remove() }
        let offload = try TemporaryFolder("devmap-offload")
        defer { offload.remove() }
        let plan = try LoadPlan(checkpoint: try Checkpoint(path: folder.path), requested: .f16)
        let request = PlacementRequest(
            deviceMap: .mode(.sequential), maxMemory: DeviceBudgets([.accelerator(0): 2_493_600, .cpu: 1_496_160]))
        let prepared = try DeviceMapLoad(request: request, offloadFolder: offload.path + "/weights").prepare(plan)
        let pinned = try #require(
            AccelerateCase.pinned.first {
                $0.model == "llama-deep" && $0.dtype == .f16 && $0.maxMemory?[.accelerator(0)] == 2_493_600
            })
        #expect(
            Dictionary(uniqueKeysWithValues: prepared.placement.deviceMap.map { ($0.key, $0.value) })
                == pinned.deviceMap)

        let layer16 = Self.layerElements * 2
        let accelerator = Self.embedElements * 2 + 5 * layer16  // 2,099,712
        let cpu = 2 * layer16  // 787,456
        // Staging: the largest converted tensor bound for RAM is the float32 embedding (262,144 bytes); the
        // largest written to disk is lm_head, whose float32 source and float16 copy sit side by side (393,216).
        let staging = Self.embedElements * 4 + Self.embedElements * 2
        #expect(prepared.prediction.stagingBytes == staging)
        #expect(prepared.prediction.peakBytes(on: .accelerator(0)) == accelerator)
        #expect(prepared.prediction.peakBytes(on: .cpu) == cpu + staging)
        #expect(prepared.predictedPeakBytes(plan.figures) == accelerator + cpu + staging)

        let ledger = MemoryLedger()
        let result = try prepared.loadReporting(plan, ledger: ledger, phases: PhaseLog(ledger: ledger))
        #expect(ledger.peakBytes(on: .accelerator(0)) == accelerator)
        #expect(ledger.peakBytes(on: .cpu) == cpu + staging)
        #expect(ledger.peakBytes(on: .disk) == 0)
        #expect(ledger.peakBytes == accelerator + cpu + staging)
        #expect(ledger.liveBytes(on: .accelerator(0)) == accelerator)
        #expect(ledger.liveBytes(on: .cpu) == cpu)  // staging freed
        #expect(ledger.peakBytes(on: .accelerator(0)) <= 2_493_600)

        // The report: plain per-device figures, and the accelerator's arena holding exactly its tensors.
        let report = result.report
        let device0 = try #require(report.figures(for: .accelerator(0)))
        #expect(device0.budgetBytes == 2_493_600 && device0.capacityBytes == 2_493_600)
        #expect(device0.placedBytes == accelerator && device0.ledgerPeakBytes == accelerator && device0.withinBudget)
        let arenaBytes = result.model.tensors.values.filter { $0.storage.device == .accelerator(0) }
            .reduce(0) { $0 + nallocx($1.byteCount, cjemalloc_flags_align(HostAllocator.alignment)) }
        #expect(device0.arenaExpectedBytes == arenaBytes)
        #expect(device0.arenaAllocatedBytes == arenaBytes)
        #expect(report.figures(for: .cpu)?.predictedPeakBytes == cpu + staging)
        #expect(report.figures(for: .disk)?.placedBytes == 5 * layer16 + 128 * 2 + Self.embedElements * 2)
        #expect(report.ledgerRAMPeakBytes == report.predictedRAMPeakBytes)

        // Where each tensor lives.
        for (name, tensor) in result.model.tensors {
            let device = try #require(prepared.placement.device(of: name))
            #expect(tensor.storage.device == device, "\(name)")
            #expect(tensor.storage.kind == (device == .disk ? .fileWindow : .owned), "\(name)")
        }

        // The offload folder: one float16 .dat per disk tensor, and accelerate's index.json, byte for byte.
        let diskNames = plan.parameters.map(\.name).filter { prepared.placement.device(of: $0) == .disk }
            .sorted { $0.unicodeScalars.lexicographicallyPrecedes($1.unicodeScalars) }
        #expect(diskNames.count == 5 * 9 + 2)
        let weights = offload.path + "/weights"
        let files = try FileManager.default.contentsOfDirectory(atPath: weights).sorted()
        #expect(files == (diskNames.map { $0 + ".dat" } + ["index.json"]).sorted())
        let shapes = Dictionary(uniqueKeysWithValues: plan.parameters.map { ($0.name, $0.shape) })
        for name in diskNames {
            let attributes = try FileManager.default.attributesOfItem(atPath: weights + "/" + name + ".dat")
            #expect((attributes[.size] as? Int) == (shapes[name] ?? []).reduce(2, *), "\(name)")
        }
        let index = String(decoding: try fileBytes(weights + "/index.json"), as: UTF8.self)
        #expect(index == Self.datIndexText(diskNames.map { ($0, "float16", shapes[$0] ?? []) }))
        #expect(report.offload.writtenFiles.count == diskNames.count && report.offload.referencedBytes == 0)

        // Every byte, wherever it lives, equals the low-memory load's.
        let expected = try Self.lowMemoryDigests(plan)
        let got = Dictionary(uniqueKeysWithValues: result.model.digests().map { ($0.name, $0.sha256) })
        #expect(got == expected)
        #expect(got.count == plan.parameters.count)
    }

    /// Everything on disk, stored in the target dtype: nothing is copied; the index points into the shards
    /// (transformers' in-place offload), tied lm_head included; no RAM at all.
    @Test func sameDTypeDiskIsReferencedInPlace() throws {
        let folder = try Self.checkpoint("gemma-deep", dtype: .bf16)
        defer { folder.remove() }
        let offload = try TemporaryFolder("devmap-inplace")
        defer { offload.remove() }
        let checkpoint = try Checkpoint(path: folder.path)
        let plan = try LoadPlan(checkpoint: checkpoint, requested: nil)
        #expect(plan.dtype == .bf16)
        let request = PlacementRequest(deviceMap: .mode(.sequential), maxMemory: DeviceBudgets([.cpu: 100]))
        let prepared = try DeviceMapLoad(request: request, offloadFolder: offload.path).prepare(plan)
        #expect(prepared.placement.deviceMap == ["": .disk])
        #expect(prepared.prediction.stagingBytes == 0 && prepared.prediction.ramPeakBytes == 0)
        let ledger = MemoryLedger()
        let result = try prepared.loadReporting(plan, ledger: ledger, phases: PhaseLog(ledger: ledger))
        #expect(ledger.peakBytes == 0)
        #expect(try offload.contents() == ["index.json"])

        var entries: [String] = []
        let names = plan.parameters.map(\.name).sorted {
            $0.unicodeScalars.lexicographicallyPrecedes($1.unicodeScalars)
        }
        func entry(_ name: String, stored: String) throws -> String {
            let location = try #require(checkpoint.tensors[stored])
            return "  \"\(name)\": {\n    \"safetensors_file\": \"\(checkpoint.files[location.fileIndex].path)\",\n"
                + "    \"weight_name\": \"\(stored)\",\n    \"dtype\": \"bfloat16\"\n  }"
        }
        for name in names { entries.append(try entry(name, stored: name)) }
        entries.append(try entry("lm_head.weight", stored: "model.embed_tokens.weight"))
        #expect(
            String(decoding: try fileBytes(offload.file("index.json")), as: UTF8.self) == "{\n"
                + entries.joined(separator: ",\n") + "\n}")
        #expect(result.report.offload.referencedBytes == plan.figures.modelBytes)
        #expect(result.report.offload.writtenFiles.isEmpty)

        let head = try #require(result.model.tensors["lm_head.weight"])
        #expect(head.storage === result.model.tensors["model.embed_tokens.weight"]?.storage)
        #expect(head.storage.kind == .fileWindow && head.storage.device == .disk)
        let got = Dictionary(uniqueKeysWithValues: result.model.digests().map { ($0.name, $0.sha256) })
        #expect(got == (try Self.lowMemoryDigests(plan)))
    }

    /// A user's map forcing the whole model onto accelerator 0 beyond its capacity: the load fails like a GPU
    /// out-of-memory, and nothing on the device ever passes the budget. With a larger simulated accelerator
    /// (`--accelerator-memory`) the same map loads, although the max_memory budget is smaller.
    @Test func acceleratorPastItsCapacityIsOutOfMemory() throws {
        let folder = try Self.checkpoint("llama-deep", dtype: .f16)
        defer { folder.remove() }
        let plan = try LoadPlan(checkpoint: try Checkpoint(path: folder.path), requested: nil)
        let everything = DeviceMapSpec.user(UserDeviceMap(["": .accelerator(0)], source: "map.json"))
        let small = PlacementRequest(
            deviceMap: everything, maxMemory: DeviceBudgets([.accelerator(0): 1_000_000, .cpu: 1 << 30]))
        let prepared = try DeviceMapLoad(request: small).prepare(plan)
        #expect(prepared.prediction.peakBytes(on: .accelerator(0)) == plan.figures.modelBytes)
        let ledger = MemoryLedger()
        #expect {
            _ = try prepared.load(plan, ledger: ledger, phases: PhaseLog(ledger: ledger))
        } throws: { error in
            guard let oom = error as? OutOfMemoryError else { return false }
            return oom.device == .accelerator(0) && oom.budgetBytes == 1_000_000
                && oom.liveBytes + oom.requestedBytes > 1_000_000
                && oom.liveBytes <= 1_000_000
        }
        #expect(ledger.peakBytes(on: .accelerator(0)) <= 1_000_000)
        #expect(ledger.peakBytes(on: .accelerator(0)) > 0)

        let large = PlacementRequest(
            deviceMap: everything, maxMemory: DeviceBudgets([.accelerator(0): 1_000_000]),
            acceleratorMemory: DeviceBudgets([.accelerator(0): 20_000_000]))
        let ledger2 = MemoryLedger()
        let loaded = try DeviceMapLoad(request: large).prepare(plan).loadReporting(
            plan, ledger: ledger2, phases: PhaseLog(ledger: ledger2))
        #expect(ledger2.peakBytes(on: .accelerator(0)) == plan.figures.modelBytes)
        let figures = try #require(loaded.report.figures(for: .accelerator(0)))
        #expect(figures.capacityBytes == 20_000_000 && figures.budgetBytes == 1_000_000 && !figures.withinBudget)
    }

    /// A parameter missing from the checkpoint and placed on disk is initialised as a fresh model has it and
    /// written as a .dat; the prediction (no checkpoint needed) equals the plan's.
    @Test func missingParameterOnDiskIsWrittenInitialised() throws {
        let folder = try TemporaryFolder("devmap-missing")
        defer { folder.remove() }
        let source = try Checkpoint(path: FixturePaths.path("llama-tiny-f32-single"))
        var tensors: [(spec: TensorSpec, bytes: [UInt8])] = []
        for (name, location) in source.tensors where name != "model.norm.weight" {
            tensors.append((location.tensor.spec, try readAll(source.files[location.fileIndex], location.tensor)))
        }
        try withArrays(tensors.map(\.bytes)) { buffers in
            try SafetensorsWriter.write(
                Array(zip(tensors.map(\.spec), buffers)), metadata: ["format": "pt"],
                to: folder.file("model.safetensors"))
        }
        _ = try folder.write("config.json", try fileBytes(FixturePaths.path("llama-tiny-f32-single/config.json")))
        let plan = try LoadPlan(checkpoint: try Checkpoint(path: folder.path), requested: nil)
        #expect(plan.missingKeys == ["model.norm.weight"])
        let map = UserDeviceMap(["": .cpu, "model.norm": .disk], source: "map.json")
        let load = DeviceMapLoad(
            request: PlacementRequest(deviceMap: .user(map)), offloadFolder: folder.file("offload"))
        let prepared = try load.prepare(plan)
        #expect(prepared.prediction.stagingBytes == 256)  // the 64 float32 ones, written through staging
        let ledger = MemoryLedger()
        let result = try prepared.loadReporting(plan, ledger: ledger, phases: PhaseLog(ledger: ledger))
        #expect(ledger.peakBytes(on: .cpu) == (plan.figures.modelBytes - 256) + 256)  // all but the norm, plus staging
        let ones = Array(repeating: [0x00, 0x00, 0x80, 0x3F] as [UInt8], count: 64).flatMap { $0 }
        #expect(try fileBytes(folder.file("offload/model.norm.weight.dat")) == ones)
        #expect(Array(try #require(result.model.tensors["model.norm.weight"]).storage.bytes) == ones)
        #expect(
            String(decoding: try fileBytes(folder.file("offload/index.json")), as: UTF8.self)
                == Self.datIndexText([("model.norm.weight", "float32", [64])]))

        // Without a folder, the load is refused before anything is read.
        #expect(throws: PlacementError.self) { try DeviceMapLoad(request: load.request).prepare(plan) }

        // The checkpoint-free prediction (what a scenario predicts at full size) agrees with the plan's.
        let generated = try Self.checkpoint("qwen2-bias", dtype: .bf16)
        defer { generated.remove() }
        let qwen = try LoadPlan(checkpoint: try Checkpoint(path: generated.path), requested: .f32)
        let qwenPlacement = try PlacementRequest(
            deviceMap: .mode(.auto),
            maxMemory: DeviceBudgets([.accelerator(0): 1_500_000, .accelerator(1): 1_500_000, .cpu: 2_000_000])
        )
        .place(architecture: qwen.architecture, dtype: .f32)
        let fromPlan = try DeviceMapPrediction(plan: qwen, placement: qwenPlacement)
        let fromArchitecture = try DeviceMapPrediction(
            placement: qwenPlacement, architecture: qwen.architecture, storedDType: .bf16, target: .f32)
        #expect(fromPlan == fromArchitecture)
        #expect(fromPlan.parameterBytes.values.reduce(0, +) == qwen.figures.modelBytes)
        #expect(Set(fromPlan.parameterBytes.keys) == [.accelerator(0), .accelerator(1), .cpu, .disk])
    }

    /// A checkpoint of an unknown architecture names its own tensors; one that is not a plain file name is
    /// refused instead of being written outside the offload folder.
    @Test func offloadNamesStayInTheFolder() throws {
        let folder = try TemporaryFolder("devmap-names")
        defer { folder.remove() }
        let spec = TensorSpec(name: "../escape", dtype: .f32, shape: [4])
        try withArrays([[UInt8](repeating: 0, count: 16)]) { buffers in
            try SafetensorsWriter.write(
                [(spec, buffers[0])], metadata: ["format": "pt"], to: folder.file("model.safetensors"))
        }
        let plan = try LoadPlan(checkpoint: try Checkpoint(path: folder.path), requested: .f16)
        let request = PlacementRequest(deviceMap: .user(UserDeviceMap(["": .disk])))
        let ledger = MemoryLedger()
        #expect {
            _ = try DeviceMapLoad(request: request, offloadFolder: folder.file("offload")).load(
                plan, ledger: ledger, phases: PhaseLog(ledger: ledger))
        } throws: { error in
            (error as? LoadError)?.rule == .unsafeOffloadName && (error as? LoadError)?.category == .badData
        }
        #expect(!FileManager.default.fileExists(atPath: folder.path + "/escape.dat"))
        // The offload folder the failed load created is removed with it.
        #expect(!FileManager.default.fileExists(atPath: folder.file("offload")))
    }
}
