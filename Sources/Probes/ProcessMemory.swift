import OSLayer
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// A process's memory figures from `/proc/<pid>/status`, all in bytes (the file's "kB" means KiB).
///
/// A field is nil when the line is missing or unparsable (a zombie process has no `Vm*` lines; a kernel
/// before 4.5 has no `RssAnon`).
package struct ProcessMemory: Sendable, Equatable {
    /// `VmRSS` of `/proc/<pid>/status`: resident set size (= RssAnon + RssFile + RssShmem), bytes.
    /// The kernel updates it lazily (per-thread counters), so it may lag by a few pages per thread.
    package var vmRSSBytes: Int?
    /// `RssAnon` of `/proc/<pid>/status`: resident anonymous memory (heap, malloc'd buffers), bytes.
    package var rssAnonBytes: Int?
    /// `RssFile` of `/proc/<pid>/status`: resident file-backed mappings (mmapped files, code), bytes.
    package var rssFileBytes: Int?
    /// `RssShmem` of `/proc/<pid>/status`: resident shared memory (shmem, tmpfs, shared anonymous), bytes.
    package var rssShmemBytes: Int?
    /// `VmHWM` of `/proc/<pid>/status`: peak resident set size since start or the last
    /// ``ProcessMemory/resetPeakRSS(pid:)``, bytes.
    package var vmHWMBytes: Int?
    /// `VmPeak` of `/proc/<pid>/status`: peak virtual memory size, bytes.
    package var vmPeakBytes: Int?
    /// `VmSize` of `/proc/<pid>/status`: current virtual memory size, bytes.
    package var vmSizeBytes: Int?

    /// No figure read yet (every field nil).
    package init() {}

    /// Parses the text of a `/proc/<pid>/status` file. Never traps: unknown, missing or malformed lines leave
    /// their field nil.
    package static func parse(status bytes: UnsafeRawBufferPointer) -> ProcessMemory {
        var memory = ProcessMemory()
        var found = 0
        ProcParse.scanFields(in: bytes) { key, rest in
            // Only "Vm…" and "Rss…" keys matter; the fields come in the file's first ~25 lines, so stop once all
            // are seen.
            guard key.count >= 5, let first = key.first, first == UInt8(ascii: "V") || first == UInt8(ascii: "R"),
                let field = fields.first(where: { ProcParse.equals(key, $0.key) })
            else { return true }
            memory[keyPath: field.path] = ProcParse.sizeValue(rest)
            found += 1
            return found < fields.count
        }
        return memory
    }

    /// The `status` keys read, and where each goes.
    static let fields: [(key: StaticString, path: any WritableKeyPath<ProcessMemory, Int?> & Sendable)] = [
        ("VmRSS", \.vmRSSBytes), ("RssAnon", \.rssAnonBytes), ("RssFile", \.rssFileBytes),
        ("RssShmem", \.rssShmemBytes),
        ("VmHWM", \.vmHWMBytes), ("VmPeak", \.vmPeakBytes), ("VmSize", \.vmSizeBytes),
    ]

    /// Parses status text given as a `String` (tests, saved files).
    package static func parse(status text: String) -> ProcessMemory {
        var copy = text
        return copy.withUTF8 { parse(status: UnsafeRawBufferPointer($0)) }
    }

    /// Reads `/proc/self/status` (or `/proc/<pid>/status`) once: `open`, `pread`, `close`.
    /// For repeated reads use a ``ProcessMemoryReader``, which keeps the file open.
    package static func read(pid: pid_t? = nil) throws(SystemCallError) -> ProcessMemory {
        try ProcessMemoryReader(pid: pid).read()
    }

    /// Resets the peak resident set size (`VmHWM`) to the current `VmRSS` by writing `"5"` to
    /// `/proc/self/clear_refs` (or `/proc/<pid>/clear_refs`; Linux ≥ 4.0, own processes or CAP_SYS_PTRACE).
    ///
    /// - Returns: true when the kernel accepted the write; false when the file is missing or the write failed
    ///   (then `VmHWM` still holds the older peak and must not be reported as this run's peak).
    @discardableResult
    package static func resetPeakRSS(pid: pid_t? = nil) -> Bool {
        let path = procPath(pid: pid, file: "clear_refs")
        guard let descriptor = try? FileDescriptor.open(FilePath(path), .writeOnly, options: .closeOnExec) else {
            return false
        }
        defer { try? descriptor.close() }
        let written = try? descriptor.writeAll([UInt8(ascii: "5")])
        return written == 1
    }

    /// Reads `/proc/self/smaps_rollup` (or `/proc/<pid>/smaps_rollup`, Linux ≥ 4.14): the process's mappings
    /// summed, with proportional set sizes.
    package static func smapsRollup(pid: pid_t? = nil) throws(SystemCallError) -> SmapsRollup {
        let reader = try ProcFileReader(path: procPath(pid: pid, file: "smaps_rollup"), initialCapacity: 4096)
        return try reader.read { SmapsRollup.parse(bytes: $0) }
    }

    static func procPath(pid: pid_t?, file: String) -> String {
        if let pid { return "/proc/\(pid)/\(file)" }
        return "/proc/self/\(file)"
    }
}

/// Reads `/proc/self/status` (or a pid's) again and again, cheaply: the file stays open and each read is a
/// `pread` at offset 0 into a reused buffer, parsed as bytes — no `open`, no `String`, no allocation per read.
/// This is what ``RSSSampler`` calls every millisecond. Not thread-safe: give each thread its own reader.
package final class ProcessMemoryReader {
    /// Which file: `status` (every figure, VmHWM included; ~14 µs a read) or `statm` (VmRSS, RssAnon and
    /// RssFile + RssShmem from the same kernel counters, as page counts; ~3 µs a read, what a 1 kHz sampler can
    /// afford at well under 1% of a core).
    package enum Source: Sendable {
        case status
        case statm
    }

    private let file: ProcFileReader
    private let source: Source

    /// Opens `/proc/self/<source>` (pid nil) or `/proc/<pid>/<source>`.
    package init(pid: pid_t? = nil, source: Source = .status) throws(SystemCallError) {
        self.source = source
        file = try ProcFileReader(
            path: ProcessMemory.procPath(pid: pid, file: source == .status ? "status" : "statm"),
            initialCapacity: source == .status ? 8192 : 256)
    }

    /// One fresh snapshot of the file (`pread` from offset 0).
    package func read() throws(SystemCallError) -> ProcessMemory {
        switch source {
        case .status: try file.read { ProcessMemory.parse(status: $0) }
        case .statm: try file.read(shortReadIsEnd: true) { ProcessMemory.parse(statm: $0) }
        }
    }
}

extension ProcessMemory {
    static let pageBytes = Int(getpagesize())

    /// Parses `/proc/<pid>/statm` ("size resident shared text lib data dt", in pages): VmRSS = resident,
    /// RssFile = shared (which also holds RssShmem: none in the processes measured here), RssAnon = resident −
    /// shared — the kernel's own counters, as status prints them. VmHWM and VmPeak are not in the file: nil.
    package static func parse(statm bytes: UnsafeRawBufferPointer) -> ProcessMemory {
        var numbers: [Int] = []
        var current: Int?
        for byte in bytes {
            if byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") {
                let (times, overflowA) = (current ?? 0).multipliedReportingOverflow(by: 10)
                let (sum, overflowB) = times.addingReportingOverflow(Int(byte - UInt8(ascii: "0")))
                if overflowA || overflowB { return ProcessMemory() }
                current = sum
            } else if let value = current {
                numbers.append(value)
                current = nil
                if numbers.count == 3 { break }
            }
        }
        if let value = current, numbers.count < 3 { numbers.append(value) }
        var memory = ProcessMemory()
        guard numbers.count >= 3, numbers[2] <= numbers[1], numbers[1] <= Int.max / pageBytes else { return memory }
        memory.vmSizeBytes =
            numbers[0].multipliedReportingOverflow(by: pageBytes).overflow ? nil : numbers[0] * pageBytes
        memory.vmRSSBytes = numbers[1] * pageBytes
        memory.rssFileBytes = numbers[2] * pageBytes
        memory.rssAnonBytes = (numbers[1] - numbers[2]) * pageBytes
        return memory
    }
}

@available(*, unavailable, message: "ProcessMemoryReader reuses one buffer: give each thread its own reader")
extension ProcessMemoryReader: Sendable {}
