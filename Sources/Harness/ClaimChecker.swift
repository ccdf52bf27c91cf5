import Loading
import TensorEngine

/// Turns one run's measurement into checks and a verdict.
///
/// The checks must be trustworthy in both directions:
/// - the ledger's peak must equal the prediction exactly (the strategy does what its formula says);
/// - the kernel's figures must stay under predicted + tolerance (no hidden copy the ledger does not see);
/// - where the claim is that a path is expensive (naive: two copies; load-then-cast: the float32 model plus
///   the target), the measured peak must also reach predicted − tolerance, so a probe that misses memory fails;
/// - RSS anon, jemalloc and the ledger must agree within tolerance.
public struct ClaimChecker: Sendable {
    public let tolerance: Scenario.Tolerance

    public init(tolerance: Scenario.Tolerance) {
        self.tolerance = tolerance
    }

    /// Strategies whose claim includes a lower bound.
    public static func hasLowerBound(_ strategy: StrategyName) -> Bool {
        strategy == .naive || strategy == .loadThenCast
    }

    public struct Outcome: Sendable, Equatable {
        public var verdict: Verdict
        public var detail: String
        public var checks: [Check]
        public var upperBoundBytes: Int
        public var lowerBoundBytes: Int?
        public var toleranceBytes: Int
    }

    /// device-map: each device's ledger peak is exactly its placed bytes (+ staging on cpu), no accelerator
    /// passes its budget, each accelerator's jemalloc arena holds what the ledger says, and the disk holds the
    /// rest of the model (written to the offload folder or referenced in place).
    static func deviceChecks(_ usage: DeviceUsage) -> [Check] {
        var checks: [Check] = []
        for d in usage.devices where d.device != "disk" {
            checks.append(
                Check(
                    name: "ledger peak on \(d.device) equals its share", passed: d.ledgerPeakBytes == d.predictedPeakBytes,
                    measuredBytes: d.ledgerPeakBytes, boundBytes: d.predictedPeakBytes, relation: "==",
                    detail: "bytes placed on \(d.device)" + (d.stagingBytes > 0 ? " plus the \(ByteSize.binary(d.stagingBytes)) staging buffer" : "")))
            if d.device == "cpu" {
                if let budget = d.budgetBytes {
                    checks.append(
                        Check(
                            name: "cpu share within its budget", passed: d.placedBytes <= budget, measuredBytes: d.placedBytes, boundBytes: budget,
                            relation: "<=", detail: "max_memory[cpu]; the staging buffer is reported beside it"))
                }
            } else if let limit = d.budgetBytes ?? d.capacityBytes {
                checks.append(
                    Check(
                        name: "accelerator \(d.device) peak within its budget", passed: d.ledgerPeakBytes <= limit, measuredBytes: d.ledgerPeakBytes,
                        boundBytes: limit, relation: "<=", detail: d.budgetBytes != nil ? "max_memory[\(d.device)]" : "the simulated accelerator's capacity"))
            }
            if let allocated = d.arenaAllocatedBytes, let expected = d.arenaExpectedBytes {
                let gap = abs(allocated - expected)
                checks.append(
                    Check(
                        name: "jemalloc arena of \(d.device) agrees with ledger", passed: gap <= 1 << 20, measuredBytes: gap, boundBytes: 1 << 20,
                        relation: "within", detail: "the accelerator's own arena: stats.arenas.<i>.allocated vs the ledger at size classes"))
            }
        }
        let disk = usage.figures("disk")?.placedBytes ?? 0
        let onDisk = usage.offloadWrittenBytes + usage.offloadReferencedBytes
        checks.append(
            Check(
                name: "disk holds the rest", passed: onDisk == disk, measuredBytes: onDisk, boundBytes: disk, relation: "==",
                detail: "\(usage.offloadWrittenFiles) tensors written to the offload folder, \(usage.offloadReferencedTensors) referenced in place"))
        return checks
    }

    public func evaluate(_ m: RunMeasurement, strategy: StrategyName) -> Outcome {
        let predicted = m.predictedPeakBytes
        let tol = tolerance.bytes(for: predicted)
        let upper = predicted + tol
        let lower: Int? = Self.hasLowerBound(strategy) ? max(0, predicted - tol) : nil

        if let oom = m.outOfMemory {
            return Outcome(
                verdict: .oom,
                detail: "hit its \(ByteSize.binary(oom.capBytes)) memory cap at \(ByteSize.binary(oom.reachedBytes)) live (+\(ByteSize.binary(oom.requestedBytes)) requested); predicted peak \(ByteSize.binary(predicted))",
                checks: [], upperBoundBytes: upper, lowerBoundBytes: lower, toleranceBytes: tol)
        }
        if let failure = m.failure {
            return Outcome(verdict: .error, detail: failure, checks: [], upperBoundBytes: upper, lowerBoundBytes: lower, toleranceBytes: tol)
        }

        var checks: [Check] = []
        checks.append(
            Check(
                name: "ledger peak equals prediction", passed: m.ledgerPeakBytes == predicted, measuredBytes: m.ledgerPeakBytes,
                boundBytes: predicted, relation: "==", detail: "\(m.formula) computed from the headers vs the ledger's exact peak"))
        if let hwm = m.peaks.vmhwmDeltaBytes {
            checks.append(
                Check(
                    name: "VmHWM delta within upper bound", passed: hwm <= upper, measuredBytes: hwm, boundBytes: upper, relation: "<=",
                    detail: "kernel high-water mark of VmRSS minus baseline VmRSS"))
        }
        checks.append(
            Check(
                name: "RSS anon peak delta within upper bound", passed: m.peaks.rssAnonDeltaBytes <= upper, measuredBytes: m.peaks.rssAnonDeltaBytes,
                boundBytes: upper, relation: "<=", detail: "sampled maximum of RssAnon minus baseline"))
        if let lower {
            checks.append(
                Check(
                    name: "RSS anon peak delta reaches lower bound", passed: m.peaks.rssAnonDeltaBytes >= lower, measuredBytes: m.peaks.rssAnonDeltaBytes,
                    boundBytes: lower, relation: ">=", detail: "the claim is a high cost: a probe that misses memory must fail"))
            if let hwm = m.peaks.vmhwmDeltaBytes {
                checks.append(
                    Check(
                        name: "VmHWM delta reaches lower bound", passed: hwm >= lower, measuredBytes: hwm, boundBytes: lower, relation: ">=",
                        detail: "kernel high-water mark minus baseline VmRSS"))
            }
        }
        let ledgerTol = tolerance.bytes(for: m.ledgerPeakBytes)
        let anonGap = abs(m.peaks.rssAnonDeltaBytes - m.peaks.ledgerDeltaBytes)
        checks.append(
            Check(
                name: "RSS anon agrees with ledger", passed: anonGap <= ledgerTol, measuredBytes: anonGap, boundBytes: ledgerTol, relation: "within",
                detail: "|RSS anon peak delta − ledger peak| = \(ByteSize.binary(anonGap))"))
        // jemalloc counts each allocation at its size class, so it is compared with the ledger's size-class peak.
        let jeGap = abs(m.peaks.jemallocAllocatedDeltaBytes - m.peaks.ledgerSizeClassDeltaBytes)
        checks.append(
            Check(
                name: "jemalloc agrees with ledger", passed: jeGap <= ledgerTol, measuredBytes: jeGap, boundBytes: ledgerTol, relation: "within",
                detail: "|jemalloc stats.allocated peak delta − ledger peak at jemalloc size classes| = \(ByteSize.binary(jeGap))"))

        if let usage = m.devices { checks += Self.deviceChecks(usage) }

        let failed = checks.filter { !$0.passed }
        if failed.isEmpty {
            return Outcome(
                verdict: .pass,
                detail: "every bound held: peak \(ByteSize.binary(m.peaks.vmhwmDeltaBytes ?? m.peaks.rssDeltaBytes)) (VmHWM Δ) vs predicted \(ByteSize.binary(predicted)) ± \(ByteSize.binary(tol))",
                checks: checks, upperBoundBytes: upper, lowerBoundBytes: lower, toleranceBytes: tol)
        }
        let detail = failed.map { check -> String in
            let by = abs(check.measuredBytes - check.boundBytes)
            switch check.relation {
            case "<=": return "\(check.name) failed: \(ByteSize.binary(check.measuredBytes)) exceeds \(ByteSize.binary(check.boundBytes)) by \(ByteSize.binary(by))"
            case ">=": return "\(check.name) failed: \(ByteSize.binary(check.measuredBytes)) is \(ByteSize.binary(by)) below \(ByteSize.binary(check.boundBytes))"
            case "==": return "\(check.name) failed: \(check.measuredBytes) bytes vs \(check.boundBytes) predicted (off by \(check.measuredBytes - check.boundBytes))"
            default: return "\(check.name) failed: differ by \(ByteSize.binary(check.measuredBytes)), allowed \(ByteSize.binary(check.boundBytes))"
            }
        }.joined(separator: "; ")
        return Outcome(verdict: .fail, detail: detail, checks: checks, upperBoundBytes: upper, lowerBoundBytes: lower, toleranceBytes: tol)
    }
}
