import OSLayer

#if canImport(Glibc)
import Glibc
#endif

/// Space on the file system holding a folder (`statvfs`), bytes.
package struct DiskSpace: Sendable, Equatable {
    /// The folder asked about.
    package var path: String
    /// `f_blocks × f_frsize`: the file system's size, bytes.
    package var totalBytes: Int
    /// `f_bfree × f_frsize`: free bytes, including those reserved for root.
    package var freeBytes: Int
    /// `f_bavail × f_frsize`: free bytes an unprivileged process may use.
    package var availableBytes: Int
    /// `f_flag & ST_RDONLY`: mounted read-only (its free space is no room to write).
    package var readOnly: Bool

    /// `statvfs(path)`.
    package static func of(path: String) throws(SystemCallError) -> DiskSpace {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { throw .current("statvfs", path) }
        let fragment = Int(info.f_frsize)
        return DiskSpace(
            path: path,
            totalBytes: Int(truncatingIfNeeded: info.f_blocks) &* fragment,
            freeBytes: Int(truncatingIfNeeded: info.f_bfree) &* fragment,
            availableBytes: Int(truncatingIfNeeded: info.f_bavail) &* fragment,
            readOnly: info.f_flag & UInt(ST_RDONLY) != 0
        )
    }
}

/// The machine a measurement ran on. Fields are nil where the source file is missing or unparsable.
package struct SystemInfo: Sendable, Equatable {
    /// `uname().sysname`, e.g. "Linux".
    package var kernelName: String
    /// `uname().release`, e.g. "6.1.0-18-amd64".
    package var kernelRelease: String
    /// `uname().version` (build string).
    package var kernelVersion: String
    /// `uname().machine`, e.g. "x86_64".
    package var machine: String
    /// `gethostname`.
    package var hostname: String
    /// The first `model name` of `/proc/cpuinfo` (x86), or `Hardware`/`CPU part` lines elsewhere.
    package var cpuModel: String?
    /// `sysconf(_SC_NPROCESSORS_ONLN)`: logical CPUs online.
    package var logicalCores: Int
    /// `MemTotal` of `/proc/meminfo`, bytes.
    package var memTotalBytes: Int?
    /// `MemAvailable` of `/proc/meminfo`: the kernel's estimate of memory available without swapping, bytes.
    package var memAvailableBytes: Int?
    /// `SwapTotal` of `/proc/meminfo`, bytes.
    package var swapTotalBytes: Int?
    /// The bracketed word of `/sys/kernel/mm/transparent_hugepage/enabled` ("always", "madvise", "never").
    package var transparentHugePagesEnabled: String?
    /// The bracketed word of `/sys/kernel/mm/transparent_hugepage/defrag`.
    package var transparentHugePagesDefrag: String?
    /// `sysconf(_SC_PAGESIZE)`, bytes.
    package var pageSize: Int
    /// `statvfs` of the folder passed to ``current(diskPath:)``; nil when none was passed or it failed.
    package var disk: DiskSpace?

    /// Gathers everything; `diskPath` is a folder whose file system's space to report.
    package static func current(diskPath: String? = nil) -> SystemInfo {
        var names = utsname()
        uname(&names)
        let meminfo = readTextFile("/proc/meminfo").map(parseMeminfo) ?? [:]
        return SystemInfo(
            kernelName: cString(&names.sysname),
            kernelRelease: cString(&names.release),
            kernelVersion: cString(&names.version),
            machine: cString(&names.machine),
            hostname: currentHostname(),
            cpuModel: readTextFile("/proc/cpuinfo").flatMap(parseCPUModel),
            logicalCores: max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))),
            memTotalBytes: meminfo["MemTotal"],
            memAvailableBytes: meminfo["MemAvailable"],
            swapTotalBytes: meminfo["SwapTotal"],
            transparentHugePagesEnabled: readTextFile("/sys/kernel/mm/transparent_hugepage/enabled")
                .flatMap(bracketedWord),
            transparentHugePagesDefrag: readTextFile("/sys/kernel/mm/transparent_hugepage/defrag")
                .flatMap(bracketedWord),
            pageSize: sysconf(Int32(_SC_PAGESIZE)),
            disk: diskPath.flatMap { try? DiskSpace.of(path: $0) }
        )
    }

    /// `Key: value kB` lines of `/proc/meminfo` → bytes by key (unparsable lines skipped).
    static func parseMeminfo(_ text: String) -> [String: Int] {
        var result: [String: Int] = [:]
        var copy = text
        copy.withUTF8 { buffer in
            ProcParse.forEachField(in: UnsafeRawBufferPointer(buffer)) { key, rest in
                if let value = ProcParse.sizeValue(rest) {
                    result[String(decoding: key, as: UTF8.self)] = value
                }
            }
        }
        return result
    }

    /// The value of the first `model name` line (or, failing that, `Hardware`, `cpu model`, `Processor`).
    static func parseCPUModel(_ text: String) -> String? {
        var found: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let key = String(line[..<colon]).trimmingBlanks()
            let value = String(line[line.index(after: colon)...]).trimmingBlanks()
            if found[key] == nil && !value.isEmpty { found[key] = value }
        }
        return found["model name"] ?? found["Hardware"] ?? found["cpu model"] ?? found["Processor"]
    }

    /// "always [madvise] never" → "madvise"; nil when nothing is bracketed.
    static func bracketedWord(_ text: String) -> String? {
        guard let open = text.firstIndex(of: "["), let close = text[open...].firstIndex(of: "]") else { return nil }
        return String(text[text.index(after: open)..<close])
    }

    private static func currentHostname() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "" }
        return String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static func cString<T>(_ tuple: inout T) -> String {
        withUnsafeBytes(of: &tuple) { raw in
            let bytes = raw.prefix(while: { $0 != 0 })
            return String(decoding: bytes, as: UTF8.self)
        }
    }
}

/// The machine's memory now: `/proc/meminfo` MemAvailable and Cached (page cache), bytes.
package struct SystemMemory: Sendable, Equatable {
    package var availableBytes: Int?
    package var cachedBytes: Int?
    /// MemFree: memory holding nothing, not even page cache.
    package var freeBytes: Int? = nil

    package static func read() -> SystemMemory {
        let meminfo = readTextFile("/proc/meminfo").map(SystemInfo.parseMeminfo) ?? [:]
        var memory = SystemMemory(availableBytes: meminfo["MemAvailable"], cachedBytes: meminfo["Cached"])
        memory.freeBytes = meminfo["MemFree"]
        return memory
    }
}
