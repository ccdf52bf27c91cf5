import CLinux
import SystemPackage

/// Reads that go around the page cache (`O_DIRECT`): the device's own speed, with nothing cached and no
/// readahead. Buffers, file offsets and lengths must all be multiples of ``alignment``.
package enum DirectIO {
    /// 4 KiB: the logical block size is 512 B or 4 KiB on the devices this tool meets, and 4 KiB satisfies both.
    package static let alignment = 4096

    /// `open(path, O_RDONLY | O_DIRECT | O_CLOEXEC)` (`clinux_open_direct`). A file system without direct I/O
    /// (tmpfs) fails it with EINVAL.
    package static func openForReading(_ path: String) throws(SystemCallError) -> FileDescriptor {
        let raw = path.withCString { clinux_open_direct($0) }
        guard raw >= 0 else { throw .current("open(O_DIRECT)", path) }
        return FileDescriptor(rawValue: raw)
    }

    /// `count` rounded up to a multiple of ``alignment`` (a direct read of a file's tail asks for whole blocks
    /// and gets the bytes that exist).
    package static func roundedUp(_ count: Int) -> Int {
        (count + alignment - 1) / alignment * alignment
    }
}
