import OSLayer
import ResultsFormat
import TensorEngine

/// The process exit statuses bigmodel-bench documents (README, "Exit statuses"). The 64+ codes follow BSD
/// sysexits so shell scripts can tell bad usage from bad data from a broken disk.
///
/// This is the policy of the layer that decides outcomes: the library layers raise errors with a
/// `FailureCategory`; ``init(_:)`` maps a category to its status, ``init(results:)`` a scenario's results, and
/// `Comparison.exitStatus` a comparison.
package enum ExitStatus: Int32, Sendable, CaseIterable {
    /// Everything asked for was done and every claim held.
    case success = 0
    /// A run's verdict was `fail` or `oom`: a claimed bound did not hold.
    case claimFailed = 1
    /// `compare` found a regression.
    case regression = 2
    /// A measured run died unexpectedly (killed by a signal, crashed, hung, or its results were unreadable).
    case runDied = 3
    /// `compare`: the baseline is missing or belongs to another scenario.
    case baselineMismatch = 5
    /// Bad command line (sysexits EX_USAGE).
    case usage = 64
    /// Bad input data: a malformed checkpoint, config or scenario (EX_DATAERR).
    case dataError = 65
    /// An input file does not exist or cannot be opened (EX_NOINPUT).
    case noInput = 66
    /// A program a subject needs is missing: the Python interpreter, torch/transformers, a loader command
    /// (EX_UNAVAILABLE). Found before anything is measured.
    case unavailable = 69
    /// Reading or writing failed, or the disk is too small (EX_IOERR).
    case ioError = 74
    /// Stopped by SIGINT or SIGTERM (128 + SIGINT, as shells report it).
    case interrupted = 130

    /// The status an error of `category` exits with.
    package init(_ category: FailureCategory) {
        switch category {
        case .usage: self = .usage
        case .badData: self = .dataError
        case .missingInput: self = .noInput
        case .io: self = .ioError
        case .outOfMemory: self = .claimFailed
        case .interrupted: self = .interrupted
        case .notComparable: self = .baselineMismatch
        case .unavailable: self = .unavailable
        }
    }

    /// What `run` exits with for its own results, before any comparison: interrupted (130) first, then a run
    /// that died (3), then a claim that failed or a cap that was hit (1) — a sweep's fit that failed (its slope
    /// against the claim, its held-out size, its line) included —, else success.
    package init(results: ScenarioResults) {
        if results.stoppedReason == .interrupted {
            self = .interrupted
        } else if results.runs.contains(where: { $0.verdict == .error }) {
            self = .runDied
        } else if results.runs.contains(where: { $0.verdict == .fail || $0.verdict == .oom })
            || (results.fits ?? []).contains(where: { $0.verdict == .fail })
        {
            self = .claimFailed
        } else {
            self = .success
        }
    }

    /// What `run` exits with in all: its own results first, then the comparison with `--baseline`, then a
    /// report that could not be written.
    package static func forRun(results: ScenarioResults, comparison: ExitStatus, report: ExitStatus) -> ExitStatus {
        [ExitStatus(results: results), comparison, report].first { $0 != .success } ?? .success
    }
}
