import Checkpoint
import Foundation
import Loading
import OSLayer
import TensorEngine

/// `run CHECKPOINT_DIR`: the scenario a checkpoint folder makes on its own, so that a downloaded model or a
/// fine-tune is the whole command.
///
/// Every strategy that applies, at scale 1 (the folder is loaded as it is): naive, sharded, low-memory and mmap
/// at the stored dtype, and — when the weights are floating — dtype-direct and load-then-cast to the other
/// half-precision dtype (bfloat16 ↔ float16; float32 checkpoints to bfloat16, the dtype they are trained in
/// and served from). The folder's own config.json is the model's (`"model"` is left out, as for any existing
/// checkpoint). The scenario is named after the folder. `--save-scenario FILE` writes the same JSON for editing.
package enum FolderScenario {
    /// Whether `path` is a folder holding safetensors files or an index (not a scenario file).
    package static func isCheckpointFolder(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
            return false
        }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        return names.contains { $0.hasSuffix(".safetensors") || $0 == ShardIndex.fileName }
    }

    /// The scenario's JSON text for the folder (its headers read, nothing loaded).
    package static func json(folder: String) throws -> String {
        let absolute = URL(fileURLWithPath: folder).standardizedFileURL.path
        let checkpoint = try Checkpoint(path: absolute)
        let stored = try LoadPlan(checkpoint: checkpoint, requested: nil).dtype
        var runs = [#"{"strategy": "naive"}"#, #"{"strategy": "sharded"}"#, #"{"strategy": "low-memory"}"#]
        runs.append(#"{"strategy": "mmap"}"#)
        if let other = otherHalf(stored) {
            runs.append(#"{"strategy": "dtype-direct", "dtype": "\#(other.torchName)"}"#)
            runs.append(#"{"strategy": "load-then-cast", "dtype": "\#(other.torchName)"}"#)
        }
        let name = self.name(absolute)
        let description =
            "Every strategy on the checkpoint folder \(absolute) (\(checkpoint.files.count) file\(checkpoint.files.count == 1 ? "" : "s"), \(ByteSize.decimal(checkpoint.totalSize)) in \(stored.torchName)), as bigmodel-bench run made it from the folder."
        return """
            {
              "name": \(quoted(name)),
              "description": \(quoted(description)),
              "checkpoint": {"path": \(quoted(absolute))},
              "scale": 1,
              "runs": [
                \(runs.joined(separator: ",\n    "))
              ]
            }

            """
    }

    /// `--save-scenario FILE`: the folder's scenario written to `file` (atomically); a usage error when `path` is
    /// not a checkpoint folder (a scenario file is already a file to edit).
    package static func save(folder path: String, to file: String) throws {
        guard isCheckpointFolder(path) else {
            throw UsageError("--save-scenario applies to a checkpoint folder; \(path) is not one")
        }
        try AtomicFile.write(Array(try json(folder: path).utf8), to: file)
    }

    /// The scenario itself; `file` names it in messages (the folder).
    package static func scenario(folder: String) throws -> Scenario {
        try Scenario.parse(Array(try json(folder: folder).utf8), file: folder)
    }

    /// bfloat16 ↔ float16, float32 → bfloat16; nil for weights that are not floating.
    static func otherHalf(_ dtype: DType) -> DType? {
        switch dtype {
        case .bf16: .f16
        case .f16, .f32: .bf16
        default: nil
        }
    }

    /// The folder's name as a scenario name: letters, digits, `-_.` kept, anything else `-`, at most 100, not
    /// starting with `.`.
    static func name(_ folder: String) -> String {
        let base = URL(fileURLWithPath: folder).lastPathComponent
        var name = String(base.map { c in (c.isASCII && (c.isLetter || c.isNumber)) || "-_.".contains(c) ? c : "-" })
        while name.hasPrefix(".") { name.removeFirst() }
        name = String(name.prefix(100))
        return name.isEmpty ? "checkpoint" : name
    }

    static func quoted(_ text: String) -> String {
        let data = (try? JSONEncoder().encode(text)) ?? Data("\"\"".utf8)
        return String(decoding: data, as: UTF8.self).replacingOccurrences(of: "\\/", with: "/")
    }
}
