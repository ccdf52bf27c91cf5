import Foundation
import Loading

/// Whether one loading path fits a machine: the memory its ranks need together at full size against the memory
/// the machine has for them.
///
/// The need is the path's predicted peak (its ledger formula) times the ranks; for mmap the mapped file pages
/// are shared by every rank through the page cache, so they count once: N × (M_t − M_map + staging) + M_map.
/// The allowance is the scenario's tolerance on top of that. Decisions, stated once for the report and `fit`:
/// - **fits** when the need plus the tolerance is at most the memory;
/// - **tight** when the need fits but the tolerance does not (a load that may or may not pass, depending on
///   what else the machine holds);
/// - **does not fit** when the need alone exceeds the memory.
/// Headroom is memory − need (negative when it does not fit).
package struct FitEstimate: Sendable, Equatable {
    package enum Status: String, Sendable, Codable {
        case fits
        case tight
        case doesNotFit = "does_not_fit"
    }

    package let run: String
    package let strategy: StrategyName
    package let ranks: Int
    /// One process's predicted peak, bytes.
    package let processPeakBytes: Int
    /// What the ranks need together, bytes.
    package let needBytes: Int
    package let toleranceBytes: Int
    package let memoryBytes: Int

    /// The tolerance is taken on what the ranks need together, as the machine claims are.
    package init(
        run: String, strategy: StrategyName, processPeakBytes: Int, mappedBytes: Int?, ranks: Int,
        tolerance: ClaimTolerance, memoryBytes: Int
    ) {
        self.run = run
        self.strategy = strategy
        self.ranks = max(ranks, 1)
        self.processPeakBytes = processPeakBytes
        let shared = strategy == .mmap ? (mappedBytes ?? 0) : 0
        let (product, overflow) = processPeakBytes.multipliedReportingOverflow(by: self.ranks)
        needBytes = overflow ? Int.max : product.addingReportingOverflow(shared).overflow ? Int.max : product + shared
        toleranceBytes = tolerance.bytes(for: needBytes)
        self.memoryBytes = memoryBytes
    }

    package var status: Status {
        if needBytes > memoryBytes { return .doesNotFit }
        return needBytes.addingReportingOverflow(toleranceBytes).partialValue > memoryBytes ? .tight : .fits
    }

    package var headroomBytes: Int { memoryBytes.subtractingReportingOverflow(needBytes).partialValue }

    /// The pick among `estimates`: the fitting path (else the tight one) that needs the least memory; ties go to
    /// the earlier one (the scenario's order). device-map is picked only when no path that holds the whole model
    /// in memory fits: it fits by leaving weights on disk (or on accelerators), which is another question. nil
    /// when none fits.
    package static func pick(_ estimates: [FitEstimate]) -> FitEstimate? {
        let holding = estimates.filter { $0.strategy != .deviceMap }
        return best(holding) ?? best(estimates.filter { $0.strategy == .deviceMap })
    }

    private static func best(_ estimates: [FitEstimate]) -> FitEstimate? {
        let fitting = estimates.filter { $0.status == .fits }
        let candidates = fitting.isEmpty ? estimates.filter { $0.status == .tight } : fitting
        return candidates.min { $0.needBytes < $1.needBytes }
    }

    package var statusText: String {
        switch status {
        case .fits: "fits"
        case .tight: "tight"
        case .doesNotFit: "does not fit"
        }
    }
}
