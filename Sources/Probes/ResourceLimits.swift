#if canImport(Glibc)
import Glibc
#endif

/// A soft and a hard resource limit (`struct rlimit`), bytes; nil means `RLIM_INFINITY` (no limit).
public struct ResourceLimit: Sendable, Equatable {
    /// `rlim_cur`: the limit the kernel enforces.
    public var soft: Int?
    /// `rlim_max`: the ceiling an unprivileged process may raise `soft` to.
    public var hard: Int?

    public init(soft: Int?, hard: Int?) {
        self.soft = soft
        self.hard = hard
    }
}

/// Process resource limits (`getrlimit`/`setrlimit`) and resource usage (`getrusage`).
///
/// With `RLIMIT_AS` or `RLIMIT_DATA` set, "too much memory" becomes a failed allocation (`mmap` → ENOMEM) in
/// that process instead of a machine-wide OOM kill. To limit a child, use ``ChildProcess/Options``'s limits,
/// which are applied inside the child between `fork` and `exec`.
public enum ResourceLimits {
    /// `getrlimit(RLIMIT_AS)`: the limit on the process's total virtual address space.
    public static func addressSpaceLimit() throws(SystemCallError) -> ResourceLimit {
        try get(RLIMIT_AS, "RLIMIT_AS")
    }

    /// `getrlimit(RLIMIT_DATA)`: the limit on data segment plus private writable mappings (Linux ≥ 4.7 counts
    /// anonymous `mmap` too).
    public static func dataLimit() throws(SystemCallError) -> ResourceLimit {
        try get(RLIMIT_DATA, "RLIMIT_DATA")
    }

    /// `setrlimit(RLIMIT_AS)` on this process: sets the soft limit to `bytes` (nil: unlimited), keeping the hard
    /// limit. Fails with EINVAL above the hard limit. Setting it below what the process already maps is allowed;
    /// only later mappings fail.
    public static func setAddressSpaceLimit(_ bytes: Int?) throws(SystemCallError) {
        try set(RLIMIT_AS, "RLIMIT_AS", bytes)
    }

    /// `setrlimit(RLIMIT_DATA)` on this process: sets the soft limit to `bytes` (nil: unlimited), keeping the
    /// hard limit.
    public static func setDataLimit(_ bytes: Int?) throws(SystemCallError) {
        try set(RLIMIT_DATA, "RLIMIT_DATA", bytes)
    }

    /// `getrusage(RUSAGE_SELF).ru_maxrss` × 1024: this process's peak resident set size, bytes (Linux reports
    /// KiB).
    ///
    /// - Warning: `ru_maxrss` is never reset (``ProcessMemory/resetPeakRSS(pid:)`` resets `VmHWM` only), and on
    ///   `exec` the replaced address space's peak is folded in: a process spawned from a large parent reports at
    ///   least the parent's RSS at spawn time. Prefer `VmHWM`.
    public static var selfMaxRSS: Int {
        usage(RUSAGE_SELF).maxRSSBytes
    }

    /// `getrusage(RUSAGE_CHILDREN).ru_maxrss` × 1024: the largest peak RSS among this process's reaped
    /// descendants, bytes.
    ///
    /// - Warning: the exec pitfall: a child created by `fork`/`posix_spawn` shares (vfork) or copies the
    ///   parent's address space until `exec`, and `exec` folds that space's peak into the child's `ru_maxrss`.
    ///   So a child of a 10 GB parent reports ≥ 10 GB here even if it used 5 MB. Take a child's peak from its
    ///   own `VmHWM` (``ChildProcess/readPeakRSS()`` before it exits, or reported by the child itself).
    public static func maxRSSOfChildren() -> Int {
        usage(RUSAGE_CHILDREN).maxRSSBytes
    }

    /// `getrusage(RUSAGE_SELF)` CPU times, seconds.
    public static func selfCPUSeconds() -> (user: Double, system: Double) {
        let usage = usage(RUSAGE_SELF)
        return (usage.userCPUSeconds, usage.systemCPUSeconds)
    }

    static func usage(_ who: __rusage_who) -> ChildResourceUsage {
        var usage = rusage()
        getrusage(who.rawValue, &usage)
        return ChildResourceUsage(usage)
    }

    static func get(_ resource: __rlimit_resource, _ name: String) throws(SystemCallError) -> ResourceLimit {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(resource.rawValue), &limit) == 0 else { throw .current("getrlimit", name) }
        return ResourceLimit(soft: fromRlim(limit.rlim_cur), hard: fromRlim(limit.rlim_max))
    }

    static func set(_ resource: __rlimit_resource, _ name: String, _ bytes: Int?) throws(SystemCallError) {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(resource.rawValue), &limit) == 0 else { throw .current("getrlimit", name) }
        limit.rlim_cur = toRlim(bytes)
        guard setrlimit(__rlimit_resource_t(resource.rawValue), &limit) == 0 else { throw .current("setrlimit", name) }
    }

    /// `RLIM_INFINITY` (all ones) → nil.
    static func fromRlim(_ value: rlim_t) -> Int? {
        value == rlim_t.max || value > rlim_t(Int.max) ? nil : Int(value)
    }

    /// nil or a negative value → `RLIM_INFINITY`.
    static func toRlim(_ bytes: Int?) -> rlim_t {
        guard let bytes, bytes >= 0 else { return rlim_t.max }
        return rlim_t(bytes)
    }
}

/// Resource usage of a process (`struct rusage`), in bytes and seconds.
public struct ChildResourceUsage: Sendable, Equatable {
    /// `ru_maxrss` × 1024 (Linux reports KiB): peak resident set size, bytes. See the exec pitfall on
    /// ``ResourceLimits/maxRSSOfChildren()``.
    public var maxRSSBytes: Int
    /// `ru_utime`: user CPU seconds.
    public var userCPUSeconds: Double
    /// `ru_stime`: system CPU seconds.
    public var systemCPUSeconds: Double
    /// `ru_majflt`: page faults that needed I/O.
    public var majorPageFaults: Int
    /// `ru_minflt`: page faults served without I/O.
    public var minorPageFaults: Int

    public init(maxRSSBytes: Int, userCPUSeconds: Double, systemCPUSeconds: Double, majorPageFaults: Int = 0, minorPageFaults: Int = 0) {
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
