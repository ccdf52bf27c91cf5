import Foundation
import OSLayer
import TensorEngine

/// The Python stack's loaders that `bench load` times the engine against (`python/bench_peers.py`), each run
/// in a fresh interpreter and timed inside it around the load alone.
enum PeerLoaders {
    struct Peer: Sendable {
        var name: String
        var description: String
        /// False for a peer that keeps views of the mapped files (compared with mmap, not with the copying paths).
        var copies = true
    }

    static let peers = [
        Peer(
            name: "torch safe_open+clone",
            description:
                "safe_open(framework=\"pt\"), get_tensor(name).clone() for every tensor: owned, resident copies"),
        Peer(
            name: "load_file+clone",
            description: "safetensors.torch.load_file per shard, every tensor cloned: owned, resident copies"),
        Peer(
            name: "load_file+touch",
            description:
                "safetensors.torch.load_file per shard, every page read once: views of the mapped files, like mmap",
            copies: false),
        Peer(
            name: "safetensors pread",
            description: "safe_open(backend=\"pread\"), get_tensor for every tensor: owned tensors, no mapping"),
        Peer(
            name: "runai-streamer owned",
            description: "SafetensorsStreamer().stream_files(shards, owned=True): owned tensors, its reader threads"),
        Peer(
            name: "fastsafetensors",
            description: "fastsafe_open(shards, nogds=True), get_tensor for every tensor: its buffers, shared"),
    ]

    /// The script's name for each peer.
    static let scriptNames = [
        "torch safe_open+clone": "safe_open_clone", "load_file+clone": "load_file_clone",
        "load_file+touch": "load_file_touch", "safetensors pread": "safe_open_pread",
        "runai-streamer owned": "runai_owned", "fastsafetensors": "fastsafetensors",
    ]

    /// One run of a peer: its seconds and its process's peak RSS, or why this Python cannot run it.
    enum Outcome: Sendable {
        case measured(seconds: Double, maxRSSBytes: Int?)
        case unavailable(String)
    }

    struct Found: Sendable {
        var python: String
        var script: String
        var versions: [String: String]
    }

    enum Availability: Sendable {
        case available(Found)
        case skipped(String)
    }

    /// The interpreter and the script, when the interpreter imports torch and safetensors.
    static func find(python requested: String?) -> Availability {
        let given =
            requested ?? ProcessInfo.processInfo.environment["BIGMODEL_BENCH_PYTHON"] ?? LoaderEnvironment.setupPython
            ?? "python3"
        do {
            let python = try LoaderEnvironment.program(given, what: "the Python interpreter of the peers")
            let script = try LoaderEnvironment.findScript("bench_peers.py")
            let versions = try LoaderEnvironment.importCheck(python, packages: ["torch", "safetensors"])
            return .available(Found(python: python, script: script, versions: versions))
        } catch {
            return .skipped("\(error)")
        }
    }

    /// Runs one peer once; its seconds as the script measured them.
    /// `levelBytes`: fresh memory the peer writes and frees after its imports, right before its load
    /// (``MemoryLeveling``); its peak is then the load's alone (VmHWM reset with `clear_refs`).
    static func run(_ name: String, python: String, script: String, checkpoint: String, levelBytes: Int = 0) throws
        -> Outcome
    {
        struct Reply: Decodable {
            let seconds: Double?
            let maxRssBytes: Int?
            let unavailable: String?
        }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("bigmodel-bench-peer-\(getpid())")
            .path
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let output = folder + "/reply.json"
        let log = folder + "/stderr.txt"
        let environment = [
            "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin", "HOME": NSHomeDirectory(),
            "PYTHONDONTWRITEBYTECODE": "1",
        ]
        let child = try ChildProcess.spawn(
            executable: python, arguments: [script, checkpoint, scriptNames[name] ?? name, String(levelBytes)],
            environment: environment,
            options: .init(standardInput: .null, standardOutput: .file(output), standardError: .file(log)))
        let exit = try child.wait()
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        guard exit.termination == .exited(code: 0), let data = FileManager.default.contents(atPath: output),
            let reply = try? decoder.decode(Reply.self, from: data)
        else {
            let tail =
                (try? String(contentsOfFile: log, encoding: .utf8))?.split(separator: "\n").last.map(String.init) ?? ""
            throw FailureMessage("the peer '\(name)' failed (\(exit.termination)): \(tail)", category: .io)
        }
        if let why = reply.unavailable { return .unavailable(why) }
        return .measured(seconds: reply.seconds ?? 0, maxRSSBytes: reply.maxRssBytes)
    }
}
