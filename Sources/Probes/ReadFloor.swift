#if canImport(Glibc)
import Glibc
#endif

/// What ``ReadFloor/measure(paths:chunk:)`` measured.
public struct ReadFloorResult: Sendable, Equatable {
    /// Bytes read over all files.
    public var bytes: Int
    /// Wall seconds (`CLOCK_MONOTONIC`) spent mapping buffers and reading; unmapping is not counted.
    public var seconds: Double
    /// Files read.
    public var fileCount: Int
    /// bytes / seconds (0 when no time passed).
    public var bytesPerSecond: Double { seconds > 0 ? Double(bytes) / seconds : 0 }
}

/// The machine's floor for getting files into memory: the plainest fast way, to compare loaders against.
public enum ReadFloor {
    /// For each file: a fresh ``HugePageBuffer`` of its size, then `pread`s of `chunk` bytes (default 64 MiB)
    /// into it until the file is read. The page cache state is the caller's choice (evict first with
    /// ``PageCache/evict(path:)`` for a cold floor). Each buffer is unmapped before the next file.
    public static func measure(paths: [String], chunk: Int = 64 * 1024 * 1024) throws(SystemCallError) -> ReadFloorResult {
        let chunk = max(chunk, 4096)
        var total = 0
        var seconds = 0.0
        for path in paths {
            let start = MonotonicClock.monotonicSeconds()
            let descriptor = try PageCache.openForReading(path)
            defer { try? descriptor.close() }
            var info = stat()
            guard fstat(descriptor.rawValue, &info) == 0 else { throw .current("fstat", path) }
            let size = Int(info.st_size)
            let buffer = try HugePageBuffer(byteCount: size)
            var offset = 0
            while offset < size {
                let window = UnsafeMutableRawBufferPointer(start: buffer.baseAddress + offset, count: min(chunk, size - offset))
                let count = try withSystemCall("pread", path) {
                    try descriptor.read(fromAbsoluteOffset: Int64(offset), into: window)
                }
                if count == 0 { break }  // the file shrank meanwhile
                offset += count
            }
            seconds += MonotonicClock.monotonicSeconds() - start
            total += offset
            withExtendedLifetime(buffer) {}
        }
        return ReadFloorResult(bytes: total, seconds: seconds, fileCount: paths.count)
    }
}
