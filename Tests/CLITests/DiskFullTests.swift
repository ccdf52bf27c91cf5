import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Full and read-only disks, on small tmpfs mounts: every writer fails with 74 and one line naming the file
/// and the cause, and leaves nothing on the disk. Mounting needs root (CAP_SYS_ADMIN); elsewhere the suite is
/// skipped, and says so.
@Suite(.serialized, .enabled(if: SmallDisk.canMount, "needs root to mount a tmpfs (run as root to test full disks)"))
struct DiskFullTests {
    /// A 154 MB checkpoint (vocabulary 150,000, untied): about 20 shards of 8 MB, a second of writing.
    static var mediumConfig: String {
        tinyModelConfig.replacingOccurrences(of: #""vocab_size": 8000"#, with: #""vocab_size": 150000"#)
    }

    /// What the free-space check asks of a disk for `config` at 8 MB shards: total_size + (shards + 2) MiB,
    /// from `generate --dry-run`.
    static func neededBytes(_ config: String) throws -> Int {
        let dry = try Executable.run(["generate", "--config", config, "--dry-run", "--max-shard-size", "8MB"])
        let total = try #require(
            dry.stdout.split(separator: "\n").first { $0.hasPrefix("total_size ") }?.split(separator: " ")[1]
        ).description
        let shards = dry.stdout.split(separator: "\n").filter { $0.hasPrefix("model-") }.count
        return (try #require(Int(total))) + (shards + 2) << 20 + (1 << 20)
    }
    /// `generate` on a disk that fills while it writes (the free-space check passes; then a filler takes the
    /// rest as soon as the staging folder appears): no space left, nothing left.
    @Test func generateOnADiskThatFillsLeavesNothing() throws {
        let folder = try TemporaryFolder("diskfull")
        defer { folder.remove() }
        let config = try folder.write("config.json", text: Self.mediumConfig)
        let disk = try SmallDisk(at: folder.file("disk"), bytes: try Self.neededBytes(config))
        defer { disk.unmount() }
        let result = try disk.fillingWhileRunning([
            "generate", "--config", config, "--out", disk.path + "/out", "--max-shard-size", "8MB",
        ])
        #expect(result.status == 74, "\(result.stderr)")
        #expect(result.stderrLines.filter { !$0.hasPrefix("generate: ") }.count == 1, "\(result.stderr)")
        #expect(
            result.stderr.contains("No space left on device") || result.stderr.contains("no space left on device"),
            "\(result.stderr)")
        #expect(try disk.contents() == [SmallDisk.fillerName])
    }

    /// `reshard` to float32 on a disk that fills while it writes.
    @Test func reshardOnADiskThatFillsLeavesNothing() throws {
        let folder = try TemporaryFolder("diskfull")
        defer { folder.remove() }
        let config = try folder.write("config.json", text: Self.mediumConfig)
        #expect(
            try Executable.run(["generate", "--config", config, "--out", folder.file("src"), "--max-shard-size", "8MB"])
                .status == 0)
        // float32 doubles the bytes; the same shard count plus two.
        let disk = try SmallDisk(at: folder.file("disk"), bytes: 2 * (try Self.neededBytes(config)) + (4 << 20))
        defer { disk.unmount() }
        let result = try disk.fillingWhileRunning([
            "reshard", folder.file("src"), "--out", disk.path + "/dst", "--dtype", "float32",
        ])
        #expect(result.status == 74, "\(result.stderr)")
        #expect(result.stderr.lowercased().contains("no space left on device"), "\(result.stderr)")
        #expect(try disk.contents() == [SmallDisk.fillerName])
    }

    /// A report whose charts do not all fit: no chart without its report, no report without its charts.
    @Test func reportOnAFullDiskWritesNothing() throws {
        let whole = try TemporaryFolder("report")
        defer { whole.remove() }
        let results = FixturePaths.path("results/smoke.json")
        #expect(try Executable.run(["report", results, "--out", whole.path]).status == 0)
        let bytes = try whole.contents().reduce(0) {
            $0 + ((try FileManager.default.attributesOfItem(atPath: whole.file($1))[.size] as? Int) ?? 0)
        }
        let disk = try SmallDisk(at: whole.file("disk"), bytes: (bytes / 2) & ~4095)
        defer { disk.unmount() }
        let result = try Executable.run(["report", results, "--out", disk.path])
        #expect(result.status == 74, "\(result.stderr)")
        #expect(result.stderrLines.count == 1, "\(result.stderr)")
        #expect(result.stderr.contains(": cannot write: "), "\(result.stderr)")
        #expect(try disk.contents().isEmpty)
    }

    /// A device-map load whose offload folder fills: the `.dat` files written so far and the folder it made go.
    @Test func deviceMapWithAFullOffloadFolderLeavesNothing() throws {
        let folder = try TemporaryFolder("offloadfull")
        defer { folder.remove() }
        let config = try folder.write("config.json", text: tinyModelConfig)
        #expect(
            try Executable.run(["generate", "--config", config, "--out", folder.file("ck"), "--max-shard-size", "4MB"])
                .status == 0)
        let disk = try SmallDisk(at: folder.file("disk"), bytes: 3 << 20)
        defer { disk.unmount() }
        let offload = disk.path + "/offload"
        let result = try Executable.run([
            "load", folder.file("ck"), "--strategy", "device-map", "--device-map", "auto", "--max-memory",
            "0=1MB,cpu=1MB", "--dtype", "float16",
            "--offload-folder", offload,
        ])
        #expect(result.status == 74, "\(result.stderr)")
        #expect(
            result.stderrLines == [
                "bigmodel-bench: error: \(offload)/model.embed_tokens.weight.dat: write failed: No space left on device"
            ])
        #expect(try disk.contents().isEmpty)
    }

    /// A read-only disk is reported as read-only (not as too small), and the offload folder's message is plain.
    @Test func aReadOnlyDiskIsSaidToBeReadOnly() throws {
        let folder = try TemporaryFolder("readonly")
        defer { folder.remove() }
        let config = try folder.write("config.json", text: tinyModelConfig)
        #expect(
            try Executable.run(["generate", "--config", config, "--out", folder.file("ck"), "--max-shard-size", "4MB"])
                .status == 0)
        let disk = try SmallDisk(at: folder.file("disk"), bytes: 64 << 20, readOnly: true)
        defer { disk.unmount() }
        try FaultTests.refused(
            [
                "run", FixturePaths.repository + "/Scenarios/smoke.json", "--out", disk.path + "/reports", "--work-dir",
                folder.file("work"),
            ], status: 74,
            message: "\(disk.path)/reports: create folder failed: read-only file system")
        try FaultTests.refused(
            ["generate", "--config", config, "--out", disk.path + "/out"], status: 74,
            message: "\(disk.path)/out: write failed: \(disk.path) is on a read-only file system")
        try FaultTests.refused(
            [
                "load", folder.file("ck"), "--strategy", "device-map", "--device-map", "auto", "--max-memory",
                "0=1MB,cpu=1MB", "--offload-folder", disk.path + "/off",
            ],
            status: 74, message: "\(disk.path)/off: create the offload folder failed: read-only file system")
        try FaultTests.refused(
            [
                "load", folder.file("ck"), "--strategy", "device-map", "--device-map", "auto", "--max-memory",
                "0=1MB,cpu=1MB", "--offload-folder", config,
            ],
            status: 74,
            message: "\(config): create the offload folder failed: a file is in the way (it is not a folder)")
    }
}

/// A tmpfs of a given size mounted on a fresh folder, unmounted (and the folder removed) at the end.
struct SmallDisk {
    static let fillerName = "filler"
    let path: String

    /// Whether this process may mount (root, and a kernel that lets it): tried once on a scratch folder.
    static let canMount: Bool = {
        guard getuid() == 0, let folder = try? TemporaryFolder("canmount") else { return false }
        defer { folder.remove() }
        guard let disk = try? SmallDisk(at: folder.file("probe"), bytes: 1 << 20) else { return false }
        disk.unmount()
        return true
    }()

    init(at path: String, bytes: Int, readOnly: Bool = false) throws {
        self.path = path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let options = "size=\(max(bytes, 4096))" + (readOnly ? ",ro" : "")
        guard let result = runTool("/bin/mount", ["-t", "tmpfs", "-o", options, "tmpfs", path]), result.status == 0
        else {
            throw SmallDiskError.mountFailed(path)
        }
    }

    func unmount() {
        _ = runTool("/bin/umount", [path])
        try? FileManager.default.removeItem(atPath: path)
    }

    func contents() throws -> [String] { try FileManager.default.contentsOfDirectory(atPath: path).sorted() }

    /// Runs the tool; as soon as it creates anything on this disk, fills the disk's free space (a file
    /// `filler`, `fallocate`), so the writer runs out of space mid-write, after its free-space check.
    func fillingWhileRunning(_ arguments: [String]) throws -> ProcessResult {
        let filler = path + "/" + Self.fillerName
        let disk = path
        let finished = NSLock()
        nonisolated(unsafe) var toolEnded = false
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            defer { done.signal() }
            while ((try? FileManager.default.contentsOfDirectory(atPath: disk)) ?? []).isEmpty {
                if finished.withLock({ toolEnded }) { return }
                usleep(500)
            }
            var info = statvfs()
            guard statvfs(disk, &info) == 0 else { return }
            let free = Int(info.f_bavail) * Int(info.f_frsize)
            let fd = open(filler, O_WRONLY | O_CREAT, 0o644)
            guard fd >= 0 else { return }
            _ = posix_fallocate(fd, 0, off_t(max(4096, free - 4096)))
            close(fd)
        }
        thread.start()
        let result = try Executable.run(arguments)
        finished.withLock { toolEnded = true }
        done.wait()
        return result
    }
}

enum SmallDiskError: Error {
    case mountFailed(String)
}
