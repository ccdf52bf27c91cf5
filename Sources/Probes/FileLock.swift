#if canImport(Glibc)
import Glibc
#endif

/// An exclusive advisory lock on a file (`flock(LOCK_EX)`), held until ``release()`` or deinit: how two
/// processes sharing a work folder (two `run`s, the ranks of a job) take turns generating a checkpoint.
public final class FileLock {
    private var descriptor: Int32

    /// Opens (creating) `path` and takes the lock, polling every 50 ms (`flock(LOCK_EX | LOCK_NB)`) so that
    /// `isCancelled` can end the wait; nil when cancelled.
    public static func acquire(_ path: String, isCancelled: () -> Bool = { false }) throws(SystemCallError) -> FileLock? {
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

    private init(descriptor: Int32) { self.descriptor = descriptor }

    /// `flock(LOCK_UN)` and `close`.
    public func release() {
        guard descriptor >= 0 else { return }
        flock(descriptor, LOCK_UN)
        close(descriptor)
        descriptor = -1
    }

    deinit { release() }
}
