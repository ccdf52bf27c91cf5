import Foundation

/// A sweep (`"scales"`, `run --scales`): the scenario's runs measured at several sizes of the same model, each
/// size its own checkpoint, so that what a loader costs can be fitted as a line against the checkpoint's bytes
/// (``SweepFit``) and said at any size.
///
/// The scales are fractions of the scenario's scale (its `"scale"`, `"fit"` included, or `--scale`): `1` is the
/// largest size the scenario would load on its own, so `--scales 0.25,0.5,0.75,1` means the same on every
/// machine. They are measured smallest first; the largest is held out by default and predicted from the others
/// before it is measured.
package struct SweepInfo: Codable, Sendable, Equatable {
    /// The fractions asked for, ascending.
    package var fractions: [Double]
    /// The scale the fractions multiply.
    package var baseScale: Double
    /// The scale predicted from the others before it was measured; absent with `"holdout": false`.
    package var heldOutScale: Double?
    /// Every size, ascending: its scale, its checkpoint, and the floor measured for it.
    package var points: [SweepPoint]

    package init(fractions: [Double], baseScale: Double, heldOutScale: Double?, points: [SweepPoint]) {
        self.fractions = fractions
        self.baseScale = baseScale
        self.heldOutScale = heldOutScale
        self.points = points
    }

    /// The checkpoint bytes at `scale`, when that size is one of the sweep's.
    package func checkpointBytes(at scale: Double) -> Int? {
        points.first { $0.scale == scale }?.checkpoint.totalSizeBytes
    }
}

/// One size of a sweep.
package struct SweepPoint: Codable, Sendable, Equatable {
    package var scale: Double
    package var checkpoint: CheckpointInfo
    /// The floor read of this size's checkpoint (absent until measured, or when it could not be).
    package var floor: FloorInfo?
    package var floorFailure: String?

    package init(scale: Double, checkpoint: CheckpointInfo, floor: FloorInfo? = nil, floorFailure: String? = nil) {
        self.scale = scale
        self.checkpoint = checkpoint
        self.floor = floor
        self.floorFailure = floorFailure
    }
}
