#if canImport(Glibc)
import Glibc
#endif

/// The resident bytes of the mappings of given files in a process, from `/proc/<pid>/smaps`: how much of a
/// loader's RssFile is the checkpoint it mapped, as opposed to its own code and libraries paged in.
package enum MappedFiles {
    /// Σ `Rss` over the mappings of `paths` (absolute, links resolved) in `/proc/<pid>/smaps`; nil when the file
    /// cannot be read (the process is gone).
    package static func residentBytes(pid: pid_t, of paths: Set<String>) -> Int? {
        guard let reader = try? ProcFileReader(path: "/proc/\(pid)/smaps", initialCapacity: 1 << 20) else { return nil }
        return try? reader.read { parse(smaps: $0, files: paths) }
    }

    /// The sum for a `smaps` text: each mapping starts with a header line `start-end perms offset dev inode
    /// path`; its `Rss:` line counts when its path is one of `files`.
    package static func parse(smaps bytes: UnsafeRawBufferPointer, files: Set<String>) -> Int {
        var total = 0
        var counting = false
        let text = String(decoding: bytes, as: UTF8.self)
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            if isMappingHeader(line) {
                let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
                counting = fields.count == 6 && files.contains(String(fields[5]).trimmingBlanks())
            } else if counting, line.hasPrefix("Rss:") {
                var value = String(line.dropFirst(4))
                total += value.withUTF8 { ProcParse.sizeValue(UnsafeRawBufferPointer($0)) } ?? 0
            }
        }
        return total
    }

    /// `start-end perms …`: the address range, hex digits on both sides of one dash.
    static func isMappingHeader(_ line: Substring) -> Bool {
        guard let space = line.firstIndex(of: " ") else { return false }
        let range = line[..<space].split(separator: "-", omittingEmptySubsequences: false)
        return range.count == 2 && range.allSatisfy { !$0.isEmpty && $0.allSatisfy(\.isHexDigit) }
    }

    /// `realpath(3)`: the path /proc shows for a mapping of `path`.
    package static func canonicalPath(_ path: String) -> String {
        guard let resolved = realpath(path, nil) else { return path }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
