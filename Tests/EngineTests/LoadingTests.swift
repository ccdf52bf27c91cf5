import Foundation
import OSLayer
import Probes
import Synchronization
import TestSupport
import Testing

@testable import Checkpoint
@testable import Loading
@testable import Models
@testable import StrictJSON
@testable import TensorEngine

/// The strategies on the reference fixtures: each ledger peak equals its formula computed here, independently,
/// from the files' headers; the loaded bytes equal torch's digests; every strategy loads the same bytes.
@Suite struct LoadingTests {
    /// Sizes read straight from the fixture headers with the test-only reader (not the project's reader).
    struct HeaderFigures {
        var elements = 0
        var storedBytes = 0
        var largestShard = 0
        var largestElements = 0
        var largestStoredTensorBytes = 0
        var storedDType: DType = .f32

        init(folder: String) throws {
            let files = try FileManager.default.contentsOfDirectory(atPath: FixturePaths.path(folder)).filter {
                $0.hasSuffix(".safetensors")
            }
            for name in files {
                let file = try ConversionFixtureFile(path: FixturePaths.path(folder + "/" + name))
                var shard = 0
                for entry in file.entries.values {
                    let count = entry.shape.reduce(1, *)
                    elements += count
                    shard += entry.byteRange.count
                    largestElements = max(largestElements, count)
                    largestStoredTensorBytes = max(largestStoredTensorBytes, entry.byteRange.count)
                    storedDType = entry.dtype
                }
                storedBytes += shard
                largestShard = max(largestShard, shard)
            }
        }

        /// The formulas of the issue, evaluated for `target` (nil = the stored dtype).
        func predicted(_ strategy: StrategyName, target: DType?) -> Int {
            let width = (target ?? storedDType).byteWidth ?? 4
            let mt = elements * width
            let converts = target != nil && target != storedDType
            let staging = converts ? min(largestStoredTensorBytes, 16 << 20) : 0
            switch strategy {
            case .naive: return mt + storedBytes
            case .sharded: return mt + largestShard
            case .lowMemory, .dtypeDirect, .deviceMap: return mt + staging
            case .loadThenCast: return elements * 4 + (width < 4 ? largestElements * width : 0)
            // Tensors already in the target dtype are views of the mapped file; converted ones are owned.
            case .mmap: return converts ? mt + staging : 0
            }
        }
    }

    static let models = ["gemma-tiny-bf16-sharded", "llama-tiny-f32-single"]
    static let targets: [DType?] = [nil, .f16, .bf16, .f32]

    /// `expected.json`: stored digests (auto) and torch's converted digests, by tensor name.
    static func expectedDigests(_ folder: String, target: DType?) throws -> [String: String] {
        let root = try JSONParser().parse(try fileBytes(FixturePaths.path(folder + "/expected.json")))
        var out: [String: String] = [:]
        if let target {
            for (name, value) in try #require(root["converted"]?.objectValue) {
                out[name] = try #require(value[target.torchName]?.stringValue)
            }
        } else {
            for (name, value) in try #require(root["tensors"]?.objectValue) {
                out[name] = try #require(value["sha256"]?.stringValue)
            }
            // Tied names are not stored; they load as the tensor they alias (the fixture README: Gemma's
            // lm_head.weight is model.embed_tokens.weight).
            for alias in root["tied"]?.arrayValue ?? [] where alias.stringValue == "lm_head.weight" {
                out["lm_head.weight"] = out["model.embed_tokens.weight"]
            }
        }
        return out
    }

    @Test(arguments: models, StrategyName.allCases)
    func ledgerPeakEqualsFormulaAndDigestsMatchTorch(model: String, strategy: StrategyName) throws {
        let header = try HeaderFigures(folder: model)
        for target in Self.targets {
            let plan = try LoadPlan(checkpoint: try Checkpoint(path: FixturePaths.path(model)), requested: target)
            let ledger = MemoryLedger()
            let loaded = try strategy.strategy.load(plan, ledger: ledger, phases: PhaseLog(ledger: ledger))
            let expected = header.predicted(strategy, target: target)
            #expect(ledger.peakBytes == expected, "\(model) \(strategy.rawValue) → \(target?.torchName ?? "auto")")
            #expect(strategy.strategy.predictedPeakBytes(plan.figures) == expected)
            let digests = try Self.expectedDigests(model, target: target)
            #expect(loaded.tensors.count == digests.count)
            for (name, tensor) in loaded.tensors {
                #expect(
                    tensor.sha256() == digests[name],
                    "\(model) \(name) via \(strategy.rawValue) → \(target?.torchName ?? "auto")")
            }
            withExtendedLifetime(loaded) {}
            // The model's own bytes stay in the ledger; mmap's same-dtype tensors are views of the file instead.
            let modelBytes = header.elements * ((target ?? header.storedDType).byteWidth ?? 0)
            let mapped = strategy == .mmap && (target == nil || target == header.storedDType)
            #expect(ledger.liveBytes == (mapped ? 0 : modelBytes))
            if strategy == .mmap { #expect(loaded.mappedBytes == (mapped ? modelBytes : 0)) }
        }
    }

    /// A cold checkpoint (its pages evicted, where the file system can drop them) loads the same tensors, byte
    /// for byte, with the same ledger.
    @Test func aColdCheckpointLoadsTheSameBytes() throws {
        let folder = try TemporaryFolder("cold")
        defer { folder.remove() }
        let source = FixturePaths.path("gemma-tiny-bf16-sharded")
        for name in try FileManager.default.contentsOfDirectory(atPath: source) {
            try FileManager.default.copyItem(atPath: source + "/" + name, toPath: folder.file(name))
        }
        let checkpoint = try Checkpoint(path: folder.path)
        for file in checkpoint.files {
            try PageCache.evict(path: file.path)
            // A file system that keeps every page (tmpfs) cannot be made cold; this one could.
            if try PageCache.residentBytes(path: file.path) != 0 { print("LoadingTests: \(file.path) stayed resident") }
        }
        let plan = try LoadPlan(checkpoint: checkpoint, requested: nil)
        let ledger = MemoryLedger()
        let loaded = try StrategyName.lowMemory.strategy.load(plan, ledger: ledger, phases: PhaseLog(ledger: ledger))
        let digests = try Self.expectedDigests("gemma-tiny-bf16-sharded", target: nil)
        #expect(Dictionary(uniqueKeysWithValues: loaded.tensors.map { ($0.key, $0.value.sha256()) }) == digests)
        #expect(ledger.peakBytes == 369_280)
        withExtendedLifetime(loaded) {}
    }

    /// A cold shard's large tensors are read with O_DIRECT to the start of their memory and moved into place
    /// (DirectShardRead): the bytes must be the file's exactly, whatever the tensors' offsets modulo 4 KiB. The
    /// 3 MiB + 5 bytes tensor starts at an odd offset (after the 7-byte one), so its shift and tail are non-zero.
    @Test func aColdShardReadAroundThePageCacheHoldsTheFilesBytes() throws {
        let folder = try TemporaryFolder("direct")
        defer { folder.remove() }
        let path = folder.file("model.safetensors")
        let sizes = [("small", 7), ("large", (3 << 20) + 5), ("larger", (5 << 20) + 4099)]
        let contents = sizes.map { name, count in
            (name, (0..<count).map { UInt8(truncatingIfNeeded: ($0 &* 2_654_435_761) >> 13 &+ name.count) })
        }
        try withBuffers(contents.map(\.1)) { buffers in
            let tensors = zip(contents, buffers).map { (TensorSpec(name: $0.0, dtype: .u8, shape: [$0.1.count]), $1) }
            try SafetensorsWriter.write(tensors.map { (spec: $0.0, bytes: $0.1) }, metadata: nil, to: path)
        }
        let file = try SafetensorsFile(path: path)
        // After opening: reading the header set off the kernel's readahead over the first megabytes.
        try PageCache.evict(path: path)
        let ledger = MemoryLedger()
        let items = try file.tensors.values.map {
            ShardStream.Item(stored: $0, tensor: try Tensor.empty(dtype: .u8, shape: $0.shape, ledger: ledger))
        }
        let resident = try PageCache.residentBytes(path: path)
        // As ShardStream does: the cold check, then the direct read.
        let direct = try DirectShardRead.isCold(items, in: file) && DirectShardRead.load(items, from: file)
        // A file system without O_DIRECT (tmpfs), or one that kept the pages, is read the usual way.
        let takesDirect =
            (try? DirectIO.openForReading(path)).map {
                try? $0.close()
                return true
            } ?? false
        #expect(direct == (takesDirect && resident < file.fileSize / 2))
        if !direct { try ShardStream.load(items, from: file, staging: nil) }
        let expected = Dictionary(uniqueKeysWithValues: contents)
        for item in items {
            let name = item.stored.name
            let bytes = expected[name] ?? []
            // The first differing byte, not the arrays: a failing #expect on megabytes would diff them for hours.
            let loaded = Array(item.tensor.storage.mutableBytes)
            let firstDifference = zip(loaded, bytes).enumerated().first { $0.element.0 != $0.element.1 }?.offset
            #expect(
                loaded.count == bytes.count && firstDifference == nil,
                "\(name): first difference at \(String(describing: firstDifference))")
        }
        // Direct reads leave the page cache as it was.
        if direct { #expect(try PageCache.residentBytes(path: path) == 0) }
        #expect(ledger.peakBytes == (3 << 20) + (5 << 20) + 5 + 4099 + 7)
    }

    /// A cold shard that converts (bfloat16 → float16) is read directly, piece by piece, into the workers' staging
    /// slices: the converted bytes must be those of the page-cache path, and the page cache stays empty.
    @Test func aColdConvertingShardReadDirectlyConvertsTheSameBytes() throws {
        let folder = try TemporaryFolder("direct-convert")
        defer { folder.remove() }
        let path = folder.file("model.safetensors")
        let sizes = [("a", 10), ("b", (3 << 20) + 6)]
        let contents = sizes.map { name, count in
            (name, (0..<count).map { UInt8(truncatingIfNeeded: ($0 &* 2_654_435_761) >> 11 &+ name.count) })
        }
        try withBuffers(contents.map(\.1)) { buffers in
            let tensors = zip(contents, buffers).map {
                (TensorSpec(name: $0.0, dtype: .bf16, shape: [$0.1.count / 2]), $1)
            }
            try SafetensorsWriter.write(tensors.map { (spec: $0.0, bytes: $0.1) }, metadata: nil, to: path)
        }
        let file = try SafetensorsFile(path: path)
        try PageCache.evict(path: path)
        let ledger = MemoryLedger()
        let staging = try TensorStorage.allocate(byteCount: 2 << 20, ledger: ledger)
        func load(direct: Bool) throws -> [[UInt8]] {
            let items = try file.tensors.values.map {
                ShardStream.Item(stored: $0, tensor: try Tensor.empty(dtype: .f16, shape: $0.shape, ledger: ledger))
            }
            try ShardStream.load(items, from: file, staging: staging.mutableBytes, allowDirect: direct)
            return items.map { Array($0.tensor.storage.mutableBytes) }
        }
        let cold = try load(direct: true)
        let takesDirect =
            (try? DirectIO.openForReading(path)).map {
                try? $0.close()
                return true
            } ?? false
        // Nothing of the file passed through the page cache where the file system takes O_DIRECT.
        if takesDirect { #expect(try PageCache.residentBytes(path: path) == 0) }
        let warm = try load(direct: false)
        #expect(cold.map(\.count) == [10, (3 << 20) + 6])
        let same = cold == warm  // a Bool: a failing #expect on megabytes would diff them for hours
        #expect(same)
    }

    /// Runs `body` with the arrays' bytes as raw buffers.
    private func withBuffers(_ arrays: [[UInt8]], _ body: ([UnsafeRawBufferPointer]) throws -> Void) throws {
        let copies = arrays.map { array in
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: array.count, alignment: 64)
            buffer.copyBytes(from: array)
            return buffer
        }
        defer { for copy in copies { copy.deallocate() } }
        try body(copies.map { UnsafeRawBufferPointer($0) })
    }

    @Test func fixtureFiguresAreTheIssueFormulas() throws {
        // The same figures as literals, so a wrong test reader cannot hide a wrong formula.
        let gemma = try LoadPlan(
            checkpoint: try Checkpoint(path: FixturePaths.path("gemma-tiny-bf16-sharded")), requested: nil
        ).figures
        #expect(gemma.modelBytes == 369_280)
        #expect(gemma.checkpointBytes == 369_280)
        #expect(gemma.largestShardBytes == 131_072)
        #expect(gemma.model32Bytes == 738_560)
        #expect(gemma.largestTensorBytes == 131_072)
        #expect(gemma.stagingBytes == 0)
        #expect(gemma.loadThenCastPeakBytes == 869_632)
        let llama16 = try LoadPlan(
            checkpoint: try Checkpoint(path: FixturePaths.path("llama-tiny-f32-single")), requested: .f16
        ).figures
        #expect(llama16.modelBytes == 328_320)
        #expect(llama16.stagingBytes == 131_072)
        #expect(NaiveLoad().predictedPeakBytes(llama16) == 984_960)
        #expect(SkeletonLoad(name: .dtypeDirect).predictedPeakBytes(llama16) == 459_392)
        #expect(LoadThenCast().predictedPeakBytes(llama16) == 722_176)
    }

    @Test func autoDTypeFollowsConfigThenFirstFloatingTensor() throws {
        let gemma = try LoadPlan(
            checkpoint: try Checkpoint(path: FixturePaths.path("gemma-tiny-bf16-sharded")), requested: nil)
        #expect(gemma.dtype == .bf16)
        #expect(gemma.dtypeSource == .config)
        // A bare file has no config.json: the first floating tensor in data order decides (dtypes: f64 after i64).
        let bare = try LoadPlan(
            checkpoint: try Checkpoint(path: FixturePaths.path("dtypes/dtypes.safetensors")), requested: nil)
        #expect(bare.dtype == .f64)
        #expect(bare.dtypeSource == .firstFloatingTensor)
        #expect(throws: LoadError.self) {
            try LoadPlan(
                checkpoint: try Checkpoint(path: FixturePaths.path("gemma-tiny-bf16-sharded")), requested: .i32)
        }
    }

    @Test func gemmaTiesLmHeadToEmbeddingsOnceInTheLedger() throws {
        let plan = try LoadPlan(
            checkpoint: try Checkpoint(path: FixturePaths.path("gemma-tiny-bf16-sharded")), requested: nil)
        #expect(plan.tiedAliases == ["lm_head.weight": "model.embed_tokens.weight"])
        #expect(plan.missingKeys.isEmpty)
        #expect(plan.unexpectedKeys.isEmpty)
        let ledger = MemoryLedger()
        let model = try SkeletonLoad(name: .lowMemory).load(plan, ledger: ledger, phases: PhaseLog(ledger: ledger))
        let head = try #require(model.tensors["lm_head.weight"])
        let embed = try #require(model.tensors["model.embed_tokens.weight"])
        #expect(head.storage === embed.storage)
        #expect(ledger.liveBytes == 369_280)
    }

    /// A checkpoint that lacks a model key and has an extra one: reported, materialised, or refused with --strict.
    @Test func missingAndUnexpectedKeys() throws {
        let folder = try TemporaryFolder("keys")
        defer { folder.remove() }
        let source = try Checkpoint(path: FixturePaths.path("llama-tiny-f32-single"))
        var tensors: [(spec: TensorSpec, bytes: [UInt8])] = []
        for (name, location) in source.tensors where name != "model.norm.weight" {
            tensors.append((location.tensor.spec, try readAll(source.files[location.fileIndex], location.tensor)))
        }
        tensors.append((TensorSpec(name: "extra.bias", dtype: .f32, shape: [4]), [UInt8](repeating: 0, count: 16)))
        try withArrays(tensors.map(\.bytes)) { buffers in
            try SafetensorsWriter.write(
                Array(zip(tensors.map(\.spec), buffers)), metadata: ["format": "pt"],
                to: folder.file("model.safetensors"))
        }
        _ = try folder.write("config.json", try fileBytes(FixturePaths.path("llama-tiny-f32-single/config.json")))
        let plan = try LoadPlan(checkpoint: try Checkpoint(path: folder.path), requested: nil)
        #expect(plan.missingKeys == ["model.norm.weight"])
        #expect(plan.unexpectedKeys == ["extra.bias"])
        #expect(throws: LoadError.self) { try plan.checkStrict() }
        let ledger = MemoryLedger()
        let model = try SkeletonLoad(name: .lowMemory).load(plan, ledger: ledger, phases: PhaseLog(ledger: ledger))
        // The missing RMSNorm weight is materialised as a fresh model would have it: 64 ones in float32.
        let norm = try #require(model.tensors["model.norm.weight"])
        #expect(
            Array(norm.storage.bytes)
                == Array(repeating: [0x00, 0x00, 0x80, 0x3F] as [UInt8], count: 64).flatMap { $0 })
        #expect(model.tensors["extra.bias"] == nil)
        // Every model parameter once (the norm materialised), the extra tensor never.
        #expect(ledger.peakBytes == 656_640)
    }

    @Test func wrongShapeIsRefused() throws {
        let folder = try TemporaryFolder("shape")
        defer { folder.remove() }
        var config = try ModelConfig.load(path: FixturePaths.path("llama-tiny-f32-single/config.json"))
        var fields = config.fields
        fields["vocab_size"] = JSONValue(513)
        config = ModelConfig(path: "config.json", fields: fields)
        _ = try folder.write("config.json", JSONWriter.pythonSorted.bytes(.object(config.fields)))
        try FileManager.default.copyItem(
            atPath: FixturePaths.path("llama-tiny-f32-single/model.safetensors"),
            toPath: folder.file("model.safetensors"))
        #expect {
            _ = try LoadPlan(checkpoint: try Checkpoint(path: folder.path), requested: nil)
        } throws: { error in
            guard let error = error as? LoadError else { return false }
            return error.rule == .shapeMismatch && error.description.contains("model.embed_tokens.weight")
                && error.description.contains("[512, 64]") && error.description.contains("[513, 64]")
        }
    }
}

/// The ledger's exact accounting: live, peak, reset, per device, budgets.
@Suite struct MemoryLedgerTests {
    @Test func livePeakResetAndBudgets() throws {
        let ledger = MemoryLedger()
        try ledger.allocate(1000)
        try ledger.allocate(500, on: .accelerator(0))
        ledger.release(1000)
        #expect(ledger.liveBytes == 500)
        #expect(ledger.peakBytes == 1500)
        #expect(ledger.peakBytes(on: .cpu) == 1000)
        ledger.resetPeak()
        #expect(ledger.peakBytes == 500)
        #expect(ledger.peakBytes(on: .cpu) == 0)
        ledger.setBudget(600, for: .accelerator(0))
        #expect(
            throws: OutOfMemoryError(device: .accelerator(0), requestedBytes: 200, liveBytes: 500, budgetBytes: 600)
        ) {
            try ledger.allocate(200, on: .accelerator(0))
        }
        try ledger.allocate(4096, on: .disk)
        #expect(ledger.liveBytes == 500)  // disk bytes are not RAM
        ledger.setTotalBudget(700)
        #expect(throws: OutOfMemoryError.self) { try ledger.allocate(201) }
        try ledger.allocate(200)
        #expect(ledger.peakBytes == 700)
    }

    /// The observer runs at the first release after the RAM peak rose by the step, seeing the ledger as it stood
    /// at the peak; not at a release below the step, nor twice for one peak, nor for disk or accelerator bytes.
    @Test func peakObserverFiresOncePerStepAtTheFirstFree() throws {
        let ledger = MemoryLedger()
        let seen = Mutex<[Int]>([])
        try ledger.allocate(50)
        ledger.observePeaks(stepBytes: 100) { [ledger] in seen.withLock { $0.append(ledger.liveBytes) } }
        try ledger.allocate(60)  // peak 110: 60 over the peak at installation, under the step
        ledger.release(60)
        try ledger.allocate(150)  // peak 200: the step is reached, the next free is observed
        try ledger.allocate(30, on: .disk)
        ledger.release(30, on: .disk)  // not RAM: not observed
        ledger.release(100)
        ledger.release(50)  // the same peak: not again
        try ledger.allocate(250)  // peak 300
        ledger.release(10)
        ledger.resetPeak()  // peak 290: the next step counts from here
        try ledger.allocate(60)
        ledger.release(60)
        try ledger.allocate(100)  // peak 390
        ledger.observePeaks(stepBytes: 100, nil)
        ledger.release(100)
        #expect(seen.withLock { $0 } == [200, 300])
    }
}

/// The shard stream (every core taking pieces of a whole shard) on tensors of many pieces: what low-memory,
/// dtype-direct and mmap load equals each stored tensor read whole and converted in one call, byte for byte.
@Suite struct ShardStreamTests {
    @Test(arguments: [DType.f16, .f32, .bf16])
    func piecesAssembleTheWholeTensor(target: DType) throws {
        let folder = try TemporaryFolder("stream")
        defer { folder.remove() }
        // The tiny Llama with a 20,000-token vocabulary: a 10 MB bfloat16 embedding (40 conversion pieces of
        // 256 KiB, two 8 MiB read pieces), 2 shards.
        let config = try ModelConfig.parse(
            Array(tinyModelConfig.replacingOccurrences(of: "8000", with: "20000").utf8), path: "config.json")
        try SyntheticCheckpoint(config: config, dtype: .bf16, maxShardSize: 12_000_000, seed: 3, scale: 1).write(
            to: folder.path)
        let plan = try LoadPlan(checkpoint: try Checkpoint(path: folder.path), requested: target)
        #expect(plan.checkpoint.files.count == 2)
        for strategy in [StrategyName.dtypeDirect, .lowMemory, .mmap] {
            let ledger = MemoryLedger()
            let model = try strategy.strategy.load(plan, ledger: ledger, phases: PhaseLog(ledger: ledger))
            #expect(ledger.peakBytes == strategy.strategy.predictedPeakBytes(plan.figures))
            for parameter in plan.parameters {
                let source = try #require(parameter.source)
                let stored = try readAll(plan.checkpoint.files[source.fileIndex], source.tensor)
                var expected = [UInt8](repeating: 0, count: parameter.byteCount)
                stored.withUnsafeBytes { input in
                    expected.withUnsafeMutableBytes {
                        DTypeConversion.convert(input, from: source.tensor.dtype, into: $0, to: parameter.dtype)
                    }
                }
                let loaded = try #require(model.tensors[parameter.name])
                #expect(
                    Array(loaded.storage.bytes) == expected,
                    "\(strategy.rawValue) \(parameter.name) → \(target.torchName)")
            }
        }
    }
}
