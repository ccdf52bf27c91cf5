import Loading
import OSLayer
import Probes
import ResultsFormat
import TensorEngine

/// Turns what a measured child did into a run's result and verdict.
///
/// A run is `pass` only when the child delivered its final measurement, exited 0 by itself, and every claim
/// held. A child that the watchdog or the user ended, that died by a signal (even one it survived long enough
/// to send a measurement), that reported a failure, or that exited without a measurement is `error`, with
/// the reason in one line; one that hit its memory cap is `oom`.
package struct Judge: Sendable {
    /// The engine's tolerance, and the one for loaders outside this tool.
    package let tolerance: Scenario.Tolerance
    package let subjectTolerance: Scenario.Tolerance

    package init(tolerance: Scenario.Tolerance, subjectTolerance: Scenario.Tolerance = Subject.loaderTolerance) {
        self.tolerance = tolerance
        self.subjectTolerance = subjectTolerance
    }

    func checker(for run: Scenario.Run) -> ClaimChecker {
        ClaimChecker(tolerance: run.subject.isEngine ? tolerance : subjectTolerance)
    }

    /// Judges the run on the outcome's measurement: the engine's own, or a loader's the runner assembled
    /// (``OutsideMeasurement``).
    package func judge(run: Scenario.Run, repeatIndex: Int, outcome: ChildRunner.Outcome, floor: FloorInfo?)
        -> RunResult
    {
        var result = RunResult(
            id: run.id, strategy: run.strategy, dtype: TargetDType(run.dtype), repeatIndex: repeatIndex,
            verdict: .error, verdictDetail: "",
            checks: [], formula: run.strategy.strategy.formula, figures: nil, predictedPeakBytes: nil,
            upperBoundBytes: nil, lowerBoundBytes: nil,
            toleranceBytes: nil, measurement: nil, exit: RunExit(outcome.exit), seconds: nil, floorMultiple: nil)
        result.subject = run.subject.isEngine ? nil : run.subject
        if let (verdict, reason) = Self.errorReason(outcome, subject: run.subject) {
            result.verdict = verdict
            result.verdictDetail = reason
            result.exit.stderrTail = outcome.stderrTail
            return result
        }
        guard var measurement = outcome.measurement else {
            result.verdictDetail = "no prediction to hold the loader's figures to"
            return result
        }
        if case .outside(var outside) = measurement.loader {
            outside.residency = ClaimChecker.residency(
                measurement, tolerance: checker(for: run).tolerance.bytes(for: measurement.predictedPeakBytes))
            measurement.loader = .outside(outside)
        }
        let judged = checker(for: run).evaluate(measurement)
        result.dtype = .resolved(measurement.dtype)
        result.verdict = judged.verdict
        result.verdictDetail = judged.detail
        result.checks = judged.checks
        result.formula = measurement.formula
        result.figures = measurement.figures
        result.predictedPeakBytes = measurement.predictedPeakBytes
        result.upperBoundBytes = judged.upperBoundBytes
        result.lowerBoundBytes = judged.lowerBoundBytes
        result.toleranceBytes = judged.toleranceBytes
        result.measurement = measurement
        result.seconds = measurement.seconds
        if let floor, floor.seconds > 0 { result.floorMultiple = measurement.seconds / floor.seconds }
        return result
    }

    /// The verdict and reason when the run cannot be judged on its measurement, or nil when it can.
    static func errorReason(_ outcome: ChildRunner.Outcome, subject: Subject = .engine) -> (Verdict, String)? {
        if let stop = outcome.stop { return stopReason(stop) }
        if outcome.failure?.kind == .outOfMemory, let failure = outcome.failure {
            return (.oom, "the child reported out_of_memory: \(failure.message)")
        }
        return failureReason(outcome, subject: subject).map { (.error, $0) }
    }

    static func stopReason(_ stop: ChildRunner.Stop) -> (Verdict, String) {
        switch stop {
        case .interrupted: return (.error, "interrupted by the user")
        case .stalled(let seconds, let state):
            return (
                .error,
                "watchdog: the child sent nothing for \(Int(seconds)) s" + (state.map { " (it was \($0))" } ?? "")
                    + " and was killed"
            )
        case .timedOut(let seconds):
            return (.error, "watchdog: the child ran past its \(Int(seconds)) s limit and was killed")
        case .rendezvousTimedOut(let seconds, let missing, let total):
            let names = missing.map(String.init).joined(separator: ", ")
            return (
                .error,
                "rendezvous: local rank\(missing.count == 1 ? "" : "s") \(names) of \(total) never reached the start barrier within \(Int(seconds.rounded())) s (rendezvous_timeout_s)"
            )
        case .memoryCap(let reached, let cap):
            return (
                .oom,
                "hit its \(ByteSize.binary(cap)) memory cap: sampled RssAnon reached \(ByteSize.binary(reached)), and the loader was killed"
            )
        }
    }

    static func failureReason(_ outcome: ChildRunner.Outcome, subject: Subject) -> String? {
        if let spawnError = outcome.spawnError { return "the child could not be started: \(spawnError)" }
        if let hello = outcome.hello, hello.protocolVersion != ChildProtocol.version {
            return "the child speaks protocol \(hello.protocolVersion), this bigmodel-bench \(ChildProtocol.version)"
        }
        if let termination = outcome.exit?.termination, case .signaled(let signal, _) = termination {
            let oomKilled = termination.isKill && (CgroupMemory.current()?.oomKillCount ?? 0) > 0
            return "the child died of \(ChildTermination.signalName(signal))"
                + (oomKilled ? " (the kernel's OOM killer: the cgroup's oom_kill count is non-zero)" : "")
        }
        if let failure = outcome.failure {
            if failure.kind == .signal {
                return "the child received \(failure.signalName ?? "a fatal signal") and did not survive it cleanly"
            }
            return "the child reported \(failure.kind.rawValue): \(failure.message)"
        }
        let delivered =
            subject.isEngine
            ? outcome.measurement != nil || outcome.floor != nil : outcome.hello == nil || outcome.subjectResult != nil
        if case .exited(let code)? = outcome.exit?.termination, code != 0 {
            if !subject.isEngine { return "the loader exited with status \(code)" }
            return "the child exited with status \(code)"
                + (delivered ? " after its measurement" : " and no measurement")
        }
        if !delivered {
            return subject.isEngine
                ? "the child exited without sending its measurement" : "the loader exited without sending its result"
        }
        return nil
    }
}

extension RunExit {
    /// How the child ended, from `wait4`; all absent when it never ran.
    init(_ exit: ChildExit?) {
        self.init(
            status: nil, signal: nil, signalName: nil, coreDumped: false,
            rusageMaxRssBytes: exit?.resourceUsage.maxRSSBytes,
            userSeconds: exit?.resourceUsage.userCPUSeconds, systemSeconds: exit?.resourceUsage.systemCPUSeconds,
            stderrTail: nil)
        switch exit?.termination {
        case .exited(let code)?: status = code
        case .signaled(let signal, let core)?:
            self.signal = signal
            signalName = ChildTermination.signalName(signal)
            coreDumped = core
        case nil: break
        }
    }
}
