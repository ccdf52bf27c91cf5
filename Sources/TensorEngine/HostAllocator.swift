import CJemalloc

/// Owned tensor memory, straight from jemalloc.
///
/// `mallocx`/`sdallocx` rather than `malloc`: the flags choose an arena (each simulated accelerator gets its
/// own, so jemalloc's per-arena statistics show that device's use) and bypass the thread cache, so a freed
/// tensor is returned to its arena at once and the allocator's figures match the ledger's.
public struct HostAllocator: Sendable, Equatable {
    /// Cache-line alignment: conversion kernels read and write whole vectors.
    public static let alignment = 64

    /// The jemalloc arena, or nil for the automatic arenas.
    public let arena: UInt32?

    public init(arena: UInt32? = nil) { self.arena = arena }

    /// The default allocator: jemalloc's automatic arenas.
    public static let standard = HostAllocator()

    private var flags: Int32 {
        var flags = cjemalloc_flags_align(HostAllocator.alignment)
        if let arena { flags |= cjemalloc_flags_arena(arena) }
        return flags
    }

    /// Allocates `byteCount` (> 0) bytes; nil when jemalloc cannot (the address space or an rlimit is exhausted).
    public func allocate(_ byteCount: Int) -> UnsafeMutableRawPointer? {
        precondition(byteCount > 0)
        return mallocx(byteCount, flags)
    }

    /// The bytes jemalloc really reserves for a request of `byteCount` (its size class: `nallocx`).
    public func usableSize(_ byteCount: Int) -> Int {
        guard byteCount > 0 else { return 0 }
        let size = nallocx(byteCount, flags)
        return size == 0 ? byteCount : size
    }

    public func deallocate(_ pointer: UnsafeMutableRawPointer, byteCount: Int) {
        sdallocx(pointer, byteCount, flags)
    }

    /// Creates a new jemalloc arena (`mallctl("arenas.create")`) for a separately accounted memory pool.
    public static func makeArena() -> HostAllocator? {
        var index: UInt32 = 0
        var size = MemoryLayout<UInt32>.size
        let status = mallctl("arenas.create", &index, &size, nil, 0)
        return status == 0 ? HostAllocator(arena: index) : nil
    }
}
