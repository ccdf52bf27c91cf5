#if canImport(Glibc)
import Glibc
#endif

/// Makes a fatal signal fatal, and says so on a descriptor first.
///
/// The Swift runtime's crash handler prints a backtrace on SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT and
/// SIGTRAP and then *returns*: for a real fault the faulting instruction runs again and the process dies, but a
/// signal sent with `kill` is simply survived — a measured child sent SIGSEGV printed a crash report, carried
/// on, and exited 0. ``install(reportingTo:line:)`` puts a handler in front (`sigaction`, `SA_SIGINFO`) that
///
/// 1. writes a line prepared beforehand for that signal to `descriptor` (one `write`, async-signal-safe), so
///    the parent learns what happened even before it reaps the child;
/// 2. runs the handler that was installed before (the runtime's backtracer), if any;
/// 3. restores the default disposition and re-raises the signal, so the process dies by it whatever the
///    previous handler did, and its parent's `wait4` reports the signal.
package enum FatalSignalGuard {
    /// The signals treated as fatal.
    package static let signals: [Int32] = [SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP]

    /// Per signal number (1…64): the prepared line and the previous action. Written by `install` before the
    /// handler is installed, only read by the handler (no locks, no allocation).
    private nonisolated(unsafe) static let table = UnsafeMutablePointer<Entry>.allocate(capacity: 65)
    private nonisolated(unsafe) static var descriptor: Int32 = -1

    private struct Entry {
        var line: UnsafeMutableRawPointer?
        var length: Int
        var previous: sigaction
        var hasPrevious: Bool
    }

    private static let handler:
        @convention(c) (Int32, UnsafeMutablePointer<siginfo_t>?, UnsafeMutableRawPointer?) -> Void = {
            signal, info, context in
            guard signal > 0 && signal < 65 else { return }
            let entry = FatalSignalGuard.table[Int(signal)]
            if let line = entry.line, FatalSignalGuard.descriptor >= 0 {
                _ = write(FatalSignalGuard.descriptor, line, entry.length)
            }
            chainAndDie(signal, info, context, previous: entry.hasPrevious ? entry.previous : nil)
        }

    /// What a fatal signal does without this process's handler in front: the handler installed before runs
    /// (when there was one, and it was not `SIG_DFL` or `SIG_IGN`), then the default disposition is restored,
    /// the signal unblocked and raised again, so the process dies by it. Async-signal-safe (no locks, no
    /// allocation); shared by ``FatalSignalGuard`` and ``FileWindowGuard``.
    static func chainAndDie(
        _ signal: Int32, _ info: UnsafeMutablePointer<siginfo_t>?, _ context: UnsafeMutableRawPointer?,
        previous: sigaction?
    ) {
        if let old = previous {
            if old.sa_flags & SA_SIGINFO != 0, let action = old.__sigaction_handler.sa_sigaction {
                action(signal, info, context)
            } else if let action = old.__sigaction_handler.sa_handler,
                unsafeBitCast(action, to: Int.self) != unsafeBitCast(SIG_DFL, to: Int.self),
                unsafeBitCast(action, to: Int.self) != unsafeBitCast(SIG_IGN, to: Int.self)
            {
                action(signal)
            }
        }
        var defaults = sigaction()
        defaults.__sigaction_handler.sa_handler = SIG_DFL
        sigemptyset(&defaults.sa_mask)
        sigaction(signal, &defaults, nil)
        var unblock = sigset_t()
        sigemptyset(&unblock)
        sigaddset(&unblock, signal)
        pthread_sigmask(SIG_UNBLOCK, &unblock, nil)
        raise(signal)
    }

    /// Installs the guard; `line(signal, name)` gives the bytes to write for each signal (a newline-terminated
    /// JSON event, say). Call once, early, from one thread.
    package static func install(reportingTo descriptor: Int32, line: (Int32, String) -> [UInt8]) throws(SystemCallError)
    {
        table.initialize(repeating: Entry(line: nil, length: 0, previous: sigaction(), hasPrevious: false), count: 65)
        Self.descriptor = descriptor
        for signal in signals {
            let bytes = line(signal, ChildTermination.signalName(signal))
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 1)
            buffer.copyBytes(from: bytes)
            var action = sigaction()
            action.__sigaction_handler.sa_sigaction = handler
            action.sa_flags = SA_SIGINFO | SA_ONSTACK
            sigemptyset(&action.sa_mask)
            var old = sigaction()
            guard sigaction(signal, &action, &old) == 0 else {
                throw .current("sigaction", ChildTermination.signalName(signal))
            }
            table[Int(signal)] = Entry(line: buffer.baseAddress, length: bytes.count, previous: old, hasPrevious: true)
        }
    }
}
