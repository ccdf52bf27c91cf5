import Checkpoint
import Foundation
import OSLayer
import ResultsFormat
import TensorEngine

/// The ranks of one job on one node, meeting through files: `measure-rank` processes started by torchrun
/// or `srun` know each other only by the job's key and their rank numbers.
///
/// The folder is `<work-dir>/ranks/<job>/`, the job's key `TORCHELASTIC_RUN_ID` (torchrun), else
/// `SLURM_JOB_ID` (srun), else `BIGMODEL_BENCH_JOB`, else `local`. A barrier: each rank writes
/// `<stage>-<rank>` and waits until `LOCAL_WORLD_SIZE` such files of this job exist. The last rank to leave
/// removes the folder; files a crashed job left behind stop counting after ten minutes (torchrun without
/// `--standalone` or `--rdzv-id` names every job `none`, so two jobs started within ten minutes of a crash
/// need distinct `BIGMODEL_BENCH_JOB`s).
/// A fitted scale is chosen once, by the first rank there, and written to `scale.json` for the others.
package struct RankJob: Sendable {
    package let key: String
    package let folder: String
    package let rank: RankInfo
    /// Barrier files older than this (seconds since the epoch) belong to an earlier job.
    let notBefore: Double

    package static func key(environment: [String: String]) -> String {
        let key =
            environment["TORCHELASTIC_RUN_ID"] ?? environment["SLURM_JOB_ID"] ?? environment["BIGMODEL_BENCH_JOB"]
            ?? "local"
        return String(
            key.prefix(64).map { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) ? $0 : "_" })
    }

    package init(workDirectory: String, rank: RankInfo, environment: [String: String]) throws {
        key = Self.key(environment: environment)
        folder = workDirectory + "/ranks/" + key
        self.rank = rank
        notBefore = Date().timeIntervalSince1970 - 600
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw FileIOError(
                path: folder, operation: "create the job's barrier folder", reason: error.localizedDescription)
        }
    }

    /// Writes this rank's `<stage>-<rank>` (once; a stale one from an earlier job is replaced).
    package func arrive(_ stage: String) {
        let path = folder + "/\(stage)-\(rank.localRank)"
        if (modified(path) ?? 0) < notBefore {
            _ = FileManager.default.createFile(atPath: path, contents: Data("\(getpid())\n".utf8))
        }
    }

    /// The node's local ranks that reached `stage` (this job's files only).
    func arrived(_ stage: String) -> Set<Int> {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        return Set(
            names.compactMap { name -> Int? in
                guard name.hasPrefix(stage + "-"), let index = Int(name.dropFirst(stage.count + 1)),
                    index >= 0, index < rank.localWorldSize, (modified(folder + "/" + name) ?? 0) >= notBefore
                else { return nil }
                return index
            })
    }

    /// All the node's ranks reached `stage`.
    package func allArrived(_ stage: String) -> Bool { arrived(stage).count >= rank.localWorldSize }

    package func gate(_ stage: String) -> ChildRunner.Gate {
        ChildRunner.Gate(
            arrive: { arrive(stage) }, isOpen: { allArrived(stage) },
            missing: {
                let came = arrived(stage)
                return (0..<rank.localWorldSize).filter { !came.contains($0) }
            }, ranks: rank.localWorldSize)
    }

    /// The rendezvous failed: this rank's barrier files go, and the job's folder with them when no other rank of
    /// this job left a file there (a rank that comes later starts a rendezvous of its own).
    package func abandon() {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        for name in names where name.hasSuffix("-\(rank.localRank)") {
            try? FileManager.default.removeItem(atPath: folder + "/" + name)
        }
        guard let lock = try? FileLock.acquire(folder + "/.lock", isCancelled: { false }) else { return }
        defer { lock.release() }
        let others = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter {
            $0.contains("-") && !$0.hasPrefix(".") && (modified(folder + "/" + $0) ?? 0) >= notBefore
        }
        if others.isEmpty { try? FileManager.default.removeItem(atPath: folder) }
    }

    /// This rank is past every barrier; the last to leave removes the job's folder.
    package func leave() {
        arrive("left")
        guard let lock = try? FileLock.acquire(folder + "/.lock", isCancelled: { false }) else { return }
        defer { lock.release() }
        if allArrived("left") { try? FileManager.default.removeItem(atPath: folder) }
    }

    func modified(_ path: String) -> Double? {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date)?.timeIntervalSince1970
    }

    /// The scale every rank of the job uses: `choose()` once, by whoever takes the lock first.
    package func sharedScale(_ choose: () throws -> ScaleInfo) throws -> ScaleInfo {
        guard let lock = try FileLock.acquire(folder + "/.lock", isCancelled: { SignalTrap.interrupted }) else {
            throw FailureMessage("interrupted while waiting for the job's lock \(folder)/.lock", category: .interrupted)
        }
        defer { lock.release() }
        let path = folder + "/scale.json"
        if (modified(path) ?? 0) >= notBefore, let data = FileManager.default.contents(atPath: path),
            let shared = try? ResultsCodec.decoder.decode(ScaleInfo.self, from: data)
        {
            return shared
        }
        var scale = try choose()
        scale.reason += " (chosen by local rank \(rank.localRank) for all \(rank.localWorldSize))"
        try AtomicFile.write(ResultsCodec.encode(scale), to: path, sync: false)
        return scale
    }
}
