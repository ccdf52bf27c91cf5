import Foundation
import Loading
import Probes
import ResultsFormat
import TensorEngine

/// The machine-level claims of N ranks loading one checkpoint at once, as on a training node, checked in both
/// directions where the claim is a high cost:
///
/// - naive, sharded, low-memory, dtype-direct, load-then-cast, device-map: Σ RssAnon Δ and Σ Pss Δ each
///   ≤ N · (P + tolerance), P the run's per-rank formula (naive N·(M_t + M_ck), sharded N·(M_t + S), …); and
///   (device-map aside) Σ VmRSS Δ ≥ N · (M_t − tolerance) at the moment every rank holds its model: N models
///   at once. Whether the ranks' transient peaks (naive's two copies) coincide depends on how evenly they load,
///   so the lower bound on P itself is each rank's own claim, not the machine's; the Σ peak shows the overlap;
/// - mmap: Σ RssAnon Δ ≤ N · (P + tolerance) (only the owned bytes), Σ Pss Δ ≈ M_map + N · P (the mapped
///   checkpoint counted once, shared), Σ VmRSS Δ ≈ N · (M_map + P) (every rank maps it all): two-sided.
/// Every rank must also pass on its own.
package struct MachineJudge: Sendable {
    package let tolerance: Scenario.Tolerance

    package init(tolerance: Scenario.Tolerance) { self.tolerance = tolerance }

    /// The machine's readings (the baseline at the start barrier, then samples with each rank's VmRSS), how they
    /// were obtained, and the reading when every rank held its model.
    package struct Series: Sendable {
        package var readings: MachineSeries
        package var method: String
        /// The reading when every rank held its model (nil when none was taken).
        package var held: MachineReading?

        package init(baseline: MachineReading, samples: [MachineSample], method: String, held: MachineReading? = nil) {
            readings = MachineSeries(baseline: baseline, samples: samples)
            self.method = method
            self.held = held
        }

        package var baseline: MachineReading { readings.baseline }
        package var samples: [MachineSample] { readings.samples }
    }

    package func judge(_ claim: MachineClaim, repeatIndex: Int, ranks: [RunResult], series: Series, node: String)
        -> MachineRun
    {
        let peaks = series.readings.peakDeltas
        let held = series.held?.delta(over: series.baseline)
        let checks = self.checks(claim, ranks: ranks.count, peaks: peaks, held: held)
        let failed = checks.filter { !$0.passed }
        let rankFailures = ranks.filter { $0.verdict != .pass }
        var verdict: Verdict =
            rankFailures.contains { $0.verdict == .error }
            ? .error : (failed.isEmpty && rankFailures.isEmpty ? .pass : .fail)
        if checks.isEmpty, verdict == .pass { verdict = .error }
        var detail =
            checks.isEmpty
            ? "no machine figure was sampled, so no machine-level claim could be checked"
            : failed.isEmpty
                ? "the machine held \(ranks.count) ranks within the claim: Σ RssAnon Δ \(ByteSize.binary(peaks[.sumRssAnon] ?? 0)), Σ Pss Δ \(ByteSize.binary(peaks[.sumPss] ?? 0)), Σ VmRSS Δ \(ByteSize.binary(peaks[.sumRss] ?? 0))"
                : failed.map(\.failureDescription).joined(separator: "; ")
        if !rankFailures.isEmpty {
            detail +=
                "; rank\(rankFailures.count == 1 ? "" : "s") \(rankFailures.compactMap { $0.rank.map(String.init) }.joined(separator: ", ")) did not pass on its own"
        }
        return MachineRun(
            id: claim.id, repeatIndex: repeatIndex, ranks: ranks.count, node: node, verdict: verdict,
            verdictDetail: detail,
            checks: checks, predictedRankPeakBytes: claim.predictedPeakBytes, formula: claim.formula,
            baseline: series.baseline, peaks: peaks,
            rankPeakBytes: ranks.map { $0.measurement?.peaks[.vmhwm] },
            timeline: Self.timeline(series, ranks: ranks.count), method: series.method,
            held: held)
    }

    func checks(_ claim: MachineClaim, ranks n: Int, peaks: MachineReading, held: MachineReading? = nil) -> [Check] {
        let p = claim.predictedPeakBytes
        let strategy = claim.strategy
        let tol = tolerance.bytes(for: p)
        var checks: [Check] = []
        // Σ Pss of mmap is read at the moment every rank held its model: rollups read one after another while
        // pages are still being mapped can count a shared page more than once (a rank read before another
        // mapped it), so only a moment when the mappings stand still gives one copy its true share.
        func add(_ figure: MachineFigure, _ relation: CheckRelation, _ bound: Int, _ detail: String) {
            let atHold = strategy == .mmap && figure == .sumPss && held?[figure] != nil
            guard let measured = atHold ? held?[figure] : peaks[figure] else { return }
            checks.append(
                Check(
                    relation == .atMost
                        ? .machineWithinUpperBound(figure, held: atHold)
                        : .machineReachesLowerBound(figure, held: atHold), measuredBytes: measured,
                    boundBytes: max(0, bound), relation: relation,
                    detail: detail))
        }
        guard strategy == .mmap else {
            add(.sumRssAnon, .atMost, n * (p + tol), "\(n) × (\(claim.formula) + tolerance)")
            add(
                .sumPss, .atMost, n * (p + tol),
                "\(n) × (\(claim.formula) + tolerance): shared pages divided among the ranks")
            if strategy != .deviceMap, let model = claim.modelBytes, let held = held?[.sumRss] {
                let bound = max(0, n * (model - tolerance.bytes(for: model)))
                checks.append(
                    Check(
                        .machineReachesLowerBound(.sumRss, held: true), measuredBytes: held,
                        boundBytes: bound, relation: .atLeast,
                        detail: "\(n) models resident at once: \(n) × (M_t − tolerance)"))
            }
            return checks
        }
        let mapped = claim.mappedBytes ?? 0
        let mappedTol = tolerance.bytes(for: mapped)
        add(
            .sumRssAnon, .atMost, n * (p + tol),
            "only the owned bytes are anonymous: \(n) × (\(claim.formula) + tolerance)")
        add(
            .sumPss, .atMost, mapped + n * p + mappedTol + n * tol,
            "one copy of the mapped checkpoint (M_map), shared, plus each rank's owned bytes")
        // Below: the owned bytes can be all but nothing, so the tolerance on them does not lower the mapped copy's bound.
        let ownedFloor = n * max(0, p - tol)
        add(.sumPss, .atLeast, mapped - mappedTol + ownedFloor, "the mapped checkpoint is resident once")
        add(.sumRss, .atMost, n * (mapped + p + mappedTol + tol), "every rank maps all of it: \(n) × (M_map + owned)")
        add(.sumRss, .atLeast, n * (mapped - mappedTol) + ownedFloor, "every rank read every mapped page")
        return checks
    }

    /// seconds, Σ VmRSS, Σ Pss, Σ RssAnon, MemAvailable's drop (deltas over the baseline), then each rank's
    /// VmRSS delta; at most 2000 points, each bucket's maxima.
    static func timeline(_ series: Series, ranks: Int) -> MachineTimeline {
        let figures: [MachineFigure] = [.sumRss, .sumPss, .sumRssAnon, .memAvailable]
        let columns = [MachineColumn.seconds] + figures.map { .figure($0) } + (0..<ranks).map { .rank($0) }
        let rankBase = series.samples.first?.ranks ?? []
        // A figure a sample lacks (Σ Pss between rollups, or merged ranks' Pss outside the held moment) keeps its last value.
        var last = series.baseline
        let points = series.samples.map { sample -> [Double] in
            [sample.seconds]
                + figures.map { figure in
                    let value = sample.reading[figure] ?? last[figure] ?? 0
                    last[figure] = value
                    let base = series.baseline[figure] ?? 0
                    return Double(figure == .memAvailable ? base - value : value - base)
                }
                + (0..<ranks).map { r in
                    Double(
                        (r < sample.ranks.count ? sample.ranks[r] ?? 0 : 0)
                            - (r < rankBase.count ? rankBase[r] ?? 0 : 0))
                }
        }
        return MachineTimeline(
            columns: columns, points: Downsampling.bucketMaxima(points, toAtMost: MachineTimeline.maximumPoints))
    }
}

/// What one rank of a run claims, which the machine's claim multiplies: from the scenario and its prediction
/// (`run --ranks`), or from a rank's results (`merge`).
package struct MachineClaim: Sendable, Equatable {
    package var id: String
    package var strategy: StrategyName
    package var predictedPeakBytes: Int
    package var formula: String
    /// mmap: the bytes held as views of the mapped checkpoint.
    package var mappedBytes: Int?
    /// M_t: what each rank holds once loaded.
    package var modelBytes: Int?

    package init(
        id: String, strategy: StrategyName, predictedPeakBytes: Int, formula: String, mappedBytes: Int?,
        modelBytes: Int? = nil
    ) {
        self.id = id
        self.strategy = strategy
        self.predictedPeakBytes = predictedPeakBytes
        self.formula = formula
        self.mappedBytes = mappedBytes
        self.modelBytes = modelBytes
    }

    package init(run: Scenario.Run, prediction: ScalePlanner.RunPrediction) {
        self.init(
            id: run.id, strategy: run.strategy, predictedPeakBytes: prediction.predictedPeakBytes,
            formula: prediction.formula,
            mappedBytes: prediction.figures.mappedBytes, modelBytes: prediction.figures.modelBytes)
    }

    /// The claim a rank's results carry; nil when the rank recorded no prediction.
    package init?(rank result: RunResult) {
        guard let predicted = result.predictedPeakBytes else { return nil }
        self.init(
            id: result.id, strategy: result.strategy, predictedPeakBytes: predicted, formula: result.formula,
            mappedBytes: result.figures?.mappedBytes,
            modelBytes: result.figures?.modelBytes)
    }
}

extension RunResult {
    /// Marks the result as one rank's, on `node`.
    package mutating func place(_ info: RankInfo, node: String) {
        rank = info.rank
        worldSize = info.worldSize
        localRank = info.localRank
        self.node = node
    }
}
