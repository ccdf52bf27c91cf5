import Loading
import Probes
import ResultsFormat
import TensorEngine

/// Turns one run's measurement into checks and a verdict.
///
/// The checks must be trustworthy in both directions:
/// - the ledger's peak must equal the prediction exactly (the strategy does what its formula says);
/// - the kernel's figures must stay under predicted + tolerance (no hidden copy the ledger does not see);
/// - where the claim is that a path is expensive (naive: two copies; load-then-cast: the float32 model plus
///   the target), the measured peak must also reach predicted − tolerance, so a probe that misses memory fails;
/// - RSS anon, jemalloc and the ledger must agree within tolerance.
package struct ClaimChecker: Sendable {
    package let tolerance: Scenario.Tolerance

    package init(tolerance: Scenario.Tolerance) {
        self.tolerance = tolerance
    }

    /// Strategies whose claim includes a lower bound.
    package static func hasLowerBound(_ strategy: StrategyName) -> Bool {
        strategy == .naive || strategy == .loadThenCast
    }

    package struct Outcome: Sendable, Equatable {
        package var verdict: Verdict
        package var detail: String
        package var checks: [Check]
        package var upperBoundBytes: Int
        package var lowerBoundBytes: Int?
        package var toleranceBytes: Int
    }

    /// device-map: each device's ledger peak is exactly its placed bytes (+ staging on cpu), no accelerator
    /// passes its budget, each accelerator's jemalloc arena holds what the ledger says, and the disk holds the
    /// rest of the model (written to the offload folder or referenced in place).
    static func deviceChecks(_ usage: DeviceUsage) -> [Check] {
        var checks: [Check] = []
        for d in usage.devices where d.device != .disk {
            checks.append(
                Check(
                    .deviceLedgerEqualsShare(d.device), measuredBytes: d.ledgerPeakBytes,
                    boundBytes: d.predictedPeakBytes,
                    relation: .equal,
                    detail: "bytes placed on \(d.device)"
                        + (d.stagingBytes > 0 ? " plus the \(ByteSize.binary(d.stagingBytes)) staging buffer" : "")))
            if d.device == .cpu {
                if let budget = d.budgetBytes {
                    checks.append(
                        Check(
                            .cpuShareWithinBudget, measuredBytes: d.placedBytes, boundBytes: budget,
                            relation: .atMost,
                            detail: "max_memory[cpu]; the staging buffer is reported beside it"))
                }
            } else if let limit = d.budgetBytes ?? d.capacityBytes {
                checks.append(
                    Check(
                        .acceleratorWithinBudget(d.device), measuredBytes: d.ledgerPeakBytes,
                        boundBytes: limit, relation: .atMost,
                        detail: d.budgetBytes != nil
                            ? "max_memory[\(d.device)]" : "the simulated accelerator's capacity"))
            }
            if let allocated = d.arenaAllocatedBytes, let expected = d.arenaExpectedBytes {
                checks.append(
                    Check(
                        .arenaAgreesWithLedger(d.device),
                        measuredBytes: abs(allocated - expected), boundBytes: 1 << 20,
                        relation: .within,
                        detail: "the accelerator's own arena: stats.arenas.<i>.allocated vs the ledger at size classes")
                )
            }
        }
        let disk = usage.figures(.disk)?.placedBytes ?? 0
        checks.append(
            Check(
                .diskHoldsTheRest, measuredBytes: usage.offloadWrittenBytes + usage.offloadReferencedBytes,
                boundBytes: disk, relation: .equal,
                detail:
                    "\(usage.offloadWrittenFiles) tensors written to the offload folder, \(usage.offloadReferencedTensors) referenced in place"
            ))
        return checks
    }

    /// The bounds on the kernel's figures: each under predicted + tolerance; for an expensive claim each also
    /// reaching predicted − tolerance. A figure the probes could not read fails its check (it is never 0).
    /// `mapped`: bytes VmHWM may hold beyond `upper` (mmap's mapped file pages; RssAnon may not).
    func boundChecks(
        _ peaks: PeakDeltas, upper: Int, lower: Int?, vmhwm: CheckKind.BoundFigure = .vmhwm, mapped: Int = 0
    ) -> [Check] {
        var checks: [Check] = []
        let figures: [(MemoryFigure, CheckKind.BoundFigure, String)] = [
            (.vmhwm, vmhwm, "kernel high-water mark of VmRSS minus baseline VmRSS"),
            (.rssAnon, .rssAnon, "sampled maximum of RssAnon minus baseline"),
        ]
        for (figure, name, detail) in figures {
            guard let measured = peaks[figure] else {
                checks.append(
                    Check(
                        .figureRead(name), passed: false, measuredBytes: 0, boundBytes: 0, relation: .atLeast,
                        detail: "\(figure.title) could not be read"))
                continue
            }
            checks.append(
                Check(
                    .withinUpperBound(name), measuredBytes: measured,
                    boundBytes: figure == .vmhwm ? upper + mapped : upper, relation: .atMost,
                    detail: figure == .vmhwm && mapped > 0
                        ? detail + ", which may hold the mapped file's pages" : detail))
            if let lower {
                checks.append(
                    Check(
                        .reachesLowerBound(name), measuredBytes: measured, boundBytes: lower,
                        relation: .atLeast,
                        detail: "the claim is a high cost: a probe that misses memory must fail"))
            }
        }
        return checks
    }

    /// mmap: RssAnon holds only the owned bytes (≤ predicted + tolerance), RssFile holds the mapped views —
    /// the mapped tensor bytes within the tolerance either way — and VmHWM both.
    func mmapChecks(_ m: RunMeasurement, _ engine: RunMeasurement.Engine, upper: Int, tolerance tol: Int) -> [Check] {
        let mapped = engine.mappedBytes ?? m.figures.mappedBytes ?? 0
        let fileTolerance = tolerance.bytes(for: mapped)
        var checks = [Check]()
        if let anon = m.peaks[.rssAnon] {
            checks.append(
                Check(
                    .withinUpperBound(.rssAnon), measuredBytes: anon, boundBytes: upper,
                    relation: .atMost, detail: "only the owned bytes are anonymous"))
        }
        if let file = m.peaks[.rssFile] {
            checks.append(
                Check(
                    .withinUpperBound(.rssFile), measuredBytes: file,
                    boundBytes: mapped + fileTolerance, relation: .atMost,
                    detail: "the mapped tensor bytes (M_map = \(ByteSize.binary(mapped))), read once, plus tolerance"))
            checks.append(
                Check(
                    .reachesLowerBound(.rssFile), measuredBytes: file,
                    boundBytes: max(0, mapped - fileTolerance), relation: .atLeast,
                    detail: "every mapped page was read: a touch that read nothing must fail"))
        }
        if let hwm = m.peaks[.vmhwm] {
            checks.append(
                Check(
                    .withinUpperBound(.vmhwm), measuredBytes: hwm,
                    boundBytes: upper + mapped + fileTolerance, relation: .atMost,
                    detail: "owned plus mapped bytes: the kernel counts both"))
        }
        return checks
    }

    /// RSS anon and jemalloc against the ledger (jemalloc at its size classes, which is what it counts).
    func agreementChecks(_ m: RunMeasurement, _ engine: RunMeasurement.Engine) -> [Check] {
        let allowed = tolerance.bytes(for: engine.ledgerPeakBytes ?? 0)
        let ledger = m.peaks[.ledgerLive] ?? 0
        var checks: [Check] = []
        if let anon = m.peaks[.rssAnon] {
            checks.append(
                Check(
                    .anonAgreesWithLedger, measuredBytes: abs(anon - ledger), boundBytes: allowed,
                    relation: .within,
                    detail: "|RSS anon peak delta − ledger peak| = \(ByteSize.binary(abs(anon - ledger)))"))
        }
        if let jemalloc = m.peaks[.jemallocAllocated], let sizeClass = m.peaks[.ledgerSizeClass] {
            checks.append(
                Check(
                    .jemallocAgreesWithLedger, measuredBytes: abs(jemalloc - sizeClass), boundBytes: allowed,
                    relation: .within,
                    detail:
                        "|jemalloc stats.allocated peak delta − ledger peak at jemalloc size classes| = \(ByteSize.binary(abs(jemalloc - sizeClass)))"
                ))
        }
        return checks
    }

    package func evaluate(_ m: RunMeasurement) -> Outcome {
        let predicted = m.predictedPeakBytes
        let tol = tolerance.bytes(for: predicted)
        let upper = predicted + tol
        let lower: Int? = Self.hasLowerBound(m.strategy) ? max(0, predicted - tol) : nil
        func outcome(_ verdict: Verdict, _ detail: String, _ checks: [Check] = []) -> Outcome {
            Outcome(
                verdict: verdict, detail: detail, checks: checks, upperBoundBytes: upper, lowerBoundBytes: lower,
                toleranceBytes: tol)
        }
        if let oom = m.outOfMemory {
            return outcome(
                .oom,
                "hit its \(ByteSize.binary(oom.capBytes)) memory cap at \(ByteSize.binary(oom.reachedBytes)) live (+\(ByteSize.binary(oom.requestedBytes)) requested); predicted peak \(ByteSize.binary(predicted))"
            )
        }
        if let failure = m.failure { return outcome(.error, failure) }
        let engine: RunMeasurement.Engine
        switch m.loader {
        case .outside(let outside):
            return subjectOutcome(m, outside, upper: upper, lower: lower, tolerance: tol)
        case .engine(let figures): engine = figures
        }
        var checks = [
            engine.ledgerPeakBytes.map {
                Check(
                    .ledgerEqualsPrediction, measuredBytes: $0, boundBytes: predicted, relation: .equal,
                    detail: "\(m.formula) computed from the headers vs the ledger's exact peak")
            }
                ?? Check(
                    .ledgerRead, passed: false, measuredBytes: 0, boundBytes: 0, relation: .equal,
                    detail: "the engine reported no ledger peak")
        ]
        if m.strategy == .mmap {
            checks += mmapChecks(m, engine, upper: upper, tolerance: tol)
        } else {
            checks += boundChecks(m.peaks, upper: upper, lower: lower)
        }
        checks += agreementChecks(m, engine)
        if let usage = engine.devices { checks += Self.deviceChecks(usage) }
        if let retained = retainedCheck(m) { checks.append(retained) }
        let failed = checks.filter { !$0.passed }
        guard failed.isEmpty else {
            return outcome(.fail, failed.map(\.failureDescription).joined(separator: "; "), checks)
        }
        let peak = m.peaks[.vmhwm] ?? m.peaks[.rss] ?? 0
        return outcome(
            .pass,
            "every bound held: peak \(ByteSize.binary(peak)) (VmHWM Δ) vs predicted \(ByteSize.binary(predicted)) ± \(ByteSize.binary(tol))",
            checks)
    }
}
