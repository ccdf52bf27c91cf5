import CJemalloc

#if canImport(Glibc)
import Glibc
#endif

/// Owned tensor memory, straight from jemalloc.
///
/// `mallocx`/`sdallocx` rather than `malloc`: the flags choose an arena (each simulated accelerator gets its
/// own, so jemalloc's per-arena statistics show that device's use) and bypass the thread cache, so a freed
/// tensor is returned to its arena at once and the allocator's figures match the ledger's.
///
/// Huge pages. A 4 KiB first-touch fault is the dominant cost of writing fresh memory (a 6 GB model is 1.6
/// million of them), so an allocation of at least 2 MiB is 2 MiB-aligned (`MALLOCX_ALIGN`) and its whole 2 MiB
/// pages are advised `madvise(MADV_HUGEPAGE)`: with THP in `madvise` mode the kernel then backs them with 2 MiB
/// pages, 512 times fewer faults. The tail below the last 2 MiB boundary is advised `MADV_NOHUGEPAGE` (it stays
/// in 4 KiB pages), so a touched tensor's RSS is its bytes rounded up to 4 KiB, never to 2 MiB: the RSS–ledger
/// checks need no allowance for huge pages. On free the range is advised `MADV_NOHUGEPAGE` again before jemalloc
/// takes it back, so a small allocation that later lands there is not faulted as a 2 MiB page. The advice is a
/// hint: where THP is off, it fails harmlessly and the memory is ordinary.
package struct HostAllocator: Sendable, Equatable {
    /// Cache-line alignment: conversion kernels read and write whole vectors.
    package static let alignment = 64
    /// 2 MiB: the x86-64 and arm64 (4 KiB granule) transparent huge page.
    package static let hugePageSize = 2 << 20

    /// The jemalloc arena, or nil for the automatic arenas.
    package let arena: UInt32?

    package init(arena: UInt32? = nil) { self.arena = arena }

    /// The default allocator: jemalloc's automatic arenas.
    package static let standard = HostAllocator()

    private func flags(_ byteCount: Int) -> Int32 {
        var flags = cjemalloc_flags_align(byteCount >= Self.hugePageSize ? Self.hugePageSize : Self.alignment)
        if let arena { flags |= cjemalloc_flags_arena(arena) }
        return flags
    }

    /// Allocates `byteCount` (> 0) bytes; nil when jemalloc cannot (the address space or an rlimit is exhausted).
    package func allocate(_ byteCount: Int) -> UnsafeMutableRawPointer? {
        precondition(byteCount > 0)
        guard let pointer = mallocx(byteCount, flags(byteCount)) else { return nil }
        if byteCount >= Self.hugePageSize { Self.advise(pointer, byteCount, huge: true) }
        return pointer
    }

    /// The bytes jemalloc really reserves for a request of `byteCount` (its size class: `nallocx`).
    package func usableSize(_ byteCount: Int) -> Int {
        guard byteCount > 0 else { return 0 }
        let size = nallocx(byteCount, flags(byteCount))
        return size == 0 ? byteCount : size
    }

    package func deallocate(_ pointer: UnsafeMutableRawPointer, byteCount: Int) {
        if byteCount >= Self.hugePageSize { Self.advise(pointer, byteCount, huge: false) }
        sdallocx(pointer, byteCount, flags(byteCount))
    }

    /// `madvise(MADV_HUGEPAGE)` on the whole 2 MiB pages of a 2 MiB-aligned allocation and `MADV_NOHUGEPAGE`
    /// on the rest of its 4 KiB pages (`huge`), or `MADV_NOHUGEPAGE` on all of them (not `huge`).
    static func advise(_ pointer: UnsafeMutableRawPointer, _ byteCount: Int, huge: Bool) {
        let page = Int(getpagesize())
        let whole = byteCount / hugePageSize * hugePageSize
        let mapped = (byteCount + page - 1) / page * page
        if huge {
            _ = madvise(pointer, whole, MADV_HUGEPAGE)
            if mapped > whole { _ = madvise(pointer + whole, mapped - whole, MADV_NOHUGEPAGE) }
        } else {
            _ = madvise(pointer, mapped, MADV_NOHUGEPAGE)
        }
    }

    /// Creates a new jemalloc arena (`mallctl("arenas.create")`) for a separately accounted memory pool.
    package static func makeArena() -> HostAllocator? {
        var index: UInt32 = 0
        var size = MemoryLayout<UInt32>.size
        let status = mallctl("arenas.create", &index, &size, nil, 0)
        return status == 0 ? HostAllocator(arena: index) : nil
    }
}
