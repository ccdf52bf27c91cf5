import Dispatch
import Foundation
import OSLayer
import OrderedCollections
import Synchronization
import SystemPackage
import TensorEngine

#if canImport(Glibc)
import Glibc
#endif

/// An open, validated safetensors file.
///
/// Opening reads only the 8-byte length and the header; tensor bytes are read later with `pread` straight
/// into the caller's destination, so planning a load of a 17 GB checkpoint touches a few kilobytes.
package final class SafetensorsFile: Sendable {
    /// The path as given (used in every message).
    package let path: String
    package let fileSize: Int
    package let header: SafetensorsHeader
    /// The tensors by name, in data order.
    package let tensors: OrderedDictionary<String, StoredTensor>
    private let descriptor: FileDescriptor

    /// Opens and validates `path` (steps 1–10 of `SafetensorsHeader`).
    package init(path: String) throws {
        let (fd, fileSize) = try UntrustedFile.open(path)
        do {
            var prefix = [UInt8](repeating: 0, count: 8)
            let got = try Self.readFully(fd, offset: 0, into: &prefix, count: min(8, fileSize), path: path)
            let n = try SafetensorsHeader.headerByteCount(prefix: prefix.prefix(got), fileSize: fileSize, file: path)
            var headerBytes = [UInt8](repeating: 0, count: n)
            _ = try Self.readFully(fd, offset: 8, into: &headerBytes, count: n, path: path)
            let header = try SafetensorsHeader.parse(headerBytes: headerBytes, fileSize: fileSize, file: path)
            self.path = path
            self.fileSize = fileSize
            self.header = header
            self.tensors = OrderedDictionary(uniqueKeysWithValues: header.tensors.map { ($0.name, $0) })
            self.descriptor = fd
        } catch {
            try? fd.close()
            if let e = error as? Errno { throw FileIOError(path: path, operation: "read", reason: "\(e)") }
            throw error
        }
    }

    deinit {
        try? descriptor.close()
    }

    /// Reads a tensor's bytes (or the `range` of them) with `pread` into `destination`, which must be exactly
    /// that many bytes; `parallel: false` keeps it on the calling thread (a caller that is itself one of
    /// several workers).
    package func read(
        _ tensor: StoredTensor, range: Range<Int>? = nil, into destination: UnsafeMutableRawBufferPointer,
        parallel: Bool = true
    ) throws {
        let slice = range ?? 0..<tensor.byteCount
        precondition(slice.lowerBound >= 0 && slice.upperBound <= tensor.byteCount && destination.count == slice.count)
        let offset = header.dataStart + tensor.begin + slice.lowerBound
        try parallel
            ? read(absoluteOffset: offset, into: destination)
            : readSequentially(absoluteOffset: offset, into: destination)
    }

    /// Reads `destination.count` bytes at an absolute file offset: one `pread` loop for a small read, else
    /// chunks of ``parallelChunkBytes`` (their boundaries on 2 MiB from the destination's start, which is
    /// 2 MiB-aligned for a tensor of 2 MiB or more, so each chunk faults whole huge pages) read by every core at
    /// once. Copying out of the page cache and faulting fresh pages in are both per-core work; one thread
    /// leaves the other core idle.
    package func read(absoluteOffset: Int, into destination: UnsafeMutableRawBufferPointer) throws {
        let workers = Self.readers
        guard workers > 1, destination.count >= 2 * Self.parallelChunkBytes else {
            return try readSequentially(absoluteOffset: absoluteOffset, into: destination)
        }
        let chunks = (destination.count + Self.parallelChunkBytes - 1) / Self.parallelChunkBytes
        let failure = Mutex<(any Error)?>(nil)
        let target = DisjointAccess(destination)
        DispatchQueue.concurrentPerform(iterations: chunks) { index in
            let start = index * Self.parallelChunkBytes
            let chunk = UnsafeMutableRawBufferPointer(
                rebasing: target.value[start..<min(target.value.count, start + Self.parallelChunkBytes)])
            do {
                try readSequentially(absoluteOffset: absoluteOffset + start, into: chunk)
            } catch {
                failure.withLock { if $0 == nil { $0 = error } }
            }
        }
        if let error = failure.withLock({ $0 }) { throw error }
    }

    /// 8 MiB: large enough that a `pread` costs far more than handing it to a thread, small enough that two
    /// cores share even a 20 MiB tensor.
    package static let parallelChunkBytes = 8 << 20
    static let readers = ProcessInfo.processInfo.activeProcessorCount

    /// Reads `destination.count` bytes at an absolute file offset, looping over short reads.
    func readSequentially(absoluteOffset: Int, into destination: UnsafeMutableRawBufferPointer) throws {
        var done = 0
        // Linux transfers at most 0x7ffff000 bytes per call; ask for 1 GiB at a time.
        let maxChunk = 1 << 30
        while done < destination.count {
            let chunk = UnsafeMutableRawBufferPointer(
                rebasing: destination[done..<min(destination.count, done + maxChunk)])
            let got: Int
            do {
                got = try descriptor.read(
                    fromAbsoluteOffset: Int64(absoluteOffset + done), into: chunk, retryOnInterrupt: true)
            } catch {
                throw FileIOError(path: path, operation: "pread at offset \(absoluteOffset + done)", reason: "\(error)")
            }
            if got == 0 {
                throw FileIOError(
                    path: path, operation: "pread at offset \(absoluteOffset + done)",
                    reason: "unexpected end of file (the file shrank after it was opened)")
            }
            done += got
        }
    }

    /// Asks the kernel to start reading `count` bytes at an absolute offset into the page cache, without waiting
    /// (``FileDescriptor/adviseWillNeed(offset:length:)``); advice only, so a failure is ignored.
    package func adviseWillNeed(absoluteOffset: Int, count: Int) {
        try? descriptor.adviseWillNeed(offset: absoluteOffset, length: count)
    }

    /// Maps a tensor's bytes read-only (a file window: counted by the kernel as RssFile once touched).
    /// `populate`: fault every page in now, for a caller that reads the whole tensor at once.
    package func map(_ tensor: StoredTensor, device: Device = .cpu, populate: Bool = false) throws -> TensorStorage {
        try TensorStorage.mapFile(
            descriptor: descriptor.rawValue, offset: header.dataStart + tensor.begin, length: tensor.byteCount,
            device: device, populate: populate)
    }

    /// Throws the shrunk-file error when a read of `window` (a mapping of `tensor` from ``map(_:device:populate:)``)
    /// touched a page past the file's end — those bytes read as zeros (``FileWindowGuard``) — or the file is now
    /// shorter than the tensor's end (a partly cut page reads zeros without a fault). Call after reading.
    package func checkIntact(_ window: TensorStorage, of tensor: StoredTensor) throws {
        let end = header.dataStart + tensor.end
        var status = stat()
        let size = fstat(descriptor.rawValue, &status) == 0 ? Int(status.st_size) : Int.max
        guard window.windowFaulted || size < end else { return }
        throw FileIOError(
            path: path, operation: "read of the mapped tensor '\(tensor.name)'",
            reason:
                "unexpected end of file (the file shrank after it was opened: \(size) bytes, the tensor ends at \(end))"
        )
    }

    private static func readFully(
        _ fd: FileDescriptor, offset: Int, into buffer: inout [UInt8], count: Int, path: String
    ) throws -> Int {
        var done = 0
        while done < count {
            let got = try buffer.withUnsafeMutableBytes { raw in
                try fd.read(
                    fromAbsoluteOffset: Int64(offset + done),
                    into: UnsafeMutableRawBufferPointer(rebasing: raw[done..<count]), retryOnInterrupt: true)
            }
            if got == 0 { break }
            done += got
        }
        return done
    }
}
