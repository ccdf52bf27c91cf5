import Foundation
import OrderedCollections
import TestSupport
import Testing

@testable import Models
@testable import Placement
@testable import StrictJSON
@testable import TensorEngine

@Suite("Placement: budgets, user maps, model trees, CLI")
struct PlacementTests {
    // MARK: Budgets

    @Test func commandLineBudgets() throws {
        let budgets = try DeviceBudgets.parse("cpu=6GiB,1=2GiB,0=2GiB,disk=1TB")
        // accelerate's device order, whatever the order given: accelerators by index, cpu, disk.
        #expect(budgets.devices == [.accelerator(0), .accelerator(1), .cpu, .disk])
        #expect(budgets[.accelerator(0)] == 2 << 30 && budgets[.cpu] == 6 << 30 && budgets[.disk] == 1_000_000_000_000)
        #expect(try DeviceBudgets.parse("0=0,cpu=1.5GB").description == "0=0,cpu=1500000000")
        #expect(try DeviceBudgets.parse("12=512").acceleratorIndices == [12])
        let sizes = try DeviceBudgets.parse("1=16GiB,0=8GiB", option: "--accelerator-memory", acceleratorsOnly: true)
        #expect(sizes.acceleratorIndices == [0, 1])
    }

    /// Every bad budget is one line naming the option, the key and the rule; exit 64 on the command line.
    @Test(arguments: [
        ("gpu=1GB", PlacementRule.unknownBudgetKey, "gpu"), ("cuda:0=1GB", .unknownBudgetKey, "cuda:0"),
        ("-1=1GB", .unknownBudgetKey, "-1"),
        ("CPU=1GB", .unknownBudgetKey, "CPU"), ("mps=1GB", .unknownBudgetKey, "mps"),
        ("0=2 GB", .invalidBudget, "'2 GB'"),
        ("0=1.5", .invalidBudget, "'1.5'"), ("cpu=-1GB", .invalidBudget, "'-1GB'"),
        ("0=1GB,0=2GB", .duplicateDevice, "given twice"),
        ("", .invalidSyntax, "is empty"), ("0=", .invalidSyntax, "'0='"), ("=1GB", .invalidSyntax, "'=1GB'"),
        ("0=1GB,", .invalidSyntax, "''"),
        ("0:1GB", .invalidSyntax, "'0:1GB'"),
    ])
    func badCommandLineBudgets(text: String, rule: PlacementRule, mention: String) {
        #expect {
            _ = try DeviceBudgets.parse(text)
        } throws: { error in
            guard let error = error as? PlacementError else { return false }
            return error.rule == rule && error.category == .usage && error.description.hasPrefix("--max-memory")
                && error.description.contains(mention) && !error.description.contains("\n")
                && (rule != .unknownBudgetKey
                    || error.description.contains("accelerator indices (0, 1, …), \"cpu\" and \"disk\""))
        }
    }

    @Test func acceleratorSizesTakeOnlyIndices() {
        #expect(throws: PlacementError.self) {
            try DeviceBudgets.parse("cpu=1GB", option: "--accelerator-memory", acceleratorsOnly: true)
        }
        #expect(throws: PlacementError.self) {
            try DeviceBudgets.parse(
                json: .object(["disk": JSONValue(1)]), source: "s.json", path: "$.a", acceleratorsOnly: true)
        }
    }

    @Test func jsonBudgets() throws {
        let value = try JSONParser().parse(#"{"cpu": 1000, "0": "2GiB", "disk": "1TB", "1": 0}"#)
        let budgets = try DeviceBudgets.parse(json: value, source: "gemma7b.json", path: "$.runs[3].max_memory")
        #expect(budgets.description == "0=2147483648,1=0,cpu=1000,disk=1000000000000")
        #expect(
            budgets.json == (try JSONParser().parse(#"{"0": 2147483648, "1": 0, "cpu": 1000, "disk": 1000000000000}"#)))
        let bad: [(String, PlacementRule, String)] = [
            (#"{"gpu": 1}"#, .unknownBudgetKey, "$.runs[3].max_memory.gpu"), (#"{"0": -5}"#, .invalidBudget, "-5"),
            (#"{"0": 1.5}"#, .invalidBudget, "1.5"), (#"{"0": true}"#, .invalidBudget, "a boolean"),
            (#"{"cpu": "lots"}"#, .invalidBudget, "\"lots\""),
            (#"[1, 2]"#, .invalidSyntax, "an array"), (#"{" 0": 1}"#, .unknownBudgetKey, "' 0'"),
        ]
        for (text, rule, mention) in bad {
            #expect {
                _ = try DeviceBudgets.parse(
                    json: try JSONParser().parse(text), source: "gemma7b.json", path: "$.runs[3].max_memory")
            } throws: { error in
                guard let error = error as? PlacementError else { return false }
                return error.rule == rule && error.category == .badData
                    && error.description.hasPrefix("gemma7b.json: $.runs[3].max_memory")
                    && error.description.contains(mention)
            }
        }
    }

    // MARK: User maps

    static func llama() throws -> ModelArchitecture {
        try #require(
            try ModelArchitecture.fromConfig(
                try ModelConfig.load(path: FixturePaths.path("device-maps/llama-deep/config.json"))))
    }

    static func gemma() throws -> ModelArchitecture {
        try #require(
            try ModelArchitecture.fromConfig(
                try ModelConfig.load(path: FixturePaths.path("device-maps/gemma-deep/config.json"))))
    }

    @Test func prefixMatching() throws {
        let map = UserDeviceMap([
            "model.layers.1": .accelerator(0), "model.layers": .cpu, "": .disk,
            "model.layers.1.mlp.down_proj": .accelerator(1),
        ])
        #expect(map.device(for: "model.layers.1.mlp.up_proj.weight") == .accelerator(0))
        #expect(map.device(for: "model.layers.1.mlp.down_proj.weight") == .accelerator(1))
        // layers.1 is not a prefix of layers.10 on dots.
        #expect(map.device(for: "model.layers.10.mlp.up_proj.weight") == .cpu)
        #expect(map.device(for: "model.layers.1") == .accelerator(0))
        #expect(map.device(for: "model.layers") == .cpu)
        #expect(map.device(for: "lm_head.weight") == .disk)
        #expect(map.key(for: "lm_head.weight") == "")
        let partial = UserDeviceMap(["model.layers": .cpu, "model.layersX": .accelerator(0)])
        #expect(partial.device(for: "model.layersX.weight") == .accelerator(0))
        #expect(partial.device(for: "model.embed_tokens.weight") == nil)
        #expect(partial.device(for: "model.layers_2.weight") == nil)
    }

    @Test func userMapPlacement() throws {
        let json = try JSONParser().parse(
            #"{"model.embed_tokens": 0, "model.layers": "cpu", "model.layers.11": "1", "lm_head": "cuda:1", "": "disk", "model.nothing": 0}"#
        )
        let map = try UserDeviceMap.parse(json: json, source: "map.json")
        let request = PlacementRequest(
            deviceMap: .user(map), maxMemory: DeviceBudgets([.accelerator(0): 1 << 20, .accelerator(1): 1 << 20]))
        let placement = try request.place(architecture: try Self.llama(), dtype: .f16)
        #expect(placement.mode == "map")
        #expect(
            Array(placement.deviceMap.keys) == [
                "model.embed_tokens", "model.layers", "model.layers.11", "lm_head", "", "model.nothing",
            ])
        #expect(placement.device(of: "model.layers.11.mlp.up_proj.weight") == .accelerator(1))
        #expect(placement.device(of: "model.layers.3.mlp.up_proj.weight") == .cpu)
        #expect(placement.device(of: "model.norm.weight") == .disk)
        #expect(placement.device(of: "model.rotary_emb.inv_freq") == .disk)
        let layer = (16384 + 8192 + 8192 + 16384 + 3 * 49152 + 256) * 2
        #expect(placement.share(of: .accelerator(0))?.parameterBytes == 512 * 128 * 2)
        #expect(placement.share(of: .accelerator(1))?.parameterBytes == layer + 512 * 128 * 2)
        #expect(placement.share(of: .cpu)?.parameterBytes == 11 * layer)
        #expect(placement.share(of: .disk)?.parameterBytes == 128 * 2)
        #expect(placement.share(of: .disk)?.bufferBytes == 64)
        #expect(placement.warnings == ["map.json: keys matching no module of the model: model.nothing"])
    }

    @Test func mapLeavingParametersWithoutDevice() throws {
        let map = UserDeviceMap(["model.embed_tokens": .cpu, "model.layers": .cpu], source: "partial.json")
        #expect {
            _ = try PlacementRequest(deviceMap: .user(map)).place(architecture: try Self.llama(), dtype: .f16)
        } throws: { error in
            guard let error = error as? PlacementError else { return false }
            // rotary_emb's buffers are not persistent: not in the state dict, so not required (as accelerate's check_device_map).
            return error.rule == .unmappedParameters && error.category == .badData
                && error.description
                    == "partial.json: UnmappedParameters: the map gives no device for 2 parameters: model.norm.weight, lm_head.weight"
        }
        // A tied alias is a state-dict name too: Gemma's lm_head.weight needs a device even though it is stored once.
        let gemmaMap = UserDeviceMap(["model": .cpu], source: "g.json")
        #expect {
            _ = try PlacementRequest(deviceMap: .user(gemmaMap)).place(architecture: try Self.gemma(), dtype: .bf16)
        } throws: { error in
            (error as? PlacementError)?.description
                == "g.json: UnmappedParameters: the map gives no device for 1 parameter: lm_head.weight"
        }
    }

    @Test func mapNamingUnknownDevices() throws {
        for (text, mention) in [
            (#"{"": "gpu"}"#, "\"gpu\""), (#"{"": -1}"#, "-1"), (#"{"": 1.5}"#, "1.5"), (#"{"": true}"#, "a boolean"),
            (#"{"": "meta"}"#, "\"meta\""),
        ] {
            #expect {
                _ = try UserDeviceMap.parse(json: try JSONParser().parse(text), source: "m.json")
            } throws: { error in
                guard let error = error as? PlacementError else { return false }
                return error.rule == .unknownDevice && error.category == .badData
                    && error.description.hasPrefix("m.json: $[\"\"]: UnknownDevice: \(mention) is not a device")
            }
        }
        // An accelerator index this run does not have.
        let map = UserDeviceMap(["model": .accelerator(2), "lm_head": .cpu], source: "m.json")
        for (budgets, sizes) in [
            (DeviceBudgets([.accelerator(0): 1 << 20, .cpu: 1 << 20]), nil),
            (nil, DeviceBudgets([.accelerator(0): 1, .accelerator(1): 1])), (nil, nil),
        ] as [(DeviceBudgets?, DeviceBudgets?)] {
            #expect {
                _ = try PlacementRequest(deviceMap: .user(map), maxMemory: budgets, acceleratorMemory: sizes).place(
                    architecture: try Self.llama(), dtype: .f16)
            } throws: { error in
                guard let error = error as? PlacementError else { return false }
                return error.rule == .unknownDevice && error.category == .badData
                    && error.description.hasPrefix("m.json: model: UnknownDevice: accelerator 2 does not exist")
            }
        }
        // --max-memory naming an accelerator that --accelerator-memory does not define.
        #expect(throws: PlacementError.self) {
            try PlacementRequest(
                deviceMap: .mode(.auto), maxMemory: DeviceBudgets([.accelerator(1): 5]),
                acceleratorMemory: DeviceBudgets([.accelerator(0): 5])
            )
            .place(architecture: try Self.llama(), dtype: .f16)
        }
        #expect(throws: PlacementError.self) { try UserDeviceMap.parse(json: .array([]), source: "m.json") }
    }

    @Test func tiedWeightsSplitByAUserMapAreReported() throws {
        let map = UserDeviceMap(["model": .cpu, "lm_head": .disk], source: "m.json")
        let placement = try PlacementRequest(deviceMap: .user(map)).place(architecture: try Self.gemma(), dtype: .bf16)
        #expect(placement.warnings.count == 1)
        #expect(
            placement.warnings.first?.hasPrefix(
                "tied parameters are on different devices: lm_head.weight on disk, model.embed_tokens.weight on cpu")
                == true)
        // The shared weight counts once, where the embedding is.
        #expect(placement.share(of: .disk)?.placedBytes == 0)
    }

    /// No budget at all: the simulated accelerators' sizes, and the host's RAM for cpu; one accelerator in
    /// auto mode gets 90% of its size (get_balanced_memory), sequential keeps 100%.
    @Test func defaultBudgets() throws {
        let sizes = DeviceBudgets([.accelerator(0): 4_000_000])
        let auto = try PlacementRequest(
            deviceMap: .mode(.auto), acceleratorMemory: sizes, hostAvailableBytes: 2_000_000
        ).place(architecture: try Self.llama(), dtype: .f16)
        #expect(auto.placementBudgets?.first?.bytes == 3_600_000)
        #expect(auto.share(of: .accelerator(0))?.placementBudgetBytes == 3_600_000)
        #expect(auto.share(of: .accelerator(0))?.budgetBytes == nil)
        #expect(auto.share(of: .accelerator(0))?.capacityBytes == 4_000_000)
        let sequential = try PlacementRequest(
            deviceMap: .mode(.sequential), acceleratorMemory: sizes, hostAvailableBytes: 2_000_000
        )
        .place(architecture: try Self.llama(), dtype: .f16)
        #expect(sequential.placementBudgets?.first?.bytes == 4_000_000)
        // Nothing known: everything fits on an unlimited cpu.
        #expect(
            try PlacementRequest(deviceMap: .mode(.auto)).place(architecture: try Self.llama(), dtype: .f16).deviceMap
                == ["": .cpu])
        // `--no-split none` lets accelerate split decoder layers.
        let split = try PlacementRequest(
            deviceMap: .mode(.sequential), maxMemory: DeviceBudgets([.accelerator(0): 2_493_600, .cpu: 1_496_160]),
            noSplit: []
        )
        .place(architecture: try Self.llama(), dtype: .f16)
        #expect(split.deviceMap["model.layers.5.self_attn"] == .accelerator(0))
        #expect(split.noSplitClasses.isEmpty)
    }

    /// The scenario form of `device_map`: a mode, a map file relative to the scenario, or an inline map.
    @Test func scenarioDeviceMapValues() throws {
        let scratch = try TemporaryFolder("devmap-scenario")
        defer { scratch.remove() }
        _ = try scratch.write("map.json", text: #"{"": "cpu"}"#)
        #expect(
            try DeviceMapSpec.parse(json: .string("balanced"), source: "s.json", path: "$.runs[0].device_map")
                == .mode(.balanced))
        #expect(
            try DeviceMapSpec.parse(json: .string("map.json"), source: "s.json", path: "$.d", baseFolder: scratch.path)
                == .user(UserDeviceMap(["": .cpu], source: scratch.file("map.json"))))
        let inline = try DeviceMapSpec.parse(
            json: try JSONParser().parse(#"{"model": 0, "lm_head": "disk"}"#), source: "s.json", path: "$.d")
        #expect(inline == .user(UserDeviceMap(["model": .accelerator(0), "lm_head": .disk], source: "s.json")))
        for bad in [JSONValue.string("fast"), JSONValue(3), .null] {
            #expect {
                _ = try DeviceMapSpec.parse(json: bad, source: "s.json", path: "$.d")
            } throws: { error in
                (error as? PlacementError)?.category == .badData
                    && (error as? PlacementError)?.description.hasPrefix("s.json: $.d: InvalidMode") == true
            }
        }
    }

    // MARK: The model tree against transformers

    /// `named_modules()` of each fixture model as transformers 5.24 builds it (module-trees.json, written by
    /// make_extra_cases.py): every module's class, its own parameters and buffers, in registration order.
    @Test(arguments: ["llama-deep", "gemma-deep", "qwen2-bias", "mistral-small", "llama-tied"])
    func moduleTreeMatchesTransformers(model: String) throws {
        let document = try JSONParser().parse(try fileBytes(FixturePaths.path("device-maps/module-trees.json")))
        let expected = try #require(document["models"]?[model])
        let architecture = try #require(
            try ModelArchitecture.fromConfig(
                try ModelConfig.load(path: FixturePaths.path("device-maps/\(model)/config.json"))))
        var modules: [JSONValue] = []
        func local(_ name: String) -> String { String(name.split(separator: ".").last ?? "") }
        func visit(_ node: ModuleNode) {
            modules.append(
                .object([
                    "name": .string(node.name), "class": .string(node.className),
                    "parameters": .array(
                        node.parameters.map {
                            .array([.string(local($0.name)), .array($0.shape.map { JSONValue($0) })])
                        }),
                    "buffers": .array(
                        node.buffers.map {
                            .array([
                                .string(local($0.name)), .array($0.shape.map { JSONValue($0) }),
                                .string(($0.fixedDType ?? .f16).torchName), .bool($0.persistent),
                            ])
                        }),
                ]))
            node.children.forEach(visit)
        }
        visit(architecture.root)
        let want = try #require(expected["modules"]?.arrayValue)
        #expect(modules.count == want.count)
        for (got, wanted) in zip(modules, want) { #expect(got == wanted) }
        #expect(expected["no_split_modules"] == .array(architecture.noSplitClasses.map { .string($0) }))
        let aliases = Dictionary(uniqueKeysWithValues: architecture.tiedAliases.map { ($0.key, $0.value) })
        #expect(
            expected["tied"]
                == .array(
                    TiedParameters.groups(root: architecture.root, tiedAliases: aliases).map {
                        .array($0.map { .string($0) })
                    }))
    }

    // MARK: CLI

    @Test func planCommand() throws {
        let folder = FixturePaths.path("device-maps/llama-deep")
        let result = try Executable.run([
            "plan", folder, "--device-map", "sequential", "--max-memory", "0=2493600,cpu=1496160", "--dtype", "float16",
            "--json",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let json = try JSONParser().parse(Array(result.stdout.utf8))
        let pinned = try #require(
            AccelerateCase.pinned.first {
                $0.model == "llama-deep" && $0.dtype == .f16 && $0.maxMemory?[.accelerator(0)] == 2_493_600
            })
        let map = try #require(json["device_map"]?.objectValue)
        #expect(
            Dictionary(uniqueKeysWithValues: map.map { ($0.key, UserDeviceMap.device(from: $0.value)) })
                == pinned.deviceMap.mapValues { Optional($0) })
        #expect(json["model_bytes"] == JSONValue(4_987_200))
        #expect(
            json["devices"]?.arrayValue?.compactMap { $0["placed_bytes"]?.numberValue?.intValue }.reduce(0, +)
                == 4_987_200)

        let text = try Executable.run(["plan", folder, "--max-memory", "0=2MB,1=2MB,cpu=10MB"])
        #expect(text.status == 0)
        #expect(text.stdout.hasPrefix("device map (auto) for LlamaForCausalLM at float32\n"))
        #expect(text.stdout.contains("model.layers.1      1"))
    }

    @Test func cliErrorsAndExitStatuses() throws {
        let folder = FixturePaths.path("device-maps/llama-deep")
        let scratch = try TemporaryFolder("plan-cli")
        defer { scratch.remove() }
        let unknownKey = try Executable.run(["plan", folder, "--max-memory", "0=1GB,gpu=1GB"])
        #expect(unknownKey.status == 64)
        #expect(unknownKey.stderr.hasPrefix("bigmodel-bench: error: --max-memory: gpu: UnknownBudgetKey:"))
        #expect(try Executable.run(["plan", folder, "--device-map", "autoo"]).status == 64)
        #expect(try Executable.run(["plan", folder, "--device-map", scratch.file("absent.json")]).status == 66)

        _ = try scratch.write(
            "partial.json", text: #"{"model.embed_tokens": "cpu", "model.layers": "cpu", "model.norm": "cpu"}"#)
        let partial = try Executable.run([
            "plan", folder, "--device-map", scratch.file("partial.json"), "--dtype", "float16",
        ])
        #expect(partial.status == 65)
        #expect(
            partial.stderr
                == "bigmodel-bench: error: \(scratch.file("partial.json")): UnmappedParameters: the map gives no device for 1 parameter: lm_head.weight\n"
        )

        _ = try scratch.write("gpu.json", text: #"{"": 3}"#)
        let gpu = try Executable.run([
            "plan", folder, "--device-map", scratch.file("gpu.json"), "--max-memory", "0=1GB",
        ])
        #expect(gpu.status == 65)
        #expect(gpu.stderr.contains("accelerator 3 does not exist; the accelerators are 0"))
        _ = try scratch.write("bad.json", text: #"{"": "tpu"}"#)
        #expect(try Executable.run(["plan", folder, "--device-map", scratch.file("bad.json")]).status == 65)

        // Device-map options belong to the device-map strategy.
        let llama = FixturePaths.path("llama-tiny-f32-single")
        #expect(
            try Executable.run(["load", llama, "--strategy", "low-memory", "--max-memory", "cpu=1GB"]).status == 64)
        // Disk tensors that must be written need an offload folder.
        let noFolder = try Executable.run([
            "load", llama, "--strategy", "device-map", "--device-map", "sequential", "--max-memory", "cpu=100KB",
            "--dtype", "float16",
        ])
        #expect(noFolder.status == 64)
        #expect(noFolder.stderr.contains("OffloadFolderRequired"))
    }

    @Test func loadCommandReportsDevices() throws {
        let llama = FixturePaths.path("llama-tiny-f32-single")
        let scratch = try TemporaryFolder("load-cli")
        defer { scratch.remove() }
        let result = try Executable.run([
            "load", llama, "--strategy", "device-map", "--device-map", "sequential", "--max-memory",
            "0=200KB,cpu=200KB", "--dtype", "float16",
            "--offload-folder", scratch.file("offload"), "--json",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let json = try JSONParser().parse(Array(result.stdout.utf8))
        #expect(json["strategy"] == .string("device-map"))
        #expect(json["predicted_peak_bytes"] == json["ledger_peak_bytes"])
        let devices = try #require(json["device_placement"]?["devices"]?.arrayValue)
        #expect(devices.compactMap { $0["device"] } == [JSONValue(0), .string("cpu"), .string("disk")])
        for device in devices { #expect(device["predicted_peak_bytes"] == device["ledger_peak_bytes"]) }
        #expect(devices[0]["within_budget"] == .bool(true))
        // cpu: the placed share keeps within the budget; the staging buffer (lm_head's float32 source and float16
        // copy side by side: 131,072 + 65,536) comes on top and, in this tiny model, passes it.
        let cpu = devices[1]
        #expect(cpu["staging_bytes"] == JSONValue(196_608))
        #expect(cpu["placed_bytes"] == JSONValue(98_560))  // the two layers: 2 × 49,280 at float16
        #expect(cpu["ledger_peak_bytes"] == JSONValue(98_560 + 196_608))
        #expect(cpu["within_budget"] == .bool(false))
        #expect(devices[0]["arena_allocated_bytes"] == devices[0]["arena_expected_bytes"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.file("offload")).contains("index.json"))
    }
}
