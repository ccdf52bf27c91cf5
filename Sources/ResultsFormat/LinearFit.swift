import Foundation

/// An ordinary least-squares line through points (x, y): y ≈ slope·x + intercept.
///
/// Hand-written: it is a dozen lines of arithmetic, and no package this machine resolves offers regression. Sums
/// are taken about the means, so bytes in the tens of gigabytes lose no precision to squares of 1e20.
package struct LinearFit: Sendable, Equatable {
    package let slope: Double
    package let intercept: Double
    /// How many points the line was fitted to, and at how many distinct x.
    package let count: Int
    package let distinctX: Int
    let meanX: Double
    let sumSquaresX: Double
    /// The residuals' standard error, √(Σ r² / (n − 2)); nil for two points, which every line passes through.
    package let residualStandardError: Double?

    /// nil when the points have fewer than two distinct x (no line is determined).
    package init?(_ points: [(x: Double, y: Double)]) {
        let xs = Set(points.map(\.x))
        guard xs.count >= 2 else { return nil }
        let n = Double(points.count)
        let meanX = points.map(\.x).reduce(0, +) / n
        let meanY = points.map(\.y).reduce(0, +) / n
        let sxx = points.map { ($0.x - meanX) * ($0.x - meanX) }.reduce(0, +)
        let sxy = points.map { ($0.x - meanX) * ($0.y - meanY) }.reduce(0, +)
        slope = sxy / sxx
        intercept = meanY - slope * meanX
        count = points.count
        distinctX = xs.count
        self.meanX = meanX
        sumSquaresX = sxx
        let (slope, intercept) = (self.slope, self.intercept)
        let squares: Double = points.map { point -> Double in
            let r = point.y - (slope * point.x + intercept)
            return r * r
        }.reduce(0, +)
        residualStandardError = points.count > 2 ? (squares / (n - 2)).squareRoot() : nil
    }

    package func predict(_ x: Double) -> Double { slope * x + intercept }

    /// The standard error of one new observation at `x`: s·√(1 + 1/n + (x − x̄)²/Sxx). It grows with the
    /// distance from the measured sizes, so a prediction far beyond them says how little it knows.
    package func predictionError(at x: Double) -> Double? {
        residualStandardError.map { s in
            s * (1 + 1 / Double(count) + (x - meanX) * (x - meanX) / sumSquaresX).squareRoot()
        }
    }
}
