import Checkpoint
import Foundation
import Models
import OSLayer
import StrictJSON
import TensorEngine

/// Generated checkpoints, made once per (config, dtype, shard size, scale, seed) and reused.
///
/// Each lives in `<work-dir>/checkpoints/<scenario>-<dtype>-x<scale>-s<seed>-<key>/`, where key is a digest of
/// everything that determines its bytes (the generator's version included). A folder appears only when
/// complete (the writer renames a staging folder into place), so existence means usable; a folder that no
/// longer opens is removed and made again. Staging folders of processes that died are swept first.
package struct CheckpointCache: Sendable {
    /// Bump when the generator's output changes for the same inputs.
    package static let generatorVersion = 1

    package let root: String

    package init(workDirectory: String) {
        self.root = workDirectory + "/checkpoints"
    }

    /// The folder a synthetic checkpoint is cached in.
    package func folder(for synthetic: SyntheticCheckpoint, scenario: String) -> String {
        var text = JSONWriter.pythonSorted.string(.object(synthetic.config.fields))
        text +=
            "|\(synthetic.dtype.safetensorsName)|\(synthetic.maxShardSize)|\(synthetic.scale)|\(synthetic.seed)|v\(Self.generatorVersion)"
        let key = String(Digest.sha256Hex(Array(text.utf8)).prefix(12))
        let scale = ByteSize.fixed(synthetic.scale, digits: 3)
        return root + "/\(scenario)-\(synthetic.dtype.torchName)-x\(scale)-s\(synthetic.seed)-\(key)"
    }

    /// True when the checkpoint is already cached and opens cleanly.
    package func isCached(_ synthetic: SyntheticCheckpoint, scenario: String) -> Bool {
        let folder = folder(for: synthetic, scenario: scenario)
        guard FileManager.default.fileExists(atPath: folder) else { return false }
        return (try? Checkpoint(path: folder)) != nil
    }

    /// Returns the cached checkpoint's folder, generating it first when needed.
    /// `reused` tells which; `seconds` is the generation time (nil when reused). The cache is locked while
    /// it is checked and filled (`<root>/.lock`), so processes sharing a work folder (two `run`s, the ranks
    /// of a job) generate a checkpoint once and the others wait for it.
    package func checkpoint(
        for synthetic: SyntheticCheckpoint, scenario: String, progress: (Int) -> Void = { _ in },
        isCancelled: () -> Bool = { false }
    ) throws -> (folder: String, reused: Bool, seconds: Double?) {
        let fm = FileManager.default
        try? fm.createDirectory(atPath: root, withIntermediateDirectories: true)
        guard let lock = try FileLock.acquire(root + "/.lock", isCancelled: isCancelled) else {
            throw WriteInterrupted(path: root)
        }
        defer { lock.release() }
        sweepAbandonedStaging()
        let folder = folder(for: synthetic, scenario: scenario)
        if fm.fileExists(atPath: folder) {
            if (try? Checkpoint(path: folder)) != nil { return (folder, true, nil) }
            try? fm.removeItem(atPath: folder)
        }
        let summary = try synthetic.write(to: folder, progress: progress, isCancelled: isCancelled)
        return (folder, false, summary.seconds)
    }

    /// Removes `.NAME.partial-PID` staging folders whose process no longer exists.
    func sweepAbandonedStaging() {
        let fm = FileManager.default
        for name in (try? fm.contentsOfDirectory(atPath: root)) ?? []
        where name.hasPrefix(".") && name.contains(".partial-") {
            guard let pidText = name.split(separator: "-").last, let pid = Int32(pidText) else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH {
                try? fm.removeItem(atPath: root + "/" + name)
            }
        }
    }
}
