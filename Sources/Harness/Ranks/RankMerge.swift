import Foundation
import OSLayer
import Probes
import ResultsFormat
import TensorEngine

/// `merge`: the results files of the ranks of one job (`measure-rank`, one per rank) combined into one results
/// file per node and one for the job, each run's ranks judged together on their node as `run --ranks` judges
/// them (``MachineJudge``).
///
/// No process sampled the whole node, so the Σ figures are built from the ranks' own records. Σ RssAnon,
/// VmRSS and RssFile: each rank's samples sit on its `timeline_origin_seconds` (`CLOCK_MONOTONIC`, one clock
/// for the whole node), and at every sample of any rank the Σ is taken over every rank's latest sample (before
/// its first, its baseline); each timeline keeps the maxima of its buckets (at most 2000 points), so a Σ is
/// never below what was sampled together. Σ Pss: the ranks' `smaps_rollup` at the moment all held their models
/// (``HeldReading``), the one moment their Pss adds up. MemAvailable, Cached and the cgroup are machine
/// figures no rank recorded: absent. Runs are in id order, then repeat, then rank.
package enum RankMerge {
    package struct Output: Sendable {
        /// By node (hostname), in name order.
        package var nodes: [(node: String, results: ScenarioResults)]
        package var job: ScenarioResults
    }

    /// Merges the rank files (`path`, its results); a usage or data error names the file and the rule broken.
    package static func merge(_ inputs: [(path: String, results: ScenarioResults)]) throws -> Output {
        guard let first = inputs.first else {
            throw MergeError("no rank results files to merge", category: .missingInput)
        }
        try check(inputs, against: first)
        let ranks = inputs.flatMap(\.results.runs).sorted {
            ($0.id, $0.repeatIndex, $0.rank ?? 0) < ($1.id, $1.repeatIndex, $1.rank ?? 0)
        }
        let tolerances = Tolerances(first.results.scenario)
        var machines: [MachineRun] = []
        let groups = Dictionary(grouping: ranks) { RunKey(id: $0.id, repeatIndex: $0.repeatIndex) }
        for key in groups.keys.sorted(by: { ($0.id, $0.repeatIndex) < ($1.id, $1.repeatIndex) }) {
            let runRanks = groups[key] ?? []
            let missing = missingRanks(runRanks)
            for (node, nodeRanks) in Dictionary(grouping: runRanks, by: { $0.node ?? "unknown" }).sorted(by: {
                $0.key < $1.key
            }) {
                machines.append(judge(nodeRanks, node: node, missing: missing, tolerance: tolerances.for(nodeRanks[0])))
            }
        }
        var job = combined(inputs.map(\.results), runs: ranks)
        job.machineRuns = machines
        let nodes = Set(ranks.map { $0.node ?? "unknown" }).sorted().map {
            node -> (node: String, results: ScenarioResults) in
            let own = inputs.filter { $0.results.runs.contains { ($0.node ?? "unknown") == node } }.map(\.results)
            var results = combined(own, runs: ranks.filter { ($0.node ?? "unknown") == node })
            results.machineRuns = machines.filter { $0.node == node }
            return (node, results)
        }
        return Output(nodes: nodes, job: job)
    }

    struct RunKey: Hashable {
        var id: String
        var repeatIndex: Int
    }

    struct Tolerances {
        var engine: Scenario.Tolerance
        var subject: Scenario.Tolerance

        init(_ info: ScenarioInfo) {
            engine = Scenario.Tolerance(relative: info.toleranceRelative, absoluteBytes: info.toleranceAbsoluteBytes)
            subject = Scenario.Tolerance(
                relative: info.subjectToleranceRelative ?? Subject.loaderTolerance.relative,
                absoluteBytes: info.subjectToleranceAbsoluteBytes ?? Subject.loaderTolerance.absoluteBytes)
        }

        func `for`(_ result: RunResult) -> Scenario.Tolerance {
            (result.subject ?? .engine).isEngine ? engine : subject
        }
    }

    /// Every file holds ranks' results of the same scenario at the same scale, and no rank twice.
    static func check(
        _ inputs: [(path: String, results: ScenarioResults)], against first: (path: String, results: ScenarioResults)
    ) throws {
        var seen: [String: String] = [:]
        for (path, results) in inputs {
            if JobIdentity(results) != JobIdentity(first.results) {
                throw MergeError(
                    "\(path): \(JobIdentity(results)), but \(first.path): \(JobIdentity(first.results)): the ranks of one job load one checkpoint of one scenario",
                    category: .badData)
            }
            for (index, run) in results.runs.enumerated() {
                guard let rank = run.rank, run.worldSize != nil else {
                    throw MergeError(
                        "\(path): $.runs[\(index)] is not a rank's result (no rank): not written by measure-rank",
                        category: .badData)
                }
                let key = "\(run.id) #\(run.repeatIndex + 1) rank \(rank)"
                if let other = seen[key] { throw MergeError("\(path): \(key) is also in \(other)", category: .badData) }
                seen[key] = path
            }
        }
    }

    /// What the ranks of one job share: the scenario, the scale and the checkpoint (its bytes, files, largest
    /// shard, dtype and seed — not its path, which differs between nodes with their own work folders).
    struct JobIdentity: Equatable, CustomStringConvertible {
        let scenario: String
        let scale: Double
        let checkpoint: [String]

        init(_ results: ScenarioResults) {
            scenario = results.scenario.name
            scale = results.scale.chosen
            let c = results.checkpoint
            checkpoint = [
                "\(c.totalSizeBytes) bytes", "\(c.files) file(s)", "largest shard \(c.largestShardBytes)",
                c.dtype ?? "stored dtype", c.seed.map { "seed \($0)" } ?? "no seed",
            ]
        }

        var description: String {
            "scenario '\(scenario)' at scale \(scale), checkpoint of \(checkpoint.joined(separator: ", "))"
        }
    }

    /// The global ranks of the run's world that no file holds.
    static func missingRanks(_ ranks: [RunResult]) -> [Int] {
        let world = ranks.compactMap(\.worldSize).max() ?? ranks.count
        let present = Set(ranks.compactMap(\.rank))
        return (0..<world).filter { !present.contains($0) }
    }

    static func judge(_ ranks: [RunResult], node: String, missing: [Int], tolerance: Scenario.Tolerance) -> MachineRun {
        let first = ranks[0]
        let claim =
            MachineClaim(rank: first)
            ?? MachineClaim(
                id: first.id, strategy: first.strategy, predictedPeakBytes: 0, formula: first.formula, mappedBytes: nil)
        let series = series(of: ranks)
        var machine = MachineJudge(tolerance: tolerance).judge(
            claim, repeatIndex: first.repeatIndex, ranks: ranks,
            series: series ?? MachineJudge.Series(baseline: MachineReading(), samples: [], method: "not computed"),
            node: node)
        var problems: [String] = []
        if MachineClaim(rank: first) == nil { problems.append("the ranks recorded no prediction") }
        if series == nil { problems.append("a rank has no timeline on the node's clock, so no Σ can be formed") }
        if !missing.isEmpty {
            problems.append(
                "rank\(missing.count == 1 ? "" : "s") \(missing.map(String.init).joined(separator: ", ")) of \(first.worldSize ?? ranks.count) missing from the files"
            )
        }
        if !problems.isEmpty {
            machine.verdict = machine.verdict == .fail ? .fail : .error
            machine.verdictDetail = problems.joined(separator: "; ") + "; " + machine.verdictDetail
        }
        return machine
    }

    /// The figures a rank's timeline has, with the machine figure their Σ makes. A process's RSS does not
    /// depend on the others, so readings of different moments add up; Pss does (a shared page is divided among
    /// the processes mapping it at that moment), so Σ Pss comes only from ``HeldReading``s.
    static let summed: [(machine: MachineFigure, rank: MemoryFigure)] = [
        (.sumRssAnon, .rssAnon), (.sumRss, .rss), (.sumRssFile, .rssFile),
    ]
    static let heldSums: [(machine: MachineFigure, rank: MemoryFigure)] = [
        (.sumPss, .pss), (.sumPssAnon, .pssAnon), (.sumPssFile, .pssFile),
    ]

    typealias Sample = MachineSample

    /// The Σ series of the ranks' timelines on one clock; nil when a rank has none.
    static func series(of ranks: [RunResult]) -> MachineJudge.Series? {
        let measured = ranks.compactMap { result -> (RunMeasurement, Double)? in
            guard let m = result.measurement, let origin = m.timelineOriginSeconds,
                m.timeline.columns.contains(.seconds)
            else { return nil }
            return (m, origin)
        }
        guard measured.count == ranks.count, let start = measured.map(\.1).min() else { return nil }
        let figures = summed.filter { pair in
            measured.allSatisfy {
                $0.0.baseline[pair.rank] != nil && $0.0.timeline.columns.contains(.figure(pair.rank))
            }
        }
        var baseline = MachineReading()
        for pair in figures { baseline[pair.machine] = measured.reduce(0) { $0 + ($1.0.baseline[pair.rank] ?? 0) } }
        let events = measured.enumerated().flatMap { rank, entry in
            let (m, origin) = entry
            let columns = ([TimelineColumn.seconds] + figures.map { .figure($0.rank) }).compactMap {
                m.timeline.columns.firstIndex(of: $0)
            }
            return m.timeline.points.filter { $0.count == m.timeline.columns.count }.map { point in
                (seconds: origin + point[columns[0]] - start, rank: rank, values: columns.dropFirst().map { point[$0] })
            }
        }.sorted { $0.seconds < $1.seconds }
        let rss = figures.firstIndex { $0.rank == .rss }
        var latest = Array(repeating: Array(repeating: 0.0, count: figures.count), count: measured.count)
        var samples = events.map { event -> Sample in
            latest[event.rank] = event.values
            var reading = MachineReading()
            for (index, pair) in figures.enumerated() {
                reading[pair.machine] = (baseline[pair.machine] ?? 0) + Int(latest.reduce(0) { $0 + $1[index] })
            }
            let perRank = measured.indices.map { r in
                rss.map { (measured[r].0.baseline[.rss] ?? 0) + Int(latest[r][$0]) }
            }
            return Sample(seconds: event.seconds, reading: reading, ranks: perRank)
        }
        var held: MachineReading?
        let heldPss = addHeld(
            measured.map(\.0), start: start, baseline: &baseline, samples: &samples, heldReading: &held)
        return MachineJudge.Series(
            baseline: baseline, samples: samples,
            method:
                "Σ RssAnon, VmRSS, RssFile of the ranks' own timelines (each sampled by its rank's probe) on the node's CLOCK_MONOTONIC, every rank's latest sample at each sample of any"
                + (heldPss
                    ? "; Σ Pss of each rank's smaps_rollup at the moment every rank held its model (Pss of shared pages adds up only at one moment)"
                    : "; no Σ Pss (a rank has no reading taken while all held their models)")
                + "; merged by `merge`", held: held)
    }

    /// Σ Pss at the moment all ranks held their models, as one more sample (the RSS figures of the sample
    /// before it carried); false when a rank has no such reading.
    static func addHeld(
        _ measured: [RunMeasurement], start: Double, baseline: inout MachineReading, samples: inout [Sample],
        heldReading: inout MachineReading?
    ) -> Bool {
        let held = measured.compactMap(\.held)
        guard held.count == measured.count, let moment = held.map(\.seconds).max() else { return false }
        let figures = (summed + heldSums).filter { pair in
            measured.allSatisfy { $0.baseline[pair.rank] != nil && $0.held?.reading[pair.rank] != nil }
        }
        guard figures.contains(where: { $0.machine == .sumPss }) else { return false }
        let seconds = moment - start
        let index = samples.firstIndex { $0.seconds > seconds } ?? samples.count
        var sample = index > 0 ? samples[index - 1] : Sample(seconds: seconds, reading: MachineReading(), ranks: [])
        sample.seconds = seconds
        for pair in figures {
            baseline[pair.machine] = measured.reduce(0) { $0 + ($1.baseline[pair.rank] ?? 0) }
            sample.reading[pair.machine] = held.reduce(0) { $0 + ($1.reading[pair.rank] ?? 0) }
        }
        sample.ranks = held.map { $0.reading[.rss] }
        samples.insert(sample, at: index)
        heldReading = sample.reading
        return true
    }

    /// One results file of `parts` (all of one scenario) holding `runs`.
    static func combined(_ parts: [ScenarioResults], runs: [RunResult]) -> ScenarioResults {
        var results = parts[0]
        results.runs = runs
        results.complete = parts.allSatisfy(\.complete)
        results.stoppedReason = parts.compactMap(\.stoppedReason).first
        results.startedAt = parts.map(\.startedAt).min() ?? results.startedAt
        results.finishedAt = parts.compactMap(\.finishedAt).max()
        return results
    }
}

/// Rank files that cannot be merged.
package typealias MergeError = FailureMessage
