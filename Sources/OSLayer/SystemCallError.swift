import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// A system call or library call that failed, with the `errno` it set (or the error number it returned).
///
/// Every throwing OSLayer API throws this one small struct: what was called, on what, and why it failed.
package struct SystemCallError: ReportableError, Sendable, Equatable {
    /// The call that failed, e.g. `"open"`, `"pread"`, `"posix_spawn"`, `"mallctl(epoch)"`.
    package var call: String
    /// What it was called on (a path, a pid, a resource name), when there is one.
    package var subject: String?
    /// The error number (`errno`, or the value a `posix_*` call returned).
    package var errno: Errno

    package init(call: String, subject: String? = nil, errno: Errno) {
        self.call = call
        self.subject = subject
        self.errno = errno
    }

    /// Builds the error from the calling thread's current `errno`.
    package static func current(_ call: String, _ subject: String? = nil) -> SystemCallError {
        SystemCallError(call: call, subject: subject, errno: Errno(rawValue: Glibc.errno))
    }

    /// A system call that failed is an I/O failure to the user.
    package var category: FailureCategory { .io }

    package var description: String {
        if let subject { return "\(call)(\(subject)) failed: \(errno) (errno \(errno.rawValue))" }
        return "\(call) failed: \(errno) (errno \(errno.rawValue))"
    }
}

/// Retries `body` while it fails with `EINTR` (result −1 and errno EINTR).
@inline(__always)
package func retryingOnInterrupt<T: FixedWidthInteger>(_ body: () -> T) -> T {
    while true {
        let result = body()
        if result == -1 && Glibc.errno == EINTR { continue }
        return result
    }
}
