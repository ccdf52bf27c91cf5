#if canImport(Glibc)
import Glibc
#endif

/// `clock_gettime` readings, in seconds, as `Double`.
package enum MonotonicClock {
    /// `clock_gettime(CLOCK_MONOTONIC)`: seconds since an arbitrary, fixed point; never jumps.
    @inline(__always)
    package static func monotonicSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    /// `clock_gettime(CLOCK_MONOTONIC)` as a `timespec`.
    @inline(__always)
    package static func monotonicTimespec() -> timespec {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return ts
    }

    /// `clock_gettime(CLOCK_THREAD_CPUTIME_ID)`: CPU seconds consumed by the calling thread.
    @inline(__always)
    package static func threadCPUSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    /// Adds `nanoseconds` to a `timespec`, normalising `tv_nsec` into 0..<1e9.
    @inline(__always)
    package static func adding(_ nanoseconds: Int, to ts: timespec) -> timespec {
        var result = ts
        let total = result.tv_nsec + nanoseconds
        result.tv_sec += total / 1_000_000_000
        result.tv_nsec = total % 1_000_000_000
        return result
    }

    /// `a < b` for `timespec`.
    @inline(__always)
    package static func isBefore(_ a: timespec, _ b: timespec) -> Bool {
        a.tv_sec < b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec < b.tv_nsec)
    }

    /// `clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)` until `deadline`, resuming after signals.
    package static func sleep(until deadline: timespec) {
        var target = deadline
        while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &target, nil) == EINTR {}
    }

    /// Sleeps `seconds` on the monotonic clock.
    package static func sleep(seconds: Double) {
        guard seconds > 0 else { return }
        sleep(until: adding(Int(seconds * 1e9), to: monotonicTimespec()))
    }
}

extension Duration {
    /// The duration in seconds, as a `Double`: the unit every figure this tool reports uses.
    package var inSeconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) * 1e-18
    }
}
