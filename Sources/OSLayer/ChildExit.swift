#if canImport(Glibc)
import Glibc
#endif

/// How a child process ended, decoded from a `wait4` status.
package enum ChildTermination: Sendable, Equatable, CustomStringConvertible {
    /// It called `exit(code)` (`WIFEXITED`, `WEXITSTATUS`).
    case exited(code: Int32)
    /// A signal ended it (`WIFSIGNALED`, `WTERMSIG`, `WCOREDUMP`). An OOM-killed process ends by SIGKILL.
    case signaled(signal: Int32, coreDumped: Bool)

    /// Decodes a raw `wait` status (the `WIF*` macros, which Swift cannot import). Nil for a stopped or
    /// continued status.
    package init?(waitStatus status: Int32) {
        let low = status & 0x7f
        if low == 0 {
            self = .exited(code: (status >> 8) & 0xff)
        } else if low != 0x7f && status & 0xffff != 0xffff {
            self = .signaled(signal: low, coreDumped: status & 0x80 != 0)
        } else {
            return nil
        }
    }

    /// True when SIGKILL ended it (what the kernel's OOM killer sends).
    package var isKill: Bool {
        if case .signaled(let signal, _) = self { return signal == SIGKILL }
        return false
    }

    /// The terminating signal's name ("SIGKILL"), nil for a normal exit.
    package var signalName: String? {
        if case .signaled(let signal, _) = self { return Self.signalName(signal) }
        return nil
    }

    /// The conventional name of a Linux signal number: "SIGKILL", "SIGRTMIN+3", or "SIG<n>" when unknown.
    package static func signalName(_ number: Int32) -> String {
        let names: [(Int32, String)] = [
            (SIGHUP, "SIGHUP"), (SIGINT, "SIGINT"), (SIGQUIT, "SIGQUIT"), (SIGILL, "SIGILL"), (SIGTRAP, "SIGTRAP"),
            (SIGABRT, "SIGABRT"), (SIGBUS, "SIGBUS"), (SIGFPE, "SIGFPE"), (SIGKILL, "SIGKILL"), (SIGUSR1, "SIGUSR1"),
            (SIGSEGV, "SIGSEGV"), (SIGUSR2, "SIGUSR2"), (SIGPIPE, "SIGPIPE"), (SIGALRM, "SIGALRM"),
            (SIGTERM, "SIGTERM"), (SIGSTKFLT, "SIGSTKFLT"), (SIGCHLD, "SIGCHLD"), (SIGCONT, "SIGCONT"),
            (SIGSTOP, "SIGSTOP"), (SIGTSTP, "SIGTSTP"), (SIGTTIN, "SIGTTIN"), (SIGTTOU, "SIGTTOU"),
            (SIGURG, "SIGURG"), (SIGXCPU, "SIGXCPU"), (SIGXFSZ, "SIGXFSZ"), (SIGVTALRM, "SIGVTALRM"),
            (SIGPROF, "SIGPROF"), (SIGWINCH, "SIGWINCH"), (SIGIO, "SIGIO"), (SIGPWR, "SIGPWR"), (SIGSYS, "SIGSYS"),
        ]
        if let match = names.first(where: { $0.0 == number }) { return match.1 }
        let realtimeMin = __libc_current_sigrtmin()
        let realtimeMax = __libc_current_sigrtmax()
        if number == realtimeMin { return "SIGRTMIN" }
        if number > realtimeMin && number <= realtimeMax { return "SIGRTMIN+\(number - realtimeMin)" }
        return "SIG\(number)"
    }

    package var description: String {
        switch self {
        case .exited(let code): return "exited with status \(code)"
        case .signaled(let signal, let core):
            return "killed by \(Self.signalName(signal)) (\(signal))" + (core ? ", core dumped" : "")
        }
    }
}

/// A reaped child: how it ended and what it used.
package struct ChildExit: Sendable, Equatable {
    /// Exit status or terminating signal.
    package var termination: ChildTermination
    /// The child's `rusage` from `wait4` (includes its own reaped descendants). Its `maxRSSBytes` suffers the
    /// exec pitfall (see ``ChildResourceUsage/maxRSSBytes``).
    package var resourceUsage: ChildResourceUsage

    package init(termination: ChildTermination, resourceUsage: ChildResourceUsage) {
        self.termination = termination
        self.resourceUsage = resourceUsage
    }
}
