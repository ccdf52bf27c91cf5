import OSLayer
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// The kernel's page cache for one file: drop it (for cold reads), fill it (for warm reads), and count how
/// much of the file it holds.
package enum PageCache {
    /// Drops the file's clean cached pages: `open(O_RDONLY)`, `fdatasync` (so pages just written are clean
    /// and can go; harmless otherwise, and allowed on a read-only descriptor), then
    /// `posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED)`. No root needed. Pages mapped by a process, or dirtied
    /// again meanwhile, may stay: check with ``residentBytes(path:)``.
    package static func evict(path: String) throws(SystemCallError) {
        let descriptor = try openForReading(path)
        defer { try? descriptor.close() }
        if fdatasync(descriptor.rawValue) != 0 {
            let error = Glibc.errno
            // Special files and some file systems cannot sync; eviction may still work.
            if error != EINVAL && error != EROFS {
                throw SystemCallError(call: "fdatasync", subject: path, errno: .init(rawValue: error))
            }
        }
        let status = posix_fadvise(descriptor.rawValue, 0, 0, POSIX_FADV_DONTNEED)
        guard status == 0 else {
            throw SystemCallError(call: "posix_fadvise(DONTNEED)", subject: path, errno: .init(rawValue: status))
        }
    }

    /// Reads the whole file sequentially (`posix_fadvise(SEQUENTIAL)`, then `read` into one 16 MiB buffer,
    /// discarding the data), which leaves it in the page cache. Returns the bytes read.
    @discardableResult
    package static func warm(path: String, bufferBytes: Int = 16 * 1024 * 1024) throws(SystemCallError) -> Int {
        let descriptor = try openForReading(path)
        defer { try? descriptor.close() }
        _ = posix_fadvise(descriptor.rawValue, 0, 0, POSIX_FADV_SEQUENTIAL)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bufferBytes, 4096), alignment: 4096)
        defer { buffer.deallocate() }
        var total = 0
        while true {
            let count = try withSystemCall("read", path) { try descriptor.read(into: buffer) }
            if count == 0 { break }
            total += count
        }
        return total
    }

    /// How many bytes of the file are in the page cache now: `mmap(PROT_READ, MAP_SHARED)` of the file (which
    /// faults nothing in) and `mincore` over it, one window of up to 1 GiB at a time. A resident final page
    /// counts only the file's bytes in it, so a fully cached file gives exactly its size.
    ///
    /// `range`: only the pages holding those bytes (clamped to the file), each counted whole but for the last.
    package static func residentBytes(path: String, range: Range<Int>? = nil) throws(SystemCallError) -> Int {
        let descriptor = try openForReading(path)
        defer { try? descriptor.close() }
        var info = stat()
        guard fstat(descriptor.rawValue, &info) == 0 else { throw .current("fstat", path) }
        let fileSize = Int(info.st_size)
        guard fileSize > 0 else { return 0 }
        let page = sysconf(Int32(_SC_PAGESIZE))
        let window = 1 << 30
        var vector = [UInt8](repeating: 0, count: window / page)
        var resident = 0
        let lower = min(max(0, range?.lowerBound ?? 0), fileSize)
        let fileEnd = max(lower, min(fileSize, range?.upperBound ?? fileSize))
        guard fileEnd > lower else { return 0 }
        var offset = lower / page * page
        while offset < fileEnd {
            let length = min(window, fileEnd - offset)
            guard let mapping = mmap(nil, length, PROT_READ, MAP_SHARED, descriptor.rawValue, off_t(offset)),
                mapping != MAP_FAILED
            else { throw .current("mmap", path) }
            defer { munmap(mapping, length) }
            let pages = (length + page - 1) / page
            let status = vector.withUnsafeMutableBufferPointer { mincore(mapping, length, $0.baseAddress) }
            guard status == 0 else { throw .current("mincore", path) }
            for index in 0..<pages where vector[index] & 1 == 1 {
                resident += min(page, length - index * page)
            }
            offset += length
        }
        return resident
    }

    static func openForReading(_ path: String) throws(SystemCallError) -> FileDescriptor {
        try withSystemCall("open", path) { try FileDescriptor.open(FilePath(path), .readOnly, options: .closeOnExec) }
    }
}
