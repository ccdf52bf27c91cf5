import Foundation
import Loading
import TensorEngine

/// One column of a machine timeline: seconds, a machine figure (a delta over the baseline; MemAvailable as
/// its drop), or one rank's VmRSS delta.
package enum MachineColumn: Sendable, Hashable, Codable, CustomStringConvertible {
    case seconds
    case figure(MachineFigure)
    case rank(Int)

    package var description: String {
        switch self {
        case .seconds: "seconds"
        case .figure(let figure): figure.rawValue
        case .rank(let rank): "rank_\(rank)"
        }
    }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let name = try container.decode(String.self)
        if name == "seconds" {
            self = .seconds
        } else if name.hasPrefix("rank_"), let rank = Int(name.dropFirst(5)) {
            self = .rank(rank)
        } else if let figure = MachineFigure(rawValue: name) {
            self = .figure(figure)
        } else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "unknown machine timeline column '\(name)'")
        }
    }

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// What N ranks of one run cost the machine, and whether the machine-level claim held.
///
/// `peaks` are deltas over the reading at the start barrier: Σ figures their maximum minus the baseline's;
/// `mem_available` the largest drop of MemAvailable; `cached` and `cgroup_usage` their growth.
package struct MachineRun: Codable, Sendable, Equatable {
    package var id: String
    package var repeatIndex: Int
    /// A sweep's run: the scale it was measured at.
    package var scale: Double? = nil
    package var ranks: Int
    /// The node the ranks ran on (its hostname; `merge` may combine several).
    package var node: String
    package var verdict: Verdict
    package var verdictDetail: String
    package var checks: [Check]
    /// One rank's predicted peak (the run's formula) and the machine-level figures the claims compare with.
    package var predictedRankPeakBytes: Int
    package var formula: String
    package var baseline: MachineReading
    package var peaks: MachineReading
    /// Each rank's VmHWM Δ, in rank order.
    package var rankPeakBytes: [Int?]
    package var timeline: MachineTimeline
    /// How the Σ figures were obtained, in a sentence.
    package var method: String
    /// The Σ figures over the baseline at the moment every rank held its model (absent when not read).
    package var held: MachineReading? = nil

    package init(
        id: String,
        repeatIndex: Int,
        ranks: Int,
        node: String,
        verdict: Verdict,
        verdictDetail: String,
        checks: [Check],
        predictedRankPeakBytes: Int,
        formula: String,
        baseline: MachineReading,
        peaks: MachineReading,
        rankPeakBytes: [Int?],
        timeline: MachineTimeline,
        method: String,
        held: MachineReading? = nil
    ) {
        self.id = id
        self.repeatIndex = repeatIndex
        self.ranks = ranks
        self.node = node
        self.verdict = verdict
        self.verdictDetail = verdictDetail
        self.checks = checks
        self.predictedRankPeakBytes = predictedRankPeakBytes
        self.formula = formula
        self.baseline = baseline
        self.peaks = peaks
        self.rankPeakBytes = rankPeakBytes
        self.timeline = timeline
        self.method = method
        self.held = held
    }
}

/// A machine's timeline: seconds, Σ figures over the baseline, each rank's VmRSS.
package typealias MachineTimeline = Timeline<MachineColumn>
