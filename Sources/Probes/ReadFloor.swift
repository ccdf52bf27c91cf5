import Dispatch
import Foundation
import OSLayer
import Synchronization
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// What ``ReadFloor/measure(paths:chunk:)`` measured.
package struct ReadFloorResult: Sendable, Equatable {
    /// Bytes read over all files.
    package var bytes: Int
    /// Wall seconds (`CLOCK_MONOTONIC`) spent mapping buffers and reading; unmapping is not counted.
    package var seconds: Double
    /// Files read.
    package var fileCount: Int
    /// Whether the files were opened `O_DIRECT` (read around the page cache).
    package var direct = false
    /// bytes / seconds (0 when no time passed).
    package var bytesPerSecond: Double { seconds > 0 ? Double(bytes) / seconds : 0 }
}

/// The machine's floor for getting files into memory: the plainest fast way, to compare loaders against.
package enum ReadFloor {
    /// For each file: a fresh ``HugePageBuffer`` of its size, then `pread`s of `chunk` bytes (default 8 MiB, on
    /// 2 MiB boundaries) into it, `threads` at once (default: every core), until the file is read. The page cache
    /// state is the caller's choice (evict first with ``PageCache/evict(path:)`` for a cold floor). Each buffer
    /// stays mapped until every file is read (unmapping is not timed).
    ///
    /// `direct`: each file opened `O_DIRECT` (``DirectIO``), every read a whole number of 4 KiB blocks at a
    /// 2 MiB boundary of the 2 MiB-aligned buffer (the tail read asks for whole blocks past the end, which the
    /// buffer's 2 MiB rounding has room for, and gets the bytes that exist). The page cache is neither read nor
    /// filled, so a cached file is read from the device all the same.
    package static func measure(
        paths: [String], chunk: Int = 8 << 20, threads: Int = ProcessInfo.processInfo.activeProcessorCount,
        direct: Bool = false
    ) throws(SystemCallError) -> ReadFloorResult {
        let chunk = max(chunk, HugePageBuffer.hugePageSize) / HugePageBuffer.hugePageSize * HugePageBuffer.hugePageSize
        var total = 0
        // Every buffer is kept until all files are read, as a loader keeps the model: the floor needs as much
        // fresh memory as a load that ends holding the checkpoint's bytes (on a VM whose host takes freed
        // memory back, reusing one file's buffer for the next would make the floor's memory warmer than any
        // loader's).
        var buffers: [HugePageBuffer] = []
        let start = MonotonicClock.monotonicSeconds()
        for path in paths {
            let descriptor = try direct ? DirectIO.openForReading(path) : PageCache.openForReading(path)
            defer { try? descriptor.close() }
            var info = stat()
            guard fstat(descriptor.rawValue, &info) == 0 else { throw .current("fstat", path) }
            let size = Int(info.st_size)
            let buffer = try HugePageBuffer(byteCount: size)
            buffers.append(buffer)
            total += try read(
                descriptor, path: path, size: size, into: buffer, chunk: chunk, threads: threads, direct: direct)
        }
        let seconds = MonotonicClock.monotonicSeconds() - start
        withExtendedLifetime(buffers) {}
        return ReadFloorResult(bytes: total, seconds: seconds, fileCount: paths.count, direct: direct)
    }

    /// Reads the file's chunks into `buffer`, `threads` at a time; returns the bytes read (less than `size` when
    /// the file shrank meanwhile). `direct`: each chunk's request rounded up to whole 4 KiB blocks, and a short
    /// read ends it (the file's end; a direct read cannot go on from an unaligned offset).
    static func read(
        _ descriptor: FileDescriptor, path: String, size: Int, into buffer: HugePageBuffer, chunk: Int, threads: Int,
        direct: Bool = false
    ) throws(SystemCallError) -> Int {
        let chunks = (size + chunk - 1) / chunk
        let base = UInt(bitPattern: buffer.baseAddress)
        let outcome = Mutex<(bytes: Int, error: SystemCallError?)>((0, nil))
        @Sendable func work(_ index: Int) {
            let offset = index * chunk
            let wanted = min(chunk, size - offset)
            let count = direct ? DirectIO.roundedUp(wanted) : wanted
            // The address travels as an integer: each chunk is its own disjoint window of the buffer.
            let window = UnsafeMutableRawBufferPointer(
                start: UnsafeMutableRawPointer(bitPattern: base + UInt(offset)), count: count)
            var done = 0
            do throws(SystemCallError) {
                while done < count {
                    let got = try withSystemCall("pread", path) {
                        try descriptor.read(
                            fromAbsoluteOffset: Int64(offset + done),
                            into: UnsafeMutableRawBufferPointer(rebasing: window[done...]))
                    }
                    if got == 0 { break }
                    done += got
                    if direct && got % DirectIO.alignment != 0 { break }
                }
                outcome.withLock { $0.bytes += min(done, wanted) }
            } catch {
                outcome.withLock { if $0.error == nil { $0.error = error } }
            }
        }
        eachChunk(chunks, threads: threads, work)
        let (bytes, error) = outcome.withLock { ($0.bytes, $0.error) }
        if let error { throw error }
        return bytes
    }

    /// Runs `work` for every chunk index, spread over the cores when `threads` > 1 (the floors' one way of
    /// splitting a buffer; each index owns a disjoint window). More threads than cores (a deep queue of reads
    /// for a cold device, where each thread mostly waits) are threads of their own taking the next index.
    static func eachChunk(_ chunks: Int, threads: Int, _ work: @escaping @Sendable (Int) -> Void) {
        if threads > ProcessInfo.processInfo.activeProcessorCount && chunks > 1 {
            let next = Atomic<Int>(0)
            let group = DispatchGroup()
            for _ in 0..<min(threads, chunks) {
                group.enter()
                Thread {
                    while case let index = next.add(1, ordering: .relaxed).oldValue, index < chunks { work(index) }
                    group.leave()
                }.start()
            }
            group.wait()
        } else if threads > 1 && chunks > 1 {
            DispatchQueue.concurrentPerform(iterations: chunks, execute: work)
        } else {
            for index in 0..<chunks { work(index) }
        }
    }
}
