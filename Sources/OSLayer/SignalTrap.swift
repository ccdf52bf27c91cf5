import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Turns SIGINT/SIGTERM into a flag the program polls, instead of dying mid-measurement.
///
/// ``install(signals:)`` sets a `sigaction` handler (with `SA_RESTART`) that only increments a lock-free
/// `Synchronization.Atomic` counter and stores the signal number — both async-signal-safe. The program checks
/// ``interrupted`` between steps, stops its children (``ChildProcess/terminate(grace:)``), writes what it has,
/// and exits. The atomics live in a `static let`, initialised by `install` before the handler can run, so the
/// handler never triggers lazy initialisation.
package enum SignalTrap {
    private static let count = Atomic<Int>(0)
    private static let last = Atomic<Int32>(0)

    /// The handler: async-signal-safe (two atomic operations, no allocation, no locks).
    private static let handler: @convention(c) (Int32) -> Void = { signal in
        SignalTrap.count.add(1, ordering: .relaxed)
        SignalTrap.last.store(signal, ordering: .relaxed)
    }

    /// Installs the handler for `signals` (default SIGINT and SIGTERM) with `sigaction`.
    package static func install(signals: [Int32] = [SIGINT, SIGTERM]) throws(SystemCallError) {
        _ = count.load(ordering: .relaxed)  // force initialisation before any signal can arrive
        _ = last.load(ordering: .relaxed)
        for signal in signals {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = handler
            action.sa_flags = SA_RESTART
            sigemptyset(&action.sa_mask)
            guard sigaction(signal, &action, nil) == 0 else {
                throw .current("sigaction", ChildTermination.signalName(signal))
            }
            // A parent may have started us with the signal blocked (posix_spawn and fork inherit the mask;
            // test runners block signals in their workers): unblock it in the calling thread, or the handler
            // would never run.
            var set = sigset_t()
            sigemptyset(&set)
            sigaddset(&set, signal)
            pthread_sigmask(SIG_UNBLOCK, &set, nil)
        }
    }

    /// Restores the default disposition (`SIG_DFL`) of `signals`.
    package static func uninstall(signals: [Int32] = [SIGINT, SIGTERM]) {
        for signal in signals {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = SIG_DFL
            sigemptyset(&action.sa_mask)
            sigaction(signal, &action, nil)
        }
    }

    /// Whether a trapped signal has arrived since install (or the last ``reset()``).
    package static var interrupted: Bool { count.load(ordering: .relaxed) > 0 }

    /// How many trapped signals have arrived (a second Ctrl-C can mean "stop now").
    package static var signalCount: Int { count.load(ordering: .relaxed) }

    /// The most recent trapped signal's number, nil when none.
    package static var lastSignal: Int32? {
        let value = last.load(ordering: .relaxed)
        return value == 0 ? nil : value
    }

    /// Clears the flag and count.
    package static func reset() {
        count.store(0, ordering: .relaxed)
        last.store(0, ordering: .relaxed)
    }
}
