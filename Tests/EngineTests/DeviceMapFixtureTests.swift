import Foundation
import OrderedCollections
import TestSupport
import Testing

@testable import Models
@testable import Placement
@testable import StrictJSON
@testable import TensorEngine

/// One case of accelerate's output pinned in `Tests/Fixtures/device-maps/` (accelerate-maps.json: the 24
/// cases of the reference fixture; extra-maps.json: more models, budgets and no-split classes, made by
/// make_extra_cases.py with the same accelerate 1.15 / transformers 5.24 / torch 2.15).
struct AccelerateCase: Sendable, CustomTestStringConvertible {
    let file: String
    let index: Int
    let name: String
    let model: String
    let dtype: DType
    let mode: DeviceMapMode
    let maxMemory: DeviceBudgets?
    let acceleratorMemory: DeviceBudgets?
    let cpuAvailable: Int?
    /// get_balanced_memory's result as JSON numbers (accelerate's 90% is a float).
    let balancedMaxMemory: [String: Double]?
    let noSplit: [String]
    let modelBytes: Int
    let deviceMap: [String: Device]

    var testDescription: String { "\(file)#\(index) \(name)" }

    static func load(_ file: String) -> [AccelerateCase] {
        let path = FixturePaths.path("device-maps/" + file)
        guard let data = FileManager.default.contents(atPath: path),
            let document = try? JSONParser().parse([UInt8](data)),
            let cases = document["cases"]?.arrayValue
        else { return [] }
        return cases.enumerated().compactMap { index, value in
            guard let model = value["model"]?.stringValue, let dtypeName = value["dtype"]?.stringValue,
                let dtype = DType(torchName: dtypeName),
                let modeName = value["mode"]?.stringValue, let mode = DeviceMapMode(rawValue: modeName),
                let modelBytes = value["model_bytes"]?.numberValue?.intValue, let map = value["device_map"]?.objectValue
            else { return nil }
            func budgets(_ key: String) -> DeviceBudgets? {
                guard let object = value[key], !object.isNull else { return nil }
                return try? DeviceBudgets.parse(json: object, source: file, path: "$." + key)
            }
            var deviceMap: [String: Device] = [:]
            for (key, device) in map { deviceMap[key] = UserDeviceMap.device(from: device) }
            var balanced: [String: Double]?
            if let object = value["balanced_max_memory"]?.objectValue {
                balanced = Dictionary(
                    uniqueKeysWithValues: object.map { ($0.key, $0.value.numberValue?.doubleValue ?? .nan) })
            }
            return AccelerateCase(
                file: file, index: index, name: value["name"]?.stringValue ?? "\(model) \(dtypeName) \(modeName)",
                model: model, dtype: dtype,
                mode: mode, maxMemory: budgets("max_memory"), acceleratorMemory: budgets("accelerator_memory"),
                cpuAvailable: value["cpu_available"]?.numberValue?.intValue, balancedMaxMemory: balanced,
                noSplit: value["no_split_module_classes"]?.arrayValue?.compactMap(\.stringValue) ?? [],
                modelBytes: modelBytes, deviceMap: deviceMap)
        }
    }

    static let pinned = load("accelerate-maps.json")
    static let extra = load("extra-maps.json")

    func architecture() throws -> ModelArchitecture {
        let config = try ModelConfig.load(path: FixturePaths.path("device-maps/\(model)/config.json"))
        return try #require(try ModelArchitecture.fromConfig(config))
    }

    func place() throws -> DevicePlacement {
        let request = PlacementRequest(
            deviceMap: .mode(mode), maxMemory: maxMemory, acceleratorMemory: acceleratorMemory, noSplit: noSplit,
            hostAvailableBytes: cpuAvailable)
        return try request.place(architecture: try architecture(), dtype: dtype)
    }
}

@Suite("Device map: accelerate's placements")
struct DeviceMapFixtureTests {
    @Test func fixturesAreAllRead() {
        // Every case parsed (a case dropped by the reader would silently shrink the parameterised tests).
        #expect(AccelerateCase.pinned.count == 24)
        #expect(AccelerateCase.extra.count == 35)
        #expect(AccelerateCase.pinned.filter { $0.mode == .balanced }.count == 4)
        #expect(AccelerateCase.extra.filter { $0.maxMemory == nil }.count == 4)
    }

    @Test(arguments: AccelerateCase.pinned)
    func pinnedCase(_ c: AccelerateCase) throws {
        try check(c)
    }

    @Test(arguments: AccelerateCase.extra)
    func extraCase(_ c: AccelerateCase) throws {
        try check(c)
    }

    private func check(_ c: AccelerateCase) throws {
        let placement = try c.place()
        #expect(placement.modelBytes == c.modelBytes)
        #expect(Dictionary(uniqueKeysWithValues: placement.deviceMap.map { ($0.key, $0.value) }) == c.deviceMap)
        if let expected = c.balancedMaxMemory {
            let got = Dictionary(
                uniqueKeysWithValues: (placement.placementBudgets ?? []).map { ($0.device.description, $0.bytes) })
            #expect(got == expected)
        }
        // The map covers every parameter, and the per-device shares add up to the model.
        let architecture = try c.architecture()
        for name in architecture.stateDictNames { #expect(placement.device(of: name) != nil, "\(name) unplaced") }
        #expect(placement.devices.reduce(0) { $0 + $1.placedBytes } == c.modelBytes)
        // Module order: each key after the previous one in the module tree.
        let order = moduleOrder(architecture.root)
        let ranks = placement.deviceMap.keys.map { order[$0] ?? -1 }
        #expect(ranks == ranks.sorted() && !ranks.contains(-1))
    }

    private func moduleOrder(_ root: ModuleNode) -> [String: Int] {
        var order: [String: Int] = [:]
        func visit(_ node: ModuleNode) {
            order[node.name] = order.count
            for parameter in node.parameters { order[parameter.name] = order.count }
            for child in node.children { visit(child) }
            for buffer in node.buffers { order[buffer.name] = order.count }
        }
        visit(root)
        return order
    }

    /// The pinned README's account of `model_bytes`, worked by hand for the two models.
    @Test func modelBytesByHand() throws {
        // llama-deep: 12 layers × (q 128·128 + k 64·128 + v 64·128 + o 128·128 + 3 × 384·128 + 2 × 128) params,
        // embed and lm_head 512·128 each, norm 128; rotary inv_freq + original_inv_freq: 2 × 16 float32.
        let llamaParams = 12 * (16384 + 8192 + 8192 + 16384 + 3 * 49152 + 256) + 2 * 65536 + 128
        let llama = try #require(AccelerateCase.pinned.first { $0.model == "llama-deep" })
        let llamaSizes = ModuleSizes(root: try llama.architecture().root, dtype: .f16)
        #expect(llamaSizes.total == llamaParams * 2 + 2 * 16 * 2)
        #expect(ModuleSizes(root: try llama.architecture().root, dtype: .f32).total == llamaParams * 4 + 2 * 16 * 4)
        #expect(llamaSizes["model.rotary_emb"] == 64)
        #expect(llamaSizes["model.rotary_emb.inv_freq"] == 32)
        #expect(llamaSizes["model.layers.3"] == (16384 + 8192 + 8192 + 16384 + 3 * 49152 + 256) * 2)

        // gemma-deep: lm_head is tied (counted once, under model.embed_tokens); embed_scale is a scalar in the
        // model dtype.
        let gemma = try #require(AccelerateCase.pinned.first { $0.model == "gemma-deep" })
        let architecture = try gemma.architecture()
        let aliases = Dictionary(uniqueKeysWithValues: architecture.tiedAliases.map { ($0.key, $0.value) })
        let gemmaParams = 10 * (16384 + 4096 + 4096 + 16384 + 3 * 65536 + 256) + 131072 + 128
        let sizes = ModuleSizes(root: architecture.root, dtype: .bf16, tiedAliases: aliases)
        #expect(sizes.total == gemmaParams * 2 + 2 + 2 * 16 * 2)
        #expect(sizes["lm_head"] == 0)
        #expect(sizes["model.embed_tokens"] == 131072 * 2 + 2)
        #expect(!sizes.countedTensors.contains("lm_head.weight"))
        #expect(
            TiedParameters.groups(root: architecture.root, tiedAliases: aliases) == [
                ["lm_head.weight", "model.embed_tokens.weight"]
            ])
        #expect(ModuleSizes(root: architecture.root, dtype: .f32, tiedAliases: aliases).total == 10_037_892)
    }
}
