import OSLayer
import Synchronization
import TensorEngine

/// The named phases of a load (`init`, `read shard 2/4`, `cast`, …), each closed with the ledger's live bytes,
/// and the index of the current phase for a sampler thread to tag its samples with.
package final class PhaseLog: Sendable {
    package struct Phase: Sendable, Equatable {
        package let name: String
        /// Seconds since the log was created.
        package let startSeconds: Double
        package let endSeconds: Double
        /// The ledger's live bytes when the phase began and ended.
        package let ledgerLiveBytesAtStart: Int
        package let ledgerLiveBytesAtEnd: Int
    }

    private struct Open {
        var name: String
        var start: Double
        var liveAtStart: Int
    }

    /// A phase beginning or ending, as it happens (for a child's event stream).
    package enum Transition: Sendable, Equatable {
        case began(name: String, seconds: Double, ledgerLiveBytes: Int)
        case ended(name: String, seconds: Double, ledgerLiveBytes: Int)
    }

    private let ledger: MemoryLedger
    private let clockStart: ContinuousClock.Instant
    private let state = Mutex<(phases: [Phase], open: Open?)>(([], nil))
    private let currentIndex = Atomic<Int>(-1)
    private let observer: (@Sendable (Transition) -> Void)?

    /// `observer` is called on the loading thread at every transition, after the log is updated.
    package init(
        ledger: MemoryLedger, start: ContinuousClock.Instant = .now, observer: (@Sendable (Transition) -> Void)? = nil
    ) {
        self.ledger = ledger
        self.clockStart = start
        self.observer = observer
    }

    package var elapsedSeconds: Double { (ContinuousClock.now - clockStart).inSeconds }

    /// Closes the open phase (if any) and opens `name`.
    package func begin(_ name: String) {
        transition(to: name)
    }

    /// Closes the open phase.
    package func end() {
        transition(to: nil)
    }

    private func transition(to name: String?) {
        let now = elapsedSeconds
        let live = ledger.liveBytes
        let closed: String? = state.withLock { s in
            let closed = s.open?.name
            if let open = s.open {
                s.phases.append(
                    Phase(
                        name: open.name, startSeconds: open.start, endSeconds: now,
                        ledgerLiveBytesAtStart: open.liveAtStart, ledgerLiveBytesAtEnd: live))
            }
            s.open = name.map { Open(name: $0, start: now, liveAtStart: live) }
            currentIndex.store(name == nil ? -1 : s.phases.count, ordering: .relaxed)
            return closed
        }
        if let closed { observer?(.ended(name: closed, seconds: now, ledgerLiveBytes: live)) }
        if let name { observer?(.began(name: name, seconds: now, ledgerLiveBytes: live)) }
    }

    /// The index (into `phases`) of the phase under way, or -1 between phases. Cheap: read by the sampler.
    package var currentPhaseIndex: Int { currentIndex.load(ordering: .relaxed) }

    package var phases: [Phase] { state.withLock { $0.phases } }

}
