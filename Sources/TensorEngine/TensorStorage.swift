import OSLayer

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The allocation failed: the process is out of address space or under a memory cap (`RLIMIT_AS`).
package struct AllocationFailure: ReportableError, Equatable {
    package let requestedBytes: Int
    package let device: Device
    package var description: String { "could not allocate \(requestedBytes) bytes on \(device) (malloc returned NULL)" }
    package var category: FailureCategory { .outOfMemory }
}

/// The bytes behind a tensor, of one of three kinds.
///
/// - `owned`: memory this process allocated (jemalloc) and accounted in a `MemoryLedger`.
/// - `fileWindow`: a read-only mapping of part of a file. Not owned, not in the ledger: the kernel counts its
///   touched pages as RssFile. This is how transformers v5 keeps same-dtype weights.
/// - `meta`: shape and dtype only, no bytes at all: the skeleton of a low-memory load.
///
/// A class because storage is shared: tied weights are one storage referenced by two names, and the bytes
/// are freed (and released from the ledger) exactly once, when the last reference goes.
package final class TensorStorage: @unchecked Sendable {
    package enum Kind: String, Sendable {
        case owned
        case fileWindow = "file-window"
        case meta
    }

    private enum Release {
        case none
        case allocator(HostAllocator, MemoryLedger)
        /// The mapping and its ``FileWindowGuard`` slot.
        case unmap(UnsafeMutableRawPointer, Int, guardSlot: Int)
    }

    package let kind: Kind
    package let byteCount: Int
    package let device: Device
    private let pointer: UnsafeMutableRawPointer?
    private let release: Release

    private init(kind: Kind, byteCount: Int, device: Device, pointer: UnsafeMutableRawPointer?, release: Release) {
        self.kind = kind
        self.byteCount = byteCount
        self.device = device
        self.pointer = pointer
        self.release = release
    }

    deinit {
        switch release {
        case .none:
            break
        case .allocator(let allocator, let ledger):
            // The ledger first: its peak observer reads memory as it stood before this free.
            ledger.release(byteCount, on: device, allocatorBytes: allocator.usableSize(byteCount))
            if let pointer { allocator.deallocate(pointer, byteCount: byteCount) }
        case .unmap(let base, let length, let slot):
            FileWindowGuard.unregister(slot)
            munmap(base, length)
        }
    }

    /// Allocates `byteCount` bytes of owned memory, recorded in `ledger` against `device`.
    /// The bytes are uninitialised (as `torch.empty`): the caller writes every one.
    package static func allocate(
        byteCount: Int, device: Device = .cpu, ledger: MemoryLedger, allocator: HostAllocator = .standard
    ) throws -> TensorStorage {
        precondition(byteCount >= 0)
        let classBytes = allocator.usableSize(byteCount)
        try ledger.allocate(byteCount, on: device, allocatorBytes: classBytes)
        guard byteCount > 0 else {
            return TensorStorage(
                kind: .owned, byteCount: 0, device: device, pointer: nil, release: .allocator(allocator, ledger))
        }
        guard let pointer = allocator.allocate(byteCount) else {
            ledger.release(byteCount, on: device, allocatorBytes: classBytes)
            throw AllocationFailure(requestedBytes: byteCount, device: device)
        }
        return TensorStorage(
            kind: .owned, byteCount: byteCount, device: device, pointer: pointer, release: .allocator(allocator, ledger)
        )
    }

    /// A storage with no bytes: the meta device.
    package static func meta(byteCount: Int, device: Device = .cpu) -> TensorStorage {
        TensorStorage(kind: .meta, byteCount: byteCount, device: device, pointer: nil, release: .none)
    }

    /// Maps `length` bytes of the open file `fd` starting at `offset`, read-only (`mmap(PROT_READ, MAP_PRIVATE)`).
    /// `populate` faults the whole window in at once (`MAP_POPULATE` on Linux), for a caller about to read every
    /// byte; without it pages become resident only as they are touched (an offloaded weight read on access).
    package static func mapFile(
        descriptor fd: Int32, offset: Int, length: Int, device: Device = .cpu, populate: Bool = false
    ) throws -> TensorStorage {
        precondition(offset >= 0 && length >= 0)
        guard length > 0 else {
            return TensorStorage(kind: .fileWindow, byteCount: 0, device: device, pointer: nil, release: .none)
        }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let alignedOffset = offset - offset % page
        let delta = offset - alignedOffset
        let mapLength = length + delta
        // MAP_POPULATE (Linux) faults the whole window in with one call, from the page cache, instead of one
        // fault per 4 KiB page as the caller walks it.
        #if os(Linux)
        let flags = populate ? MAP_PRIVATE | MAP_POPULATE : MAP_PRIVATE
        #else
        let flags = MAP_PRIVATE
        #endif
        let base = mmap(nil, mapLength, PROT_READ, flags, fd, off_t(alignedOffset))
        guard let base, base != MAP_FAILED else {
            throw FileWindowError(errno: errno, offset: offset, length: length)
        }
        guard let slot = FileWindowGuard.register(base: base, length: mapLength) else {
            munmap(base, mapLength)
            throw FileWindowError(errno: EMFILE, offset: offset, length: length)
        }
        return TensorStorage(
            kind: .fileWindow, byteCount: length, device: device, pointer: base + delta,
            release: .unmap(base, mapLength, guardSlot: slot))
    }

    /// True when a read of this file window touched a page past its file's end (the file shrank after it was
    /// mapped): those bytes read as zeros, and the reader must discard what it read (``FileWindowGuard``).
    package var windowFaulted: Bool {
        if case .unmap(_, _, let slot) = release { return FileWindowGuard.faulted(slot) }
        return false
    }

    /// The bytes, read-only. Empty for meta storage.
    package var bytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: pointer, count: pointer == nil ? 0 : byteCount)
    }

    /// The bytes, writable. Only owned storage may be written.
    package var mutableBytes: UnsafeMutableRawBufferPointer {
        precondition(kind == .owned, "only owned storage is writable")
        return UnsafeMutableRawBufferPointer(start: pointer, count: pointer == nil ? 0 : byteCount)
    }

}

/// `mmap` of a checkpoint region failed.
package struct FileWindowError: ReportableError, Equatable {
    package let errno: Int32
    package let offset: Int
    package let length: Int
    package var description: String {
        if errno == EMFILE {
            return
                "mmap of \(length) bytes at offset \(offset) refused: more than \(FileWindowGuard.capacity) file windows are mapped at once"
        }
        return "mmap of \(length) bytes at offset \(offset) failed: \(String(cString: strerror(errno)))"
    }
    package var category: FailureCategory { .io }
}
