#if canImport(Glibc)
import Glibc
#endif

/// Resource usage of a process (`struct rusage`), in bytes and seconds.
package struct ChildResourceUsage: Sendable, Equatable {
    /// `ru_maxrss` × 1024 (Linux reports KiB): peak resident set size, bytes.
    ///
    /// - Warning: the exec pitfall: a child shares (vfork) or copies (fork) the parent's address space until
    ///   `exec`, and `exec` folds that space's peak into the child's `ru_maxrss`, so a child of a 10 GB parent
    ///   reports ≥ 10 GB even if it used 5 MB. A child's own `VmHWM`, read before it is reaped, is its peak.
    package var maxRSSBytes: Int
    /// `ru_utime`: user CPU seconds.
    package var userCPUSeconds: Double
    /// `ru_stime`: system CPU seconds.
    package var systemCPUSeconds: Double
    /// `ru_majflt`: page faults that needed I/O.
    package var majorPageFaults: Int
    /// `ru_minflt`: page faults served without I/O.
    package var minorPageFaults: Int

    package init(
        maxRSSBytes: Int, userCPUSeconds: Double, systemCPUSeconds: Double, majorPageFaults: Int = 0,
        minorPageFaults: Int = 0
    ) {
        self.maxRSSBytes = maxRSSBytes
        self.userCPUSeconds = userCPUSeconds
        self.systemCPUSeconds = systemCPUSeconds
        self.majorPageFaults = majorPageFaults
        self.minorPageFaults = minorPageFaults
    }

    init(_ usage: rusage) {
        maxRSSBytes = usage.ru_maxrss &* 1024
        userCPUSeconds = Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) * 1e-6
        systemCPUSeconds = Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) * 1e-6
        majorPageFaults = usage.ru_majflt
        minorPageFaults = usage.ru_minflt
    }
}
