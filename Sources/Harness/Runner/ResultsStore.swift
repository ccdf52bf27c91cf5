import Checkpoint
import Foundation
import OSLayer
import ResultsFormat

/// The results of a scenario as they grow, and the file that holds them: rewritten atomically (a temporary
/// file renamed over it) after every change, so an interrupt or a crash of the runner keeps exactly the runs
/// that completed, in a file that always parses.
package final class ResultsStore {
    package let path: String
    package private(set) var results: ScenarioResults

    /// Creates the store and writes the first version of the file (no runs yet).
    package init(path: String, results: ScenarioResults) throws {
        self.path = path
        self.results = results
        try write()
    }

    /// The floor could not be measured; `scale`: of that size of a sweep (the largest size's is the results').
    package func setFloorFailure(_ reason: String, scale: Double? = nil) throws {
        if let scale, let index = pointIndex(scale) {
            results.sweep?.points[index].floorFailure = reason
            if index != (results.sweep?.points.count ?? 0) - 1 { return try write() }
        }
        results.floorFailure = reason
        try write()
    }

    package func setFloor(_ floor: FloorInfo?, scale: Double? = nil) throws {
        if let scale, let index = pointIndex(scale) {
            results.sweep?.points[index].floor = floor
            if index != (results.sweep?.points.count ?? 0) - 1 { return try write() }
        }
        results.floor = floor
        try write()
    }

    /// The floor measured for a sweep's size.
    package func floor(at scale: Double?) -> FloorInfo? {
        scale.flatMap(pointIndex).flatMap { results.sweep?.points[$0].floor }
    }

    private func pointIndex(_ scale: Double) -> Int? { results.sweep?.points.firstIndex { $0.scale == scale } }

    /// Runs appended; a sweep's fits recomputed from every run so far.
    package func append(_ runs: [RunResult], machine: MachineRun? = nil) throws {
        results.runs += runs
        if let machine { results.machineRuns = (results.machineRuns ?? []) + [machine] }
        if results.sweep != nil { results.fits = SweepFitting.fits(results) }
        try write()
    }

    /// Every planned run finished.
    package func finish() throws -> ScenarioResults {
        results.complete = true
        results.finishedAt = Self.timestamp()
        try write()
        return results
    }

    /// The scenario stopped early; what completed stays.
    package func stop(_ reason: StopReason) throws -> ScenarioResults {
        results.complete = false
        results.stoppedReason = reason
        results.finishedAt = Self.timestamp()
        try write()
        return results
    }

    private func write() throws {
        try AtomicFile.write(try ResultsCodec.encode(results), to: path, sync: false)
    }

    static func timestamp() -> String {
        ISO8601DateFormatter().string(from: Date())
    }
}
