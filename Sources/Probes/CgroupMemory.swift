#if canImport(Glibc)
import Glibc
#endif

/// The memory controller of the cgroup this process belongs to: limit, usage, peak and OOM kills.
///
/// Detection: `/proc/self/cgroup` names the cgroup (a v1 line whose controller list contains `memory`, or the
/// v2 line `0::<path>`); `/proc/self/mountinfo` gives where that hierarchy is mounted (usually
/// `/sys/fs/cgroup/memory` for v1, `/sys/fs/cgroup` for v2). In a container the mount's root is often the
/// container's own cgroup, so the path from `/proc/self/cgroup` may not exist under the mount: then the mount
/// root is read instead, and ``pathSource`` says so. Files that are absent give nil.
package struct CgroupMemory: Sendable, Equatable {
    /// Which cgroup interface the figures come from.
    package enum Version: String, Sendable, Equatable {
        /// cgroup v1: `memory.limit_in_bytes`, `memory.usage_in_bytes`, `memory.max_usage_in_bytes`,
        /// `memory.oom_control`.
        case v1
        /// cgroup v2: `memory.max`, `memory.current`, `memory.peak`, `memory.events`.
        case v2
    }

    /// Which folder was read.
    package enum PathSource: String, Sendable, Equatable {
        /// The process's own cgroup folder (mount point + path from `/proc/self/cgroup`).
        case ownCgroup
        /// The mount root, because the own cgroup folder did not exist under the mount.
        case mountRoot
    }

    /// A memory limit.
    package enum Limit: Sendable, Equatable {
        /// No limit (`max` in v2; in v1 a value ≥ 2⁶², the kernel's "unlimited" 0x7FFFFFFFFFFFF000).
        case unlimited
        /// A limit in bytes.
        case bytes(Int)
    }

    /// v1 or v2.
    package var version: Version
    /// The cgroup path from `/proc/self/cgroup`, e.g. "/process_api/67a3…".
    package var cgroupPath: String
    /// The folder the figures were read from.
    package var directory: String
    /// Whether ``directory`` is the own cgroup or the mount root fallback.
    package var pathSource: PathSource
    /// `memory.limit_in_bytes` (v1) or `memory.max` (v2).
    package var limit: Limit?
    /// `memory.usage_in_bytes` (v1) or `memory.current` (v2): bytes charged to the cgroup now (includes page
    /// cache).
    package var usageBytes: Int?
    /// `memory.max_usage_in_bytes` (v1) or `memory.peak` (v2, Linux ≥ 5.19): the most bytes ever charged.
    package var peakBytes: Int?
    /// The `oom_kill` count of `memory.oom_control` (v1, Linux ≥ 4.13) or `memory.events` (v2).
    package var oomKillCount: Int?

    /// The calling process's cgroup memory figures; nil when no memory controller can be found.
    package static func current() -> CgroupMemory? {
        guard let cgroupText = readTextFile("/proc/self/cgroup") else { return nil }
        let mounts = readTextFile("/proc/self/mountinfo").map(parseMountinfo) ?? []
        let membership = parseProcCgroup(cgroupText)
        if let path = membership.v1MemoryPath {
            let mount =
                mounts.first { $0.fileSystemType == "cgroup" && $0.superOptions.contains("memory") }
                ?? CgroupMount(
                    root: "/", mountPoint: "/sys/fs/cgroup/memory", fileSystemType: "cgroup",
                    superOptions: ["memory"])
            let (directory, source) = resolve(path: path, mount: mount, probeFile: "memory.usage_in_bytes")
            return read(version: .v1, cgroupPath: path, directory: directory, pathSource: source)
        }
        if let path = membership.v2Path {
            let mount =
                mounts.first { $0.fileSystemType == "cgroup2" }
                ?? CgroupMount(root: "/", mountPoint: "/sys/fs/cgroup", fileSystemType: "cgroup2", superOptions: [])
            let (directory, source) = resolve(path: path, mount: mount, probeFile: "memory.current")
            guard access(directory + "/memory.current", F_OK) == 0 || access(directory + "/memory.max", F_OK) == 0
            else { return nil }
            return read(version: .v2, cgroupPath: path, directory: directory, pathSource: source)
        }
        return nil
    }

    /// The same cgroup's figures read again.
    package func refreshed() -> CgroupMemory {
        Self.read(version: version, cgroupPath: cgroupPath, directory: directory, pathSource: pathSource)
    }

    /// Reads the figures from `directory`.
    static func read(version: Version, cgroupPath: String, directory: String, pathSource: PathSource) -> CgroupMemory {
        func file(_ name: String) -> String? { readTextFile(directory + "/" + name) }
        switch version {
        case .v1:
            return CgroupMemory(
                version: .v1, cgroupPath: cgroupPath, directory: directory, pathSource: pathSource,
                limit: file("memory.limit_in_bytes").flatMap(parseLimit),
                usageBytes: file("memory.usage_in_bytes").flatMap(ProcParse.integer),
                peakBytes: file("memory.max_usage_in_bytes").flatMap(ProcParse.integer),
                oomKillCount: file("memory.oom_control").flatMap { keyedValue($0, key: "oom_kill") }
            )
        case .v2:
            return CgroupMemory(
                version: .v2, cgroupPath: cgroupPath, directory: directory, pathSource: pathSource,
                limit: file("memory.max").flatMap(parseLimit),
                usageBytes: file("memory.current").flatMap(ProcParse.integer),
                peakBytes: file("memory.peak").flatMap(ProcParse.integer),
                oomKillCount: file("memory.events").flatMap { keyedValue($0, key: "oom_kill") }
            )
        }
    }

    /// The folder for `path` under `mount`, or the mount point when that folder lacks `probeFile`.
    static func resolve(path: String, mount: CgroupMount, probeFile: String) -> (String, PathSource) {
        var relative = path
        if mount.root != "/" {
            if relative == mount.root {
                relative = "/"
            } else if relative.hasPrefix(mount.root + "/") {
                relative = String(relative.dropFirst(mount.root.count))
            }
        }
        let mountPoint = mount.mountPoint.hasSuffix("/") ? String(mount.mountPoint.dropLast()) : mount.mountPoint
        let own = relative == "/" ? mountPoint : mountPoint + relative
        if access(own + "/" + probeFile, F_OK) == 0 { return (own, .ownCgroup) }
        return (mountPoint, .mountRoot)
    }

    /// `"max"` → unlimited; a number ≥ 2⁶² → unlimited; another number → bytes; else nil.
    static func parseLimit(_ text: String) -> Limit? {
        let word = text.trimmingBlanks()
        if word == "max" { return .unlimited }
        guard let value = Int(word) else { return nil }
        return value >= 1 << 62 ? .unlimited : .bytes(value)
    }

    /// The integer after `key` on a "key value" line (`memory.events`, `memory.oom_control`).
    static func keyedValue(_ text: String, key: String) -> Int? {
        for line in text.split(separator: "\n") {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if fields.count == 2 && fields[0] == key { return Int(fields[1]) }
        }
        return nil
    }

    /// What `/proc/self/cgroup` says.
    struct Membership: Equatable {
        /// The path on the v1 line whose controllers include `memory`.
        var v1MemoryPath: String?
        /// The path on the `0::` line (the v2 unified hierarchy).
        var v2Path: String?
    }

    /// Parses `/proc/self/cgroup` ("id:controllers:path" lines).
    static func parseProcCgroup(_ text: String) -> Membership {
        var membership = Membership()
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            let path = String(parts[2])
            if parts[0] == "0" && parts[1].isEmpty {
                membership.v2Path = path
            } else if parts[1].split(separator: ",").contains("memory") {
                membership.v1MemoryPath = path
            }
        }
        return membership
    }

    /// One cgroup mount from `/proc/self/mountinfo`.
    struct CgroupMount: Equatable {
        /// Field 4: the path within the hierarchy that is mounted.
        var root: String
        /// Field 5: where it is mounted.
        var mountPoint: String
        /// The field after " - ": "cgroup" or "cgroup2".
        var fileSystemType: String
        /// The comma-separated super options (for v1, the controllers).
        var superOptions: [String]
    }

    /// The cgroup and cgroup2 mounts of `/proc/self/mountinfo`.
    static func parseMountinfo(_ text: String) -> [CgroupMount] {
        var mounts: [CgroupMount] = []
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ").map(String.init)
            guard let dash = fields.firstIndex(of: "-"), dash >= 5, fields.count >= dash + 4 else { continue }
            let type = fields[dash + 1]
            guard type == "cgroup" || type == "cgroup2" else { continue }
            mounts.append(
                CgroupMount(
                    root: fields[3], mountPoint: fields[4], fileSystemType: type,
                    superOptions: fields[dash + 3].split(separator: ",").map(String.init)
                ))
        }
        return mounts
    }
}
