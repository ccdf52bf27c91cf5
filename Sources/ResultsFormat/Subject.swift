import Foundation
import Loading
import TensorEngine

/// Who loads the checkpoint in a run: bigmodel-bench's own engine (its exact ledger and jemalloc figures),
/// transformers itself (the Python driver `python/bigmodel_bench_driver.py`), or any loader command. Every
/// subject is held to the same claim — its run's strategy — and measured by the same kernel probes; only the
/// engine has a ledger and jemalloc statistics.
///
/// In a scenario: `"subject": "engine"` (the default), `"transformers"`, a fast loader (`"safetensors"`,
/// `"runai-streamer"`, `"fastsafetensors"`: `python/bigmodel_bench_fast_loaders.py`), or
/// `{"command": ["python3", "my_loader.py", "{checkpoint}", "{dtype}"]}` with the placeholders `{checkpoint}`
/// (the checkpoint folder), `{dtype}` (the target dtype's torch name, or `auto`), `{config}` (its
/// config.json) and `{offload}` (the run's offload folder).
package enum Subject: Sendable, Hashable, Codable, CustomStringConvertible {
    case engine
    case transformers
    /// A fast loader that reads a checkpoint folder into a state dict (`python/bigmodel_bench_fast_loaders.py`).
    case fastLoader(FastLoader)
    case command([String])

    /// The loaders users reach for when a checkpoint must load fast, each driven as its documentation says.
    package enum FastLoader: String, Sendable, Hashable, CaseIterable {
        case safetensors
        case runaiStreamer = "runai-streamer"
        case fastsafetensors

        /// The module the driver imports.
        package var module: String {
            switch self {
            case .safetensors: "safetensors"
            case .runaiStreamer: "runai_model_streamer"
            case .fastsafetensors: "fastsafetensors"
            }
        }

        /// What `pip install` takes.
        package var distribution: String {
            switch self {
            case .safetensors: "safetensors"
            case .runaiStreamer: "runai-model-streamer"
            case .fastsafetensors: "fastsafetensors"
            }
        }
    }

    /// Every subject a name selects (`--subject`, `"subject"`): `engine`, `transformers`, `safetensors`,
    /// `runai-streamer`, `fastsafetensors`.
    package static let named: [String: Subject] =
        ["engine": .engine, "transformers": .transformers].merging(
            FastLoader.allCases.map { ($0.rawValue, Subject.fastLoader($0)) }, uniquingKeysWith: { first, _ in first })

    /// The name in run ids (`naive@transformers`) and tables.
    package var name: String {
        switch self {
        case .engine: "engine"
        case .transformers: "transformers"
        case .fastLoader(let loader): loader.rawValue
        case .command: "command"
        }
    }

    /// Whether the subject can be held to `strategy`'s claim: a fast loader reads a state dict and places no
    /// modules, so it has no device-map run.
    package func supports(_ strategy: StrategyName) -> Bool {
        if case .fastLoader = self { return strategy != .deviceMap }
        return true
    }

    package var description: String {
        if case .command(let argv) = self { return "command `\(argv.joined(separator: " "))`" }
        return name
    }

    /// True for this tool's own engine; every other subject is a loader measured from outside.
    package var isEngine: Bool { self == .engine }

    /// Driven by one of this tool's Python drivers (transformers, the fast loaders).
    package var isPython: Bool {
        switch self {
        case .transformers, .fastLoader: true
        case .engine, .command: false
        }
    }

    /// What a run id carries after its strategy and dtype: nothing for the engine, `@transformers` for a loader.
    package var runIDSuffix: String { isEngine ? "" : "@" + name }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let name = try? container.decode(String.self) {
            guard let subject = Subject.named[name] else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "unknown subject '\(name)'")
            }
            self = subject
            return
        }
        struct Command: Codable { var command: [String] }
        self = .command(try container.decode(Command.self).command)
    }

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .engine, .transformers, .fastLoader: try container.encode(name)
        case .command(let argv): try container.encode(["command": argv])
        }
    }

    /// The default tolerance for claims on this subject: the engine's (3% + 32 MiB), or for a loader outside
    /// this tool 10% + 128 MiB (an interpreter, its imports and its allocator's slack are part of its peak).
    package static let loaderTolerance = ClaimTolerance(relative: 0.10, absoluteBytes: 128 << 20)

    /// `argv` with the placeholders replaced.
    package static func expand(_ argv: [String], checkpoint: String, dtype: DType?, config: String, offload: String?)
        -> [String]
    {
        argv.map {
            $0.replacingOccurrences(of: "{checkpoint}", with: checkpoint)
                .replacingOccurrences(of: "{dtype}", with: dtype?.torchName ?? "auto")
                .replacingOccurrences(of: "{config}", with: config)
                .replacingOccurrences(of: "{offload}", with: offload ?? "")
        }
    }
}
