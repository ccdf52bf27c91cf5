import Foundation
import Loading
import OSLayer
import ResultsFormat
import TensorEngine

/// `fit --calibration RESULTS.json`: every path of every loader in a sweep's results, sized at the target model
/// by the lines the sweep measured (``SweepFit``) instead of by the formulas.
///
/// - predicted VmHWM Δ and RssAnon Δ: each run's line at the target's checkpoint bytes;
/// - the uncertainty: the line's standard error of a new point there (it grows with the distance from the sizes
///   measured, so extrapolating from a small sweep says how little it knows);
/// - need: VmHWM × ranks; for mmap the mapped pages (VmHWM − RssAnon) count once, as in ``FitEstimate``;
/// - **fits** when need + the run's tolerance + two standard errors is at most the memory, **tight** when only
///   the need is, **does not fit** otherwise; the pick per loader is its fitting path that needs least.
package struct CalibratedFit {
    package struct Row: Sendable {
        package let subject: Subject
        package let run: String
        package let strategy: StrategyName
        package let copies: Double
        package let fixedBytes: Int
        package let predictedVMHWMBytes: Int
        package let predictedAnonBytes: Int?
        package let uncertaintyBytes: Int?
        /// The formula's line at the target, for comparison.
        package let formulaBytes: Int?
        package let estimate: FitEstimate
        /// The fit's own verdict in the sweep (a line that failed its holdout predicts poorly).
        package let sweepVerdict: SweepFit.Verdict

        /// What a failed line means for its prediction: a slope over the claim is a measured cost, still a good
        /// prediction; a missed held-out size or a bent line makes any prediction beyond the sweep unreliable.
        package var caveat: String? {
            guard sweepVerdict == .fail else { return nil }
            if line.holdout?.passed == false { return "unreliable: its held-out size missed" }
            if line.linear == false { return "unreliable: not a line" }
            return line.claim.map { "\(SweepFitting.copies(copies)) copies, claim \(SweepFitting.copies($0.copies))" }
        }

        let line: SweepFit
    }

    package let calibration: ScenarioResults
    package let calibrationPath: String
    package let checkpointBytes: Int
    package let ranks: Int?
    package let memoryBytes: Int

    package init(
        calibration: ScenarioResults, calibrationPath: String, checkpointBytes: Int, ranks: Int?, memoryBytes: Int
    ) {
        self.calibration = calibration
        self.calibrationPath = calibrationPath
        self.checkpointBytes = checkpointBytes
        self.ranks = ranks
        self.memoryBytes = memoryBytes
    }

    /// Loads a calibration: a results file with fits (exit 65 when it has none, naming the file).
    package static func load(path: String) throws -> ScenarioResults {
        let results = try ResultsFile.load(path: path)
        guard let fits = results.fits, fits.contains(where: { $0.slope != nil }) else {
            throw RuleViolation<CalibrationRule>(
                .notACalibration, source: path, location: "$.fits",
                "has no fitted lines: a calibration is the results of a sweep (run --scales 0.25,0.5,0.75,1)")
        }
        return results
    }

    /// One row per run with a fitted VmHWM Δ line (mmap: RssAnon), in the calibration's order.
    package func rows() -> [Row] {
        let fits = calibration.fits ?? []
        return fits.filter { $0.figure == .vmhwmDelta && $0.slope != nil }.compactMap { hwm in
            row(hwm, anon: fits.first { $0.run == hwm.run && $0.figure == .rssAnonPeakDelta })
        }
    }

    func row(_ hwm: SweepFit, anon: SweepFit?) -> Row? {
        guard let slope = hwm.slope, let intercept = hwm.interceptBytes,
            let peak = hwm.predictedBytes(at: checkpointBytes)
        else { return nil }
        let line = LinearFit(hwm.points.map { (Double($0.checkpointBytes), Double($0.measuredBytes)) })
        let error = line?.predictionError(at: Double(checkpointBytes)).map { Int($0.rounded()) }
        let predictedAnon = anon?.predictedBytes(at: checkpointBytes)
        let base = SweepFitting.tolerance(for: hwm.loader, calibration.scenario)
        let tolerance = ClaimTolerance(relative: base.relative, absoluteBytes: base.absoluteBytes + 2 * (error ?? 0))
        // mmap: a process owns its anonymous bytes; its mapped pages are the page cache's, counted once.
        let owned = hwm.strategy == .mmap ? min(predictedAnon ?? peak, peak) : peak
        let estimate = FitEstimate(
            run: hwm.run, strategy: hwm.strategy, processPeakBytes: max(owned, 0), mappedBytes: max(0, peak - owned),
            ranks: ranks ?? 1, tolerance: tolerance, memoryBytes: memoryBytes)
        let formula = (hwm.claim ?? anon?.claim).map {
            Int(($0.copies * Double(checkpointBytes)).rounded()) + $0.interceptBytes
        }
        return Row(
            subject: hwm.loader, run: hwm.run, strategy: hwm.strategy, copies: slope, fixedBytes: intercept,
            predictedVMHWMBytes: peak, predictedAnonBytes: predictedAnon, uncertaintyBytes: error,
            formulaBytes: formula, estimate: estimate, sweepVerdict: hwm.verdict, line: hwm)
    }

    /// Each loader's pick (``FitEstimate/pick(_:)`` among its rows), in the order loaders first appear.
    package static func picks(_ rows: [Row]) -> [(Subject, Row?)] {
        var loaders: [Subject] = []
        for row in rows where !loaders.contains(row.subject) { loaders.append(row.subject) }
        return loaders.map { loader in
            let mine = rows.filter { $0.subject == loader }
            let pick = FitEstimate.pick(mine.map(\.estimate))
            return (loader, pick.flatMap { p in mine.first { $0.run == p.run } })
        }
    }
}

/// A calibration file that is not one.
package enum CalibrationRule: String, FailureRule {
    case notACalibration = "NotACalibration"
    package var ruleName: String? { rawValue }
    package var category: FailureCategory { .badData }
}
