import Synchronization
import TensorEngine

/// The named phases of a load (`init`, `read shard 2/4`, `cast`, …), each closed with the ledger's live bytes,
/// and the index of the current phase for a sampler thread to tag its samples with.
public final class PhaseLog: Sendable {
    public struct Phase: Sendable, Equatable {
        public let name: String
        /// Seconds since the log was created.
        public let startSeconds: Double
        public let endSeconds: Double
        /// The ledger's live bytes when the phase began and ended.
        public let ledgerLiveBytesAtStart: Int
        public let ledgerLiveBytesAtEnd: Int
    }

    private struct Open {
        var name: String
        var start: Double
        var liveAtStart: Int
    }

    private let ledger: MemoryLedger
    private let clockStart: ContinuousClock.Instant
    private let state = Mutex<(phases: [Phase], open: Open?)>(([], nil))
    private let currentIndex = Atomic<Int>(-1)

    public init(ledger: MemoryLedger, start: ContinuousClock.Instant = .now) {
        self.ledger = ledger
        self.clockStart = start
    }

    public var elapsedSeconds: Double { (ContinuousClock.now - clockStart).inSeconds }

    /// Closes the open phase (if any) and opens `name`.
    public func begin(_ name: String) {
        let now = elapsedSeconds
        let live = ledger.liveBytes
        state.withLock { s in
            if let open = s.open {
                s.phases.append(Phase(name: open.name, startSeconds: open.start, endSeconds: now, ledgerLiveBytesAtStart: open.liveAtStart, ledgerLiveBytesAtEnd: live))
            }
            s.open = Open(name: name, start: now, liveAtStart: live)
            currentIndex.store(s.phases.count, ordering: .relaxed)
        }
    }

    /// Closes the open phase.
    public func end() {
        let now = elapsedSeconds
        let live = ledger.liveBytes
        state.withLock { s in
            if let open = s.open {
                s.phases.append(Phase(name: open.name, startSeconds: open.start, endSeconds: now, ledgerLiveBytesAtStart: open.liveAtStart, ledgerLiveBytesAtEnd: live))
            }
            s.open = nil
            currentIndex.store(-1, ordering: .relaxed)
        }
    }

    /// The index (into `phases`) of the phase under way, or -1 between phases. Cheap: read by the sampler.
    public var currentPhaseIndex: Int { currentIndex.load(ordering: .relaxed) }

    public var phases: [Phase] { state.withLock { $0.phases } }

    /// Names of every phase begun so far, including the open one, by index.
    public var phaseNames: [String] {
        state.withLock { s in s.phases.map(\.name) + (s.open.map { [$0.name] } ?? []) }
    }
}
