import Foundation
import OSLayer
import ResultsFormat
import TensorEngine

/// `measure-rank`: one rank of a job that torchrun or `srun` started, measured like a rank of `run --ranks`.
///
/// The rank's variables (``RankInfo/fromEnvironment(_:)``) say which rank this is; the node's ranks meet
/// through ``RankJob``'s barrier files: their children start loading together and hold their models until all
/// have loaded, and all load the checkpoint the first of them chose. Each writes its own results file
/// (`<out>/<scenario>-<run>-rank<R>.json`); `merge` combines them with the machine-level claims. Local rank 0
/// alone applies the cache mode, before its child is at the barrier. There is no floor: ranks reading at once
/// would each measure a share of the disk.
extension ScenarioRunner {
    /// A runner of the one run `id` (after `options.subjects` made their runs) for a rank of a node with
    /// `localWorldSize` ranks.
    package static func forRank(
        scenario: Scenario, run id: String, localWorldSize: Int, options: Options,
        onEvent: @escaping (Event) -> Void = { _ in }
    ) throws -> ScenarioRunner {
        var options = options
        var selected = try scenario.withSubjects(options.subjects).selecting(run: id).withRanks(localWorldSize)
        // The ranks of a job load one checkpoint: the scenario's own size. A sweep is `run --scales --ranks N`.
        selected.sweep = nil
        options.subjects = nil
        options.ranks = nil
        return ScenarioRunner(scenario: selected, options: options, onEvent: onEvent)
    }

    /// The results file of one rank.
    package func rankResultsPath(_ rank: RankInfo, run: String) -> String {
        options.outputDirectory + "/\(scenario.name)-\(run)-rank\(rank.rank).json"
    }

    /// Measures the scenario's only run (the caller selects it: ``Scenario/selecting(run:)``) as `rank`, every
    /// repeat; returns the rank's results, also written after each repeat.
    package func runRank(_ rank: RankInfo, environment: [String: String]) throws -> ScenarioResults {
        guard let run = scenario.runs.first, scenario.runs.count == 1 else {
            preconditionFailure("runRank needs a scenario of one run")
        }
        let job = try RankJob(workDirectory: options.workDirectory, rank: rank, environment: environment)
        var abandoned = false
        defer { abandoned ? job.abandon() : job.leave() }
        let loaders = try checkLoaders()
        let (prepared, system, memoryBytes) = try prepare(share: job.sharedScale)
        let store = try ResultsStore(
            path: rankResultsPath(rank, run: run.id), results: initialResults(prepared, system))
        do {
            let ledgerCap = Self.ledgerCap(memoryBytes: memoryBytes) / rank.localWorldSize
            for repeatIndex in 0..<(options.repeatCount ?? scenario.repeatCount) {
                if SignalTrap.interrupted { return try store.stop(.interrupted) }
                let outcome = try measureRank(
                    run, rank: rank, repeatIndex: repeatIndex, prepared: prepared, ledgerCap: ledgerCap,
                    loaders: loaders, job: job)
                var result = Judge(tolerance: scenario.tolerance, subjectTolerance: scenario.subjectTolerance).judge(
                    run: run, repeatIndex: repeatIndex,
                    outcome: outcome.assembled(run: run, prediction: prepared.atScale[run.id]), floor: nil)
                result.place(rank, node: system.hostname)
                result.measurement?.held = outcome.held
                try store.append([result])
                onEvent(.runFinished(result))
                if outcome.stop == .interrupted { return try store.stop(.interrupted) }
                if case .rendezvousTimedOut = outcome.stop {
                    // The job is broken: later repeats would wait for the same ranks again.
                    abandoned = true
                    let repeats = options.repeatCount ?? scenario.repeatCount
                    return repeatIndex + 1 < repeats ? try store.stop(.error) : try store.finish()
                }
            }
            return try store.finish()
        } catch {
            _ = try? store.stop(.error)
            throw error
        }
    }

    private func measureRank(
        _ run: Scenario.Run, rank: RankInfo, repeatIndex: Int, prepared: PreparedScenario, ledgerCap: Int,
        loaders: LoaderEnvironment, job: RankJob
    ) throws -> ChildRunner.Outcome {
        onEvent(
            .runStarted(
                index: repeatIndex + 1, count: options.repeatCount ?? scenario.repeatCount, id: run.id,
                repeatIndex: repeatIndex))
        if rank.localRank == 0 { try prepareCache(prepared.shardPaths) }
        let launch = try rankLaunch(
            run, rank: rank, repeatIndex: repeatIndex, prepared: prepared, ledgerCap: ledgerCap, loaders: loaders)
        let gates = ChildRunner.Gates(
            allReady: job.gate("ready.\(repeatIndex)"), allReplied: job.gate("replied.\(repeatIndex)"),
            allHeld: job.gate("held.\(repeatIndex)"))
        let start = ContinuousClock.now
        var runner = ChildRunner(limits: scenario.limits)
        runner.onRendezvousWait = rendezvousNotice()
        return runner.run([launch], gates: gates) { [onEvent] _, event in
            if case .phaseBegan(let mark) = event {
                onEvent(
                    .phase(
                        id: run.id, name: mark.name, ledgerBytes: mark.ledgerLiveBytes,
                        elapsedSeconds: (ContinuousClock.now - start).inSeconds))
            }
        }[0]
    }
}
