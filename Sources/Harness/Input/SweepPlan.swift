import Foundation
import ResultsFormat

/// What a sweep asks for (`"scales"` and `"holdout"`, or `run --scales` and `--no-holdout`): the fractions of the
/// scenario's scale to measure, ascending, and whether the largest is held out (``SweepInfo`` in the results).
package struct SweepPlan: Sendable, Equatable {
    package let fractions: [Double]
    package let holdout: Bool

    /// The rule a sweep must meet, in words, or nil: three sizes at least (two points are on every line), four when
    /// the largest is held out (it is predicted from a line through the other three), each in (0, 1], no two alike.
    package static func problem(_ fractions: [Double], holdout: Bool) -> String? {
        if let bad = fractions.first(where: { !($0 > 0 && $0 <= 1) }) {
            return "every scale must be a fraction in (0, 1] of the scenario's scale, not \(bad)"
        }
        if Set(fractions).count != fractions.count { return "a scale is given twice" }
        let needed = holdout ? 4 : 3
        guard fractions.count >= needed else {
            return holdout
                ? "needs at least 4 scales: the largest is held out and predicted from a line through the other three (or set holdout false)"
                : "needs at least 3 scales: two points are on every line"
        }
        return nil
    }

    package init(fractions: [Double], holdout: Bool) {
        self.fractions = fractions.sorted()
        self.holdout = holdout
    }

    /// The scales measured, ascending: each fraction of `base`, rounded to 6 digits so that the same sweep finds
    /// the same cached checkpoints.
    package func scales(base: Double) -> [Double] {
        fractions.map { ($0 * base * 1_000_000).rounded() / 1_000_000 }
    }

    /// The held-out scale among `scales(base:)`: the largest, when held out.
    package func heldOut(base: Double) -> Double? { holdout ? scales(base: base).last : nil }
}
