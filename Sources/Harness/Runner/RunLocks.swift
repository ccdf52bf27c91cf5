import OSLayer
import TensorEngine

/// One `run` of a scenario at a time per output folder and per work folder: two would overwrite each other's
/// results file (`<out>/<name>.json`, rewritten after every run) and the children's event and log files in
/// `<work>/runs`, and each would measure the other's memory and I/O. The second is refused at once, naming
/// the holder's process id, rather than made to wait: a CI job that collides has a configuration to fix.
///
/// The locks are `<out>/.<name>.lock` and `<work>/runs/.<name>.lock` (``FileLock/tryAcquire(_:)``), removed
/// when the run ends; a run killed with SIGKILL leaves the file, but not the lock, which the kernel drops.
package struct RunLocks {
    private let locks: [FileLock]

    package static func acquire(scenario: String, outputDirectory: String, runsFolder: String) throws -> RunLocks {
        var locks: [FileLock] = []
        for (folder, option) in [(outputDirectory, "--out"), (runsFolder, "--work-dir")] {
            let path = folder + "/.\(scenario).lock"
            let (lock, holder) = try acquireOne(path)
            guard let lock else {
                for lock in locks { lock.release() }
                let who = holder.map { "another run (pid \($0))" } ?? "another run"
                throw FailureMessage(
                    "\(path): \(who) of scenario '\(scenario)' is using \(folder); wait for it to finish or give another \(option)",
                    category: .io)
            }
            locks.append(lock)
        }
        return RunLocks(locks: locks)
    }

    private static func acquireOne(_ path: String) throws -> (FileLock?, Int32?) {
        do {
            return try FileLock.tryAcquire(path)
        } catch {
            throw FailureMessage("\(path): cannot take the run lock: \(error)", category: .io)
        }
    }

    /// Releases both locks (also on deinit of the last copy of the locks).
    package func release() { for lock in locks { lock.release() } }
}
