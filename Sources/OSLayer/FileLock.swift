#if canImport(Glibc)
import Glibc
#endif

/// An exclusive advisory lock on a file (`flock(LOCK_EX)`), held until ``release()`` or deinit: how two
/// processes sharing a work folder (two `run`s, the ranks of a job) take turns generating a checkpoint.
package final class FileLock {
    private var descriptor: Int32

    /// Opens (creating) `path` and takes the lock, polling every 50 ms (`flock(LOCK_EX | LOCK_NB)`) so that
    /// `isCancelled` can end the wait; nil when cancelled.
    package static func acquire(_ path: String, isCancelled: () -> Bool = { false }) throws(SystemCallError)
        -> FileLock?
    {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .current("open", path) }
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR else {
                let error = SystemCallError.current("flock", path)
                close(fd)
                throw error
            }
            if isCancelled() {
                close(fd)
                return nil
            }
            MonotonicClock.sleep(seconds: 0.05)
        }
        return FileLock(descriptor: fd)
    }

    private init(descriptor: Int32, removing path: String? = nil) {
        self.descriptor = descriptor
        self.removedPath = path
    }

    /// The lock file to remove on release (``tryAcquire(_:)``'s locks leave nothing behind).
    private let removedPath: String?

    /// Takes the lock on `path` without waiting (`flock(LOCK_EX | LOCK_NB)`), writing this process's id into
    /// the file; nil and the holder's id (from the file, when it wrote one) when another process holds it.
    /// The file is removed (`unlink`) on release while still locked; a process that opened it before the
    /// removal and then wins the lock finds, by comparing `fstat` with `stat`, that its file is no longer
    /// the one at `path`, and tries again on the new one.
    package static func tryAcquire(_ path: String) throws(SystemCallError) -> (lock: FileLock?, holder: Int32?) {
        while true {
            let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw .current("open", path) }
            guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
                let failure = errno
                let holder = readHolder(fd)
                close(fd)
                if failure == EWOULDBLOCK || failure == EINTR { return (nil, holder) }
                errno = failure
                throw .current("flock", path)
            }
            var opened = stat()
            var current = stat()
            guard fstat(fd, &opened) == 0, stat(path, &current) == 0, opened.st_ino == current.st_ino,
                opened.st_dev == current.st_dev
            else {
                close(fd)
                continue
            }
            let pid = Array("\(getpid())\n".utf8)
            _ = ftruncate(fd, 0)
            _ = pid.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
            return (FileLock(descriptor: fd, removing: path), nil)
        }
    }

    private static func readHolder(_ fd: Int32) -> Int32? {
        var bytes = [UInt8](repeating: 0, count: 16)
        let got = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard got > 0 else { return nil }
        return Int32(String(decoding: bytes[..<got].filter { (0x30...0x39).contains($0) }, as: UTF8.self))
    }

    /// `unlink` (for a ``tryAcquire(_:)`` lock), `flock(LOCK_UN)` and `close`.
    package func release() {
        guard descriptor >= 0 else { return }
        if let removedPath { unlink(removedPath) }
        flock(descriptor, LOCK_UN)
        close(descriptor)
        descriptor = -1
    }

    deinit { release() }
}
