#if canImport(Glibc)
import Glibc
#endif

/// A process's scheduling state: the third field of `/proc/<pid>/stat` (`R`, `S`, `D`, `T`, `Z` …).
public struct ProcessState: Sendable, Equatable, CustomStringConvertible {
    /// The state letter.
    public let code: Character

    /// Reads `/proc/<pid>/stat`; nil when the process is gone.
    public static func read(pid: pid_t) -> ProcessState? {
        guard let reader = try? ProcFileReader(path: "/proc/\(pid)/stat", initialCapacity: 1024),
            let text = try? reader.read({ String(decoding: $0, as: UTF8.self) })
        else { return nil }
        return parse(stat: text)
    }

    /// The state after the command name, which is in parentheses and may itself hold spaces and parentheses.
    public static func parse(stat text: String) -> ProcessState? {
        guard let close = text.lastIndex(of: ")") else { return nil }
        let rest = text[text.index(after: close)...].drop { $0 == " " }
        return rest.first.map { ProcessState(code: $0) }
    }

    /// True when the process is stopped (SIGSTOP, a debugger).
    public var isStopped: Bool { code == "T" || code == "t" }

    public var description: String {
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
