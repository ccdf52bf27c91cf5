/// How far a measured figure may stray from the claim it is judged against: a share of the predicted figure
/// plus a fixed number of bytes (a scenario's `tolerance` and `subject_tolerance`, recorded with every result).
package struct ClaimTolerance: Sendable, Equatable, Codable {
    /// Fraction of the predicted figure allowed above (or below) it.
    package var relative: Double
    /// Bytes allowed on top of the relative share.
    package var absoluteBytes: Int

    package static let `default` = ClaimTolerance(relative: 0.03, absoluteBytes: 32 << 20)

    package init(relative: Double, absoluteBytes: Int) {
        self.relative = relative
        self.absoluteBytes = absoluteBytes
    }

    package func bytes(for predicted: Int) -> Int { Int((Double(predicted) * relative).rounded(.up)) + absoluteBytes }
}

/// Whether a scenario's runs read a checkpoint from a warm page cache or evict it first (`"cache"`).
package enum PageCacheMode: String, Sendable, Codable { case warm, cold }
