#if canImport(Glibc)
import Glibc
#endif

/// Anonymous memory for large buffers, mapped with `mmap(MAP_PRIVATE | MAP_ANONYMOUS)` at a 2 MiB boundary,
/// its length rounded up to 2 MiB, and advised `madvise(MADV_HUGEPAGE)` so that with THP in `madvise` mode
/// the kernel backs it with 2 MiB pages (far fewer page faults when it is first written). `munmap` on deinit.
///
/// Pages are not touched here: they become resident (and count in RssAnon) as they are written.
/// Not `Sendable`: it hands out a raw pointer.
package final class HugePageBuffer {
    /// 2 MiB, the x86-64 transparent huge page size.
    package static let hugePageSize = 2 * 1024 * 1024

    /// Start of the buffer (2 MiB-aligned).
    package let baseAddress: UnsafeMutableRawPointer
    /// Bytes asked for.
    package let byteCount: Int
    /// Bytes mapped: `byteCount` rounded up to a multiple of 2 MiB (at least 2 MiB).
    package let mappedByteCount: Int
    /// Whether `madvise(MADV_HUGEPAGE)` succeeded (false when THP is compiled out or disabled as "never").
    package let hugePagesAdvised: Bool

    /// Maps `byteCount` bytes (rounded up to 2 MiB).
    package init(byteCount: Int) throws(SystemCallError) {
        guard byteCount >= 0 else {
            throw SystemCallError(call: "mmap", subject: "\(byteCount) bytes", errno: .invalidArgument)
        }
        let huge = Self.hugePageSize
        let (rounded, overflow) = byteCount.addingReportingOverflow(huge - 1)
        guard !overflow else {
            throw SystemCallError(call: "mmap", subject: "\(byteCount) bytes", errno: .invalidArgument)
        }
        let length = max(huge, rounded / huge * huge)
        // Over-map by 2 MiB, then unmap the unaligned head and the tail, leaving a 2 MiB-aligned mapping.
        guard let raw = mmap(nil, length + huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
            raw != MAP_FAILED
        else { throw .current("mmap", "\(length) bytes") }
        let address = UInt(bitPattern: raw)
        let aligned = (address + UInt(huge - 1)) & ~UInt(huge - 1)
        let head = Int(aligned - address)
        if head > 0 { munmap(raw, head) }
        let tail = huge - head
        let start = raw + head
        if tail > 0 { munmap(start + length, tail) }
        baseAddress = start
        self.byteCount = byteCount
        mappedByteCount = length
        hugePagesAdvised = madvise(start, length, MADV_HUGEPAGE) == 0
    }

    /// The first `byteCount` bytes.
    package var bytes: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: baseAddress, count: byteCount)
    }

    deinit { munmap(baseAddress, mappedByteCount) }
}
