import Foundation
import TestSupport
import Testing

@testable import OSLayer
@testable import Probes

#if canImport(Glibc)
import Glibc
#endif

extension MemoryMeasuringTests {
    /// The machine: system information, the cgroup, the page cache, huge pages, the first-touch floor, free page reporting. Serialized with every other suite that reads this process's memory (see `MemoryMeasuringTests`).
    @Suite(.serialized)
    struct SystemTests: ProbeTestHelpers {
        // MARK: System, cgroup

        @Test func systemInfo() throws {
            let info = SystemInfo.current(diskPath: FileManager.default.temporaryDirectory.path)
            #expect(info.kernelName == "Linux")
            #expect(!info.kernelRelease.isEmpty)
            #expect(!info.hostname.isEmpty)
            #expect(info.logicalCores == sysconf(Int32(_SC_NPROCESSORS_ONLN)))
            #expect(info.pageSize == 4096)
            #expect(info.memTotalBytes == sysconf(Int32(_SC_PHYS_PAGES)) * sysconf(Int32(_SC_PAGESIZE)))
            let available = try #require(info.memAvailableBytes)
            #expect(available > 0 && available <= info.memTotalBytes ?? 0)
            #expect(info.swapTotalBytes != nil)
            #expect(["always", "madvise", "never"].contains(info.transparentHugePagesEnabled ?? "?"))
            #expect(info.transparentHugePagesDefrag != nil)
            #expect(info.cpuModel?.isEmpty == false)
            let disk = try #require(info.disk)
            #expect(disk.totalBytes > 0 && disk.freeBytes <= disk.totalBytes && disk.availableBytes <= disk.freeBytes)
            #expect(SystemInfo.bracketedWord("always defer defer+madvise [madvise] never") == "madvise")
            #expect(SystemInfo.bracketedWord("nothing") == nil)
            #expect(
                SystemInfo.parseMeminfo("MemTotal:  10 kB\nHugePages_Total:  0\nbad line\n")
                    == ["MemTotal": 10240, "HugePages_Total": 0])
        }

        @Test func cgroupMemory() throws {
            let membership = CgroupMemory.parseProcCgroup(
                """
                9:name=systemd:/
                4:memory:/process_api/abc
                1:cpu:/
                0::/
                """)
            #expect(membership == .init(v1MemoryPath: "/process_api/abc", v2Path: "/"))
            #expect(
                CgroupMemory.parseProcCgroup("0::/user.slice/x\n") == .init(v1MemoryPath: nil, v2Path: "/user.slice/x"))
            let mounts = CgroupMemory.parseMountinfo(
                """
                35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
                41 31 0:38 /ctr /sys/fs/cgroup/unified rw,relatime shared:9 - cgroup2 cgroup2 rw
                20 1 0:1 / / rw - ext4 /dev/vda rw
                """)
            #expect(mounts.count == 2)
            #expect(mounts.first?.superOptions == ["rw", "memory"])
            #expect(mounts.last?.root == "/ctr")
            #expect(CgroupMemory.parseLimit("max\n") == .unlimited)
            #expect(CgroupMemory.parseLimit("9223372036854771712\n") == .unlimited)
            #expect(CgroupMemory.parseLimit("1073741824\n") == .bytes(1 << 30))
            #expect(CgroupMemory.parseLimit("junk") == nil)
            #expect(CgroupMemory.keyedValue("oom_kill_disable 0\nunder_oom 0\noom_kill 7\n", key: "oom_kill") == 7)

            // Own folder when it exists under the mount (after stripping the mount's root), else the mount root.
            let root = temporaryFile("cgroup")
            try FileManager.default.createDirectory(atPath: root + "/a/b", withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: root) }
            #expect(FileManager.default.createFile(atPath: root + "/a/b/memory.current", contents: Data()))
            let mount = CgroupMemory.CgroupMount(
                root: "/ctr", mountPoint: root, fileSystemType: "cgroup2", superOptions: [])
            #expect(
                CgroupMemory.resolve(path: "/ctr/a/b", mount: mount, probeFile: "memory.current") == (
                    root + "/a/b", .ownCgroup
                ))
            #expect(
                CgroupMemory.resolve(path: "/ctr/missing", mount: mount, probeFile: "memory.current") == (
                    root, .mountRoot
                ))

            // This machine: the memory controller is on cgroup v1.
            let current = try #require(CgroupMemory.current())
            #expect(current.limit != nil)
            #expect((current.usageBytes ?? 0) > 0)
            #expect(current.oomKillCount != nil)
            if let peak = current.peakBytes, let usage = current.usageBytes { #expect(peak >= usage) }
            print("[probes] cgroup: \(current)")
        }

        // MARK: Page cache, huge pages, read floor

        @Test func pageCacheEvictAndWarm() throws {
            let path = temporaryFile("pagecache.bin")
            let size = 32 * mebibyte
            var bytes = [UInt8](repeating: 0, count: size)
            for index in stride(from: 0, to: size, by: 4096) { bytes[index] = UInt8(truncatingIfNeeded: index >> 12) }
            #expect(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
            defer { try? FileManager.default.removeItem(atPath: path) }
            let handle = try #require(FileHandle(forWritingAtPath: path))
            try handle.synchronize()
            try handle.close()

            try PageCache.evict(path: path)
            #expect(try PageCache.residentBytes(path: path) == 0)
            #expect(try PageCache.warm(path: path) == size)
            #expect(try PageCache.residentBytes(path: path) == size)
            try PageCache.evict(path: path)
            #expect(try PageCache.residentBytes(path: path) == 0)

            // The floor reads the file into fresh huge-page memory: all bytes, and it fills the cache again.
            let floor = try ReadFloor.measure(paths: [path, path], chunk: 8 * mebibyte)
            #expect(floor.bytes == 2 * size)
            #expect(floor.fileCount == 2)
            #expect(floor.seconds > 0 && floor.bytesPerSecond > 0)
            #expect(try PageCache.residentBytes(path: path) == size)
            print("[probes] read floor: \(floor.bytes) bytes in \(floor.seconds) s")

            // An odd size: the partial last page counts only the file's bytes.
            let odd = temporaryFile("odd.bin")
            #expect(FileManager.default.createFile(atPath: odd, contents: Data(repeating: 7, count: 10_000)))
            defer { try? FileManager.default.removeItem(atPath: odd) }
            #expect(try PageCache.warm(path: odd) == 10_000)
            #expect(try PageCache.residentBytes(path: odd) == 10_000)
            // A range: the pages holding it, up to its end (or the file's).
            #expect(try PageCache.residentBytes(path: odd, range: 10..<5000) == 5000)
            #expect(try PageCache.residentBytes(path: odd, range: 9000..<20_000) == 10_000 - 8192)
            #expect(try PageCache.residentBytes(path: odd, range: 20_000..<30_000) == 0)

            // O_DIRECT: every byte (the odd tail too), and nothing left in the page cache; a file system without
            // it (tmpfs) refuses the open with EINVAL.
            let takesDirect =
                (try? DirectIO.openForReading(path)).map {
                    try? $0.close()
                    return true
                } ?? false
            if takesDirect {
                try PageCache.evict(path: path)
                try PageCache.evict(path: odd)
                let direct = try ReadFloor.measure(paths: [path, odd], chunk: 2 * mebibyte, threads: 16, direct: true)
                #expect(direct.bytes == size + 10_000 && direct.direct)
                #expect(try PageCache.residentBytes(path: path) == 0)
                #expect(try PageCache.residentBytes(path: odd) == 0)
            }
            #expect(throws: SystemCallError.self) { try PageCache.evict(path: "/nonexistent/probes") }
        }

        @Test func hugePageBuffer() throws {
            #expect(try HugePageBuffer(byteCount: 0).mappedByteCount == 2 * mebibyte)
            let buffer = try HugePageBuffer(byteCount: 3 * mebibyte)
            #expect(buffer.mappedByteCount == 4 * mebibyte)
            #expect(buffer.byteCount == 3 * mebibyte)
            #expect(UInt(bitPattern: buffer.baseAddress) % UInt(2 * mebibyte) == 0)
            #expect(buffer.hugePagesAdvised)

            let big = try HugePageBuffer(byteCount: 64 * mebibyte)
            let before = try ProcessMemory.smapsRollup().anonHugePagesBytes ?? 0
            memset(big.baseAddress, 1, big.byteCount)
            let after = try ProcessMemory.smapsRollup().anonHugePagesBytes ?? 0
            if SystemInfo.current().transparentHugePagesEnabled != "never" {
                // With THP in madvise (or always) mode, the advised buffer is backed by 2 MiB pages.
                #expect(after - before >= 32 * mebibyte, "AnonHugePages \(before) → \(after)")
            }
            #expect(
                stride(from: 0, to: big.byteCount, by: 4096).allSatisfy {
                    big.baseAddress.load(fromByteOffset: $0, as: UInt8.self) == 1
                })
        }

        @Test func firstTouchFloorWritesEveryPageOfEachPass() throws {
            let result = try FirstTouchFloor.measure(
                bytes: 5 * mebibyte + 3, passes: 3, chunk: 2 * mebibyte, threads: 2)
            #expect(result.bytes == 5 * mebibyte + 3)
            #expect(result.seconds.count == 3)
            #expect(result.seconds.allSatisfy { $0 > 0 })
            #expect(result.bytesPerSecond(pass: 0) == Double(5 * mebibyte + 3) / result.seconds[0])
            #expect(result.bytesPerSecond(pass: 3) == nil)
            let buffer = try HugePageBuffer(byteCount: 3 * mebibyte + 1)
            FirstTouchFloor.write(buffer, chunk: 2 * mebibyte, threads: 2)
            #expect(buffer.bytes.allSatisfy { $0 == 0x5A })
            #expect(try FirstTouchFloor.measure(bytes: 1, passes: 0).seconds == [])
        }

        @Test func freePageReportingReadsTheBalloonsFeatureBits() {
            // Bit 5 is VIRTIO_BALLOON_F_REPORTING; the kernel writes bit 0 first.
            #expect(FreePageReporting.reportingBit(features: "0110010100000000"))
            #expect(!FreePageReporting.reportingBit(features: "0110000100000000"))
            #expect(!FreePageReporting.reportingBit(features: "01100"))
            #expect(!FreePageReporting.reportingBit(features: ""))
        }
    }
}
