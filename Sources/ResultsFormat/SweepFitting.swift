import Foundation
import Loading
import TensorEngine

/// Fits every run's figures of a sweep's results (``SweepFit`` says how each is judged). Pure: `run` calls it
/// after every size and at the end, and a results file's fits can be recomputed from its runs.
package enum SweepFitting {
    /// Who a fit is of.
    struct Identity {
        var run: String
        var subject: Subject?
        var strategy: StrategyName
        var tolerance: ClaimTolerance
    }

    package static func fits(_ results: ScenarioResults) -> [SweepFit] {
        guard let sweep = results.sweep else { return [] }
        var fits: [SweepFit] = []
        var seen = Set<String>()
        for run in results.runs where seen.insert(run.id).inserted {
            let runs = results.runs.filter {
                $0.id == run.id && $0.scale != nil && [.pass, .fail].contains($0.verdict)
            }
            let identity = Identity(
                run: run.id, subject: run.subject, strategy: run.strategy,
                tolerance: tolerance(for: run.loader, results.scenario))
            let formula = LinearFit(
                runs.compactMap { r in
                    guard let scale = r.scale, let bytes = sweep.checkpointBytes(at: scale),
                        let p = r.predictedPeakBytes
                    else { return nil }
                    return (Double(bytes), Double(p))
                })
            let bothWays = runs.contains { $0.lowerBoundBytes != nil }
            for figure in FitFigure.processFigures {
                let points = runs.compactMap { point($0, figure: figure, sweep: sweep) }
                guard !points.isEmpty else { continue }
                fits.append(
                    fit(
                        points, identity: identity, figure: figure, heldOut: sweep.heldOutScale,
                        claim: figure == FitFigure.claimed(for: run.strategy) ? formula.map { ($0, bothWays) } : nil))
            }
        }
        return fits + machineFits(results, sweep: sweep)
    }

    /// Σ figures of runs of several ranks, fitted the same way; judged on their holdout and linearity.
    static func machineFits(_ results: ScenarioResults, sweep: SweepInfo) -> [SweepFit] {
        let machineRuns = (results.machineRuns ?? []).filter { $0.scale != nil && $0.verdict != .error }
        var seen = Set<String>()
        return machineRuns.filter { seen.insert($0.id).inserted }.flatMap { first -> [SweepFit] in
            let runs = machineRuns.filter { $0.id == first.id }
            let rank = results.runs.first { $0.id == first.id }
            let identity = Identity(
                run: first.id, subject: rank?.subject, strategy: rank?.strategy ?? .naive,
                tolerance: tolerance(for: rank?.loader ?? .engine, results.scenario))
            return FitFigure.machineFigures.compactMap { figure in
                let machineFigure: MachineFigure = figure == .machineSumPss ? .sumPss : .sumRssAnon
                let points = runs.compactMap { run -> SweepFit.Point? in
                    guard let scale = run.scale, let bytes = sweep.checkpointBytes(at: scale),
                        let value = run.peaks[machineFigure]
                    else { return nil }
                    return SweepFit.Point(
                        scale: scale, checkpointBytes: bytes, measuredBytes: value, repeatIndex: run.repeatIndex)
                }
                return points.isEmpty
                    ? nil : fit(points, identity: identity, figure: figure, heldOut: sweep.heldOutScale, claim: nil)
            }
        }
    }

    /// The tolerance of a run's claims: the scenario's for the engine, its subject tolerance for other loaders.
    package static func tolerance(for subject: Subject, _ scenario: ScenarioInfo) -> ClaimTolerance {
        subject.isEngine
            ? ClaimTolerance(relative: scenario.toleranceRelative, absoluteBytes: scenario.toleranceAbsoluteBytes)
            : ClaimTolerance(
                relative: scenario.subjectToleranceRelative ?? Subject.loaderTolerance.relative,
                absoluteBytes: scenario.subjectToleranceAbsoluteBytes ?? Subject.loaderTolerance.absoluteBytes)
    }

    /// A run's figure at its size; nil when the run has no such figure (a figure absent is never zero).
    static func point(_ run: RunResult, figure: FitFigure, sweep: SweepInfo) -> SweepFit.Point? {
        guard let m = run.measurement, let scale = run.scale, let bytes = sweep.checkpointBytes(at: scale) else {
            return nil
        }
        let value: Int? =
            switch figure {
            case .vmhwmDelta: m.judgedPeaks[.vmhwm]
            case .rssAnonPeakDelta: m.peaks[.rssAnon]
            case .rssFilePeakDelta: m.peaks[.rssFile]
            case .machineSumRssAnon, .machineSumPss: nil
            }
        return value.map {
            SweepFit.Point(
                scale: scale, checkpointBytes: bytes, measuredBytes: $0, repeatIndex: run.repeatIndex, rank: run.rank)
        }
    }

    static func line(_ points: [SweepFit.Point]) -> LinearFit? {
        LinearFit(points.map { (Double($0.checkpointBytes), Double($0.measuredBytes)) })
    }

    /// One fit, judged.
    static func fit(
        _ points: [SweepFit.Point], identity: Identity, figure: FitFigure, heldOut: Double?,
        claim formula: (LinearFit, bothWays: Bool)?
    ) -> SweepFit {
        var fit = SweepFit(
            run: identity.run, subject: identity.subject, strategy: identity.strategy, figure: figure, points: points,
            verdict: .tooFewSizes,
            verdictDetail: "")
        let sizes = Set(points.map(\.scale)).count
        guard sizes >= 3, let line = line(points) else {
            fit.verdictDetail =
                "\(sizes) size\(sizes == 1 ? "" : "s") measured: two points are on every line, so no fit is claimed"
            return fit
        }
        fit.slope = line.slope
        fit.interceptBytes = Int(line.intercept.rounded())
        fit.residualStandardErrorBytes = line.residualStandardError.map { Int($0.rounded()) }
        judgeLinearity(&fit, line: line, tolerance: identity.tolerance)
        if let heldOut { fit.holdout = holdout(points, scale: heldOut, tolerance: identity.tolerance) }
        if let (formula, bothWays) = formula {
            let allowance = SweepFit.slopeTolerance(engine: identity.subject?.isEngine ?? true)
            let within =
                line.slope <= formula.slope + allowance && (!bothWays || line.slope >= formula.slope - allowance)
            fit.claim = SweepFit.Claim(
                copies: formula.slope, interceptBytes: Int(formula.intercept.rounded()), toleranceCopies: allowance,
                bothWays: bothWays, passed: within)
        }
        (fit.verdict, fit.verdictDetail) = verdict(fit)
        return fit
    }

    /// The largest residual of the line through every point, against the tolerance at that point.
    static func judgeLinearity(_ fit: inout SweepFit, line: LinearFit, tolerance: ClaimTolerance) {
        var worst: (residual: Double, point: SweepFit.Point, excess: Double)?
        for point in fit.points {
            let residual = Double(point.measuredBytes) - line.predict(Double(point.checkpointBytes))
            let excess = abs(residual) - Double(tolerance.bytes(for: point.measuredBytes))
            if worst == nil || excess > worst!.excess { worst = (residual, point, excess) }
        }
        guard let worst else { return }
        fit.maxResidualBytes = Int(worst.residual.rounded())
        fit.maxResidualScale = worst.point.scale
        fit.residualToleranceBytes = tolerance.bytes(for: worst.point.measuredBytes)
        fit.linear = worst.excess <= 0
    }

    /// The held-out size predicted by the line through the others (at least three sizes), against its median.
    static func holdout(_ points: [SweepFit.Point], scale: Double, tolerance: ClaimTolerance) -> SweepFit.Holdout? {
        let held = points.filter { $0.scale == scale }.map(\.measuredBytes).sorted()
        let others = points.filter { $0.scale != scale }
        guard let bytes = points.first(where: { $0.scale == scale })?.checkpointBytes, !held.isEmpty,
            Set(others.map(\.scale)).count >= 3, let line = line(others)
        else { return nil }
        let predicted = Int(line.predict(Double(bytes)).rounded())
        let measured = held[held.count / 2]
        let allowed = tolerance.bytes(for: max(predicted, 0))
        return SweepFit.Holdout(
            scale: scale, checkpointBytes: bytes, predictedBytes: predicted,
            predictionErrorBytes: line.predictionError(at: Double(bytes)).map { Int($0.rounded()) },
            measuredBytes: measured, toleranceBytes: allowed, passed: abs(measured - predicted) <= allowed)
    }
}
