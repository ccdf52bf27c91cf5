import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

extension FileDescriptor {
    /// `posix_fadvise(fd, offset, length, POSIX_FADV_WILLNEED)`: asks the kernel to start reading the range into
    /// the page cache and returns without waiting for it. Linux reads at most the device's largest request
    /// (`max_sectors_kb`) or `read_ahead_kb`, whichever is more, per call, so a caller that wants a long range in
    /// flight advises it a few MiB at a time. Pages already cached cost a lookup each.
    package func adviseWillNeed(offset: Int, length: Int) throws(SystemCallError) {
        let status = posix_fadvise(rawValue, off_t(offset), off_t(length), POSIX_FADV_WILLNEED)
        guard status == 0 else {
            throw SystemCallError(call: "posix_fadvise(WILLNEED)", subject: nil, errno: Errno(rawValue: status))
        }
    }
}
