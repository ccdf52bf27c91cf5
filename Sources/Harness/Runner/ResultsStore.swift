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

    package func setFloorFailure(_ reason: String) throws {
        results.floorFailure = reason
        try write()
    }

    package func setFloor(_ floor: FloorInfo?) throws {
        results.floor = floor
        try write()
    }

    package func append(_ runs: [RunResult], machine: MachineRun? = nil) throws {
        results.runs += runs
        if let machine { results.machineRuns = (results.machineRuns ?? []) + [machine] }
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
