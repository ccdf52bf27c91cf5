import OSLayer
import SystemPackage

/// A checkpoint file opened a second time with `O_DIRECT` (``DirectIO``): reads that go around the page cache,
/// straight from the device into the caller's memory. The caller keeps offsets, lengths and addresses on
/// ``DirectIO/alignment``, except through ``readUnaligned(absoluteOffset:into:)``.
package final class DirectFileReader: Sendable {
    package let path: String
    private let descriptor: FileDescriptor

    /// Opens `path` `O_DIRECT`; nil where the file system does not take it (tmpfs) or the file cannot be opened.
    package init?(path: String) {
        guard let descriptor = try? DirectIO.openForReading(path) else { return nil }
        self.path = path
        self.descriptor = descriptor
    }

    deinit { try? descriptor.close() }

    /// The device or file system said EINVAL to a direct read (an alignment it does not take).
    package struct Refused: Error {}

    /// Direct `pread`s at `offset` into `destination` until `required` bytes (default: all) are in. A read that
    /// ends short of them is the file's end (it shrank: a ``FileIOError``); EINVAL is ``Refused``.
    package func read(absoluteOffset offset: Int, into destination: UnsafeMutableRawBufferPointer, required: Int? = nil)
        throws
    {
        let required = required ?? destination.count
        var done = 0
        while done < required {
            let got: Int
            do {
                got = try descriptor.read(
                    fromAbsoluteOffset: Int64(offset + done),
                    into: UnsafeMutableRawBufferPointer(rebasing: destination[done...]), retryOnInterrupt: true)
            } catch let error as Errno where error == .invalidArgument {
                throw Refused()
            } catch {
                throw FileIOError(
                    path: path, operation: "O_DIRECT pread at offset \(offset + done)", reason: "\(error)")
            }
            guard got > 0, got % DirectIO.alignment == 0 || done + got >= required else {
                throw FileIOError(
                    path: path, operation: "O_DIRECT pread at offset \(offset + done)",
                    reason: "unexpected end of file (the file shrank after it was opened)")
            }
            done += got
        }
    }

    /// Reads a few bytes at any offset into any memory: the whole 4 KiB blocks around them into a buffer of
    /// their own (freed at once), then the bytes asked for copied out.
    package func readUnaligned(absoluteOffset offset: Int, into destination: UnsafeMutableRawBufferPointer) throws {
        let alignment = DirectIO.alignment
        let first = offset / alignment * alignment
        let end = DirectIO.roundedUp(offset + destination.count)
        let blocks = UnsafeMutableRawBufferPointer.allocate(byteCount: end - first, alignment: alignment)
        defer { blocks.deallocate() }
        try read(absoluteOffset: first, into: blocks, required: offset + destination.count - first)
        destination.copyMemory(
            from: UnsafeRawBufferPointer(rebasing: blocks[(offset - first)...].prefix(destination.count)))
    }
}
