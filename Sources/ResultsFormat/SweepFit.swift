import Foundation
import Loading
import TensorEngine

/// The figure a sweep's line is fitted to.
package enum FitFigure: String, Codable, Sendable, CaseIterable {
    /// The kernel's high-water mark of VmRSS over the baseline (less the code pages a Python loader maps): the
    /// figure every run's claim bounds.
    case vmhwmDelta = "vmhwm_delta"
    case rssAnonPeakDelta = "rss_anon_peak_delta"
    case rssFilePeakDelta = "rss_file_peak_delta"
    /// Runs of several ranks: the machine's Σ RssAnon and Σ Pss over the start barrier's reading.
    case machineSumRssAnon = "machine_sum_rss_anon"
    case machineSumPss = "machine_sum_pss"

    package var label: String {
        switch self {
        case .vmhwmDelta: "VmHWM Δ"
        case .rssAnonPeakDelta: "RssAnon peak Δ"
        case .rssFilePeakDelta: "RssFile peak Δ"
        case .machineSumRssAnon: "Σ RssAnon peak Δ"
        case .machineSumPss: "Σ Pss peak Δ"
        }
    }

    /// The figure a run's claim bounds, whose fit has a verdict: VmHWM Δ, except for mmap, whose claim is on the
    /// memory it owns (RssAnon; its mapped pages are the page cache's). The machine's Σ Pss (each shared page
    /// once) is judged too. The others are fitted and reported, their holdout said, but judge nothing: RssAnon
    /// and RssFile split one peak two ways, and which way a loader holds it is not a claim.
    package static func claimed(for strategy: StrategyName) -> FitFigure {
        strategy == .mmap ? .rssAnonPeakDelta : .vmhwmDelta
    }

    package func isJudged(for strategy: StrategyName) -> Bool {
        self == Self.claimed(for: strategy) || self == .machineSumPss
    }

    package static let processFigures: [FitFigure] = [.vmhwmDelta, .rssAnonPeakDelta, .rssFilePeakDelta]
    package static let machineFigures: [FitFigure] = [.machineSumRssAnon, .machineSumPss]
}

/// One figure of one run, measured at a sweep's sizes and fitted as slope × checkpoint bytes + intercept.
///
/// How a fit is judged (the README's "Sweeps" says the same):
/// - the line is fitted to every measured point (each repeat and rank a point); the slope is in copies of the
///   checkpoint (dimensionless), the intercept the loader's fixed cost (interpreter, imports, allocator);
/// - fewer than three sizes measured is no fit (`too_few_sizes`): two points are on every line;
/// - **linear**: every point's residual is within the run's tolerance of its measured figure; a larger residual
///   means the cost is not copies + overhead, and the fit fails;
/// - **holdout**: the held-out size, predicted from a line through the other sizes (at least three), must be met
///   within the run's tolerance of the prediction;
/// - **claim** (the claimed figure only, ``FitFigure/claimed(for:)``): the slope against the formula's slope (the line through the run's predicted peaks),
///   within ``SweepFit/slopeTolerance(engine:)`` copies, both ways where the claim is a high cost.
package struct SweepFit: Codable, Sendable, Equatable {
    package enum Verdict: String, Codable, Sendable {
        case pass
        case fail
        /// Fitted and reported; the figure carries no claim (``FitFigure/isJudged``).
        case notJudged = "not_judged"
        /// Fewer than three sizes measured.
        case tooFewSizes = "too_few_sizes"
    }

    package struct Point: Codable, Sendable, Equatable {
        package var scale: Double
        package var checkpointBytes: Int
        package var measuredBytes: Int
        package var repeatIndex: Int
        package var rank: Int?
    }

    /// The formula's line and the slope's allowance.
    package struct Claim: Codable, Sendable, Equatable {
        /// The slope of the run's predicted peaks against checkpoint bytes: the formula in copies.
        package var copies: Double
        package var interceptBytes: Int
        package var toleranceCopies: Double
        /// The slope must also reach copies − tolerance (naive, load-then-cast: the claim is a high cost).
        package var bothWays: Bool
        package var passed: Bool
    }

    package struct Holdout: Codable, Sendable, Equatable {
        package var scale: Double
        package var checkpointBytes: Int
        /// From the line through the other sizes, before (or without) looking at this one.
        package var predictedBytes: Int
        /// The line's standard error of a new point there (absent with too few points for one).
        package var predictionErrorBytes: Int?
        /// The median of the held-out size's measurements.
        package var measuredBytes: Int
        package var toleranceBytes: Int
        package var passed: Bool
    }

    package var run: String
    package var subject: Subject?
    package var strategy: StrategyName
    package var figure: FitFigure
    package var points: [Point]
    package var slope: Double?
    package var interceptBytes: Int?
    package var residualStandardErrorBytes: Int?
    package var maxResidualBytes: Int?
    /// The scale of the largest residual, and the tolerance it is held to there.
    package var maxResidualScale: Double?
    package var residualToleranceBytes: Int?
    package var linear: Bool?
    package var claim: Claim?
    package var holdout: Holdout?
    package var verdict: Verdict
    package var verdictDetail: String

    package var loader: Subject { subject ?? .engine }

    /// The slope's allowance in copies: the engine's figures are exact to the page, a Python loader's move with
    /// its interpreter and allocator. A loader that went from 1 to 2 copies is outside either.
    package static func slopeTolerance(engine: Bool) -> Double { engine ? 0.05 : 0.25 }

    /// The line's prediction at `bytes` of checkpoint.
    package func predictedBytes(at bytes: Int) -> Int? {
        guard let slope, let interceptBytes else { return nil }
        return Int((slope * Double(bytes)).rounded()) + interceptBytes
    }
}
