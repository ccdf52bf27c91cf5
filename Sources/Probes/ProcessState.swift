#if canImport(Glibc)
import Glibc
#endif

/// A process's scheduling state and CPU time: fields 3, 14 and 15 of `/proc/<pid>/stat`.
package struct ProcessState: Sendable, Equatable, CustomStringConvertible {
    /// The state letter (`R`, `S`, `D`, `T`, `Z` …).
    package let code: Character
    /// `utime + stime`, in clock ticks: CPU time used so far (a stopped process's stays put).
    package var cpuTicks: Int = 0

    /// Reads `/proc/<pid>/stat`; nil when the process is gone.
    package static func read(pid: pid_t) -> ProcessState? {
        guard let reader = try? ProcFileReader(path: "/proc/\(pid)/stat", initialCapacity: 1024),
            let text = try? reader.read({ String(decoding: $0, as: UTF8.self) })
        else { return nil }
        return parse(stat: text)
    }

    /// The fields after the command name, which is in parentheses and may itself hold spaces and parentheses.
    package static func parse(stat text: String) -> ProcessState? {
        guard let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard let state = fields.first?.first else { return nil }
        // After the name: state (3), ppid, pgrp, session, tty, tpgid, flags, minflt, cminflt, majflt, cmajflt,
        // utime (14), stime (15).
        let ticks = fields.count > 12 ? (Int(fields[11]) ?? 0) + (Int(fields[12]) ?? 0) : 0
        return ProcessState(code: state, cpuTicks: ticks)
    }

    /// True when the process is stopped (SIGSTOP, a debugger).
    package var isStopped: Bool { code == "T" || code == "t" }

    package var description: String {
        switch code {
        case "R": "running"
        case "S": "sleeping"
        case "D": "in uninterruptible sleep (I/O)"
        case "T": "stopped (SIGSTOP?)"
        case "t": "stopped by a tracer"
        case "Z": "a zombie"
        default: "in state \(code)"
        }
    }
}
