import Checkpoint
import Foundation
import Loading
import OSLayer
import Probes
import ResultsFormat
import TensorEngine

/// Runs a scenario: prepares the checkpoint (``CheckpointPreparation``), measures the floor, then runs every
/// strategy × repeat in a fresh child process of this executable (``ChildRunner``), judges each as it
/// completes (``Judge``) and keeps the results file current after every run (``ResultsStore``).
package final class ScenarioRunner {
    package struct Options: Sendable {
        /// `--scale`: overrides the scenario's scale.
        package var scale: Scenario.ScaleRequest?
        /// `--only`: run ids (or strategy names) to run; nil runs all.
        package var only: Set<String>?
        package var repeatCount: Int?
        /// Where results go (`<outputDirectory>/<scenario>.json`).
        package var outputDirectory: String
        /// `--memory-limit`: simulate a machine with this much memory.
        package var memoryLimit: Int?
        /// Cache and scratch folder (`.bigmodel-bench`).
        package var workDirectory: String
        /// The executable to spawn as the measured child (this program).
        package var executable: String
        /// `--subject`: measure every run with each of these loaders.
        package var subjects: [Subject]? = nil
        /// `--python`: the interpreter of the transformers subject.
        package var python: String? = nil
        /// `--ranks`: every run loaded by this many processes at once.
        package var ranks: Int? = nil
        /// `--rendezvous-timeout`: how long ranks that came wait at the start barrier for the rest.
        package var rendezvousTimeout: Double? = nil

        package init(
            scale: Scenario.ScaleRequest? = nil, only: Set<String>? = nil, repeatCount: Int? = nil,
            outputDirectory: String,
            memoryLimit: Int? = nil, workDirectory: String, executable: String
        ) {
            self.scale = scale
            self.only = only
            self.repeatCount = repeatCount
            self.outputDirectory = outputDirectory
            self.memoryLimit = memoryLimit
            self.workDirectory = workDirectory
            self.executable = executable
        }
    }

    /// What the runner tells its caller as it goes (the CLI prints it).
    package enum Event: Sendable {
        case note(String)
        case generating(done: Int, total: Int)
        case runStarted(index: Int, count: Int, id: String, repeatIndex: Int)
        case phase(id: String, name: String, ledgerBytes: Int?, elapsedSeconds: Double)
        case runFinished(RunResult)
        case machineFinished(MachineRun)
    }

    /// `MALLOC_CONF` for every measured child: freed pages go back to the OS at once, so RSS after a free
    /// is honest, and no background thread runs beside the sampler.
    package static let childMallocConf = "dirty_decay_ms:0,muzzy_decay_ms:0,background_thread:false"

    package let scenario: Scenario
    package let options: Options
    let onEvent: (Event) -> Void

    /// The scenario's runs, each measured by every loader `--subject` names.
    package init(scenario: Scenario, options: Options, onEvent: @escaping (Event) -> Void = { _ in }) {
        self.scenario = scenario.withSubjects(options.subjects).withRanks(options.ranks)
            .withRendezvousTimeout(options.rendezvousTimeout)
        self.options = options
        self.onEvent = onEvent
    }

    /// The progress line while ranks wait at the start barrier (every 5 s; `measure-rank` prefixes its rank).
    func rendezvousNotice() -> ([Int], Int, Double) -> Void {
        let onEvent = self.onEvent
        let limit = Int(scenario.limits.rendezvousSeconds)
        return { missing, total, seconds in
            let names = missing.map(String.init).joined(separator: ", ")
            onEvent(
                .note(
                    "waiting at the start barrier for local rank\(missing.count == 1 ? "" : "s") \(names) of \(total): \(Int(seconds)) s of \(limit) s"
                ))
        }
    }

    package var resultsPath: String { options.outputDirectory + "/\(scenario.name).json" }
    var runsFolder: String { options.workDirectory + "/runs" }

    /// The environment every child gets: fixed and complete, nothing inherited but PATH and HOME.
    ///
    /// `SWIFT_BACKTRACE=enable=no`: the Swift runtime's crash handler survives a SIGSEGV or SIGBUS sent with
    /// `kill` (it prints a backtrace and returns), so a child could take a fatal signal and still report a
    /// measurement. Without it the default action applies from the first instruction, and after start-up
    /// ``FatalSignalGuard`` reports the signal before the child dies of it. (To see a backtrace of a crashing
    /// child, run `bigmodel-bench measure-run` by hand with the request file on standard input.)
    package var childEnvironment: [String: String] {
        let parent = ProcessInfo.processInfo.environment
        return [
            "PATH": parent["PATH"] ?? "/usr/bin:/bin", "HOME": parent["HOME"] ?? "/", "LANG": "C.UTF-8",
            "MALLOC_CONF": Self.childMallocConf,
            "SWIFT_BACKTRACE": "enable=no",
        ]
    }

    /// The runs `--only` selects, each with its repeat indices, in order.
    package var plannedRuns: [(run: Scenario.Run, repeatIndex: Int)] {
        let runs = scenario.runs.filter { run in
            options.only.map { $0.contains(where: run.isSelected(by:)) } ?? true
        }
        let repeats = options.repeatCount ?? scenario.repeatCount
        return runs.flatMap { run in (0..<repeats).map { (run, $0) } }
    }

    /// The `--only` names that select no run: a usage error before anything is measured (a filter that matches
    /// nothing would otherwise measure nothing and exit 0).
    package func checkSelection() throws(UsageError) {
        guard let only = options.only else { return }
        let unmatched = only.filter { name in !scenario.runs.contains { $0.isSelected(by: name) } }
        guard !unmatched.isEmpty else { return }
        throw UsageError(
            "--only \(unmatched.sorted().joined(separator: ",")) matches no run of \(scenario.name); its runs: "
                + scenario.runs.map(\.id).joined(separator: ", ")
                + " (or a strategy: \(Set(scenario.runs.map(\.strategy.rawValue)).sorted().joined(separator: ", ")))")
    }

    /// Runs everything; returns the results (also written to `resultsPath` after each run).
    package func run() throws -> ScenarioResults {
        try checkSelection()
        let loaders = try checkLoaders()
        let locks = try lockFolders()
        defer { locks.release() }
        let sizes: [PreparedScenario]
        var initial: ScenarioResults
        let memoryBytes: Int
        if let plan = scenario.sweep {
            let sweep = try prepareSweep(plan)
            (sizes, memoryBytes) = (sweep.sizes, sweep.memoryBytes)
            initial = initialResults(sweep.sizes[sweep.sizes.count - 1], sweep.system)
            initial.sweep = sweep.sweep
        } else {
            let (prepared, system, bytes) = try prepare()
            (sizes, memoryBytes) = ([prepared], bytes)
            initial = initialResults(prepared, system)
        }
        let store = try ResultsStore(path: resultsPath, results: initial)
        do {
            return try measure(
                sizes, store: store, ledgerCap: Self.ledgerCap(memoryBytes: memoryBytes), loaders: loaders)
        } catch {
            _ = try? store.stop(.error)
            throw error
        }
    }

    /// The folders, created, and this scenario's locks on them (``RunLocks``).
    func lockFolders() throws -> RunLocks {
        for folder in [options.workDirectory, options.outputDirectory, runsFolder] {
            do {
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            } catch {
                throw FileIOError(path: folder, operation: "create folder", reason: FoundationErrorText.cause(error))
            }
        }
        return try RunLocks.acquire(
            scenario: scenario.name, outputDirectory: options.outputDirectory, runsFolder: runsFolder)
    }

    /// The interpreter and packages every planned loader needs (exit 69 when one is missing).
    func checkLoaders() throws -> LoaderEnvironment {
        if scenario.attribute && !plannedRuns.contains(where: { $0.run.subject.isPython }) {
            onEvent(
                .note(
                    "--attribute: no run here has a Python subject (transformers, safetensors, runai-streamer, fastsafetensors), so none is attributed; the engine's ledger and phases already say where its bytes are"
                ))
        }
        return try LoaderEnvironment.check(
            subjects: Set(plannedRuns.map(\.run.subject)), requested: options.python, scenarioPython: scenario.python,
            needsAccelerate: plannedRuns.contains { $0.run.subject == .transformers && $0.run.strategy == .deviceMap },
            attribute: scenario.attribute && plannedRuns.contains { $0.run.subject.isPython })
    }

    /// The folders, the machine, and the checkpoint with every run's prediction; `share` decides whose scale
    /// counts (``CheckpointPreparation/prepare(progress:note:share:)``).
    func prepare(
        share: ((() throws -> ScaleInfo) throws -> ScaleInfo)? = nil
    ) throws -> (prepared: PreparedScenario, system: SystemInfo, memoryBytes: Int) {
        // Captures left by a run that was killed are removed; each one read is removed as soon as it is.
        if scenario.attribute { try? FileManager.default.removeItem(atPath: attributionFolder) }
        for folder in [options.workDirectory, options.outputDirectory, runsFolder]
            + (scenario.attribute ? [attributionFolder] : [])
        {
            try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        }
        let machine = self.machine()
        let prepared = try preparation(machine).prepare(
            progress: { [onEvent] in onEvent(.generating(done: $0, total: $1)) }, note: { onEvent(.note($0)) },
            share: share)
        return (prepared, machine.system, machine.memoryBytes)
    }

    /// Every size (one without a sweep), smallest first; before the held-out size, its predictions are said.
    private func measure(_ sizes: [PreparedScenario], store: ResultsStore, ledgerCap: Int, loaders: LoaderEnvironment)
        throws -> ScenarioResults
    {
        var children = ChildRunner(limits: scenario.limits)
        children.onRendezvousWait = rendezvousNotice()
        for prepared in sizes {
            let sweepScale = scenario.sweep == nil ? nil : prepared.scale.chosen
            if sweepScale != nil, sweepScale == store.results.sweep?.heldOutScale { announceHoldout(store.results) }
            let finished = try measureSize(
                prepared, sweepScale: sweepScale, store: store, ledgerCap: ledgerCap, children: children,
                loaders: loaders)
            if !finished { return try store.stop(.interrupted) }
        }
        return try store.finish()
    }

    /// One size: its floor, then every planned run. False when interrupted.
    private func measureSize(
        _ prepared: PreparedScenario, sweepScale: Double?, store: ResultsStore, ledgerCap: Int, children: ChildRunner,
        loaders: LoaderEnvironment
    ) throws -> Bool {
        try prepareCache(prepared.shardPaths)
        if SignalTrap.interrupted { return false }
        guard try measureFloor(prepared, sweepScale: sweepScale, store: store, children: children) else { return false }
        let judge = Judge(tolerance: scenario.tolerance, subjectTolerance: scenario.subjectTolerance)
        let planned = plannedRuns
        let label = sweepScale.map { " at scale \(SweepFitting.scaleText($0))" } ?? ""
        for (index, (run, repeatIndex)) in planned.enumerated() {
            if SignalTrap.interrupted { return false }
            onEvent(.runStarted(index: index + 1, count: planned.count, id: run.id + label, repeatIndex: repeatIndex))
            try prepareCache(prepared.shardPaths)
            // N ranks share the machine: each gets its share of the cap.
            let (outcomes, machine) = try measureRun(
                run, repeatIndex: repeatIndex, prepared: prepared, ledgerCap: ledgerCap / run.ranks, children: children,
                loaders: loaders)
            // A run cut short by the user did not finish: it is not recorded (README, "Exit statuses"); the
            // results keep only what completed, and say why they stop.
            if outcomes.contains(where: { $0.stop == .interrupted }) { return false }
            var (results, machineRun) = judged(
                run, repeatIndex: repeatIndex, outcomes: outcomes, machine: machine, prepared: prepared,
                floor: sweepScale == nil ? store.results.floor : store.floor(at: sweepScale), judge: judge)
            if let sweepScale {
                for index in results.indices { results[index].scale = sweepScale }
                machineRun?.scale = sweepScale
            }
            try store.append(results, machine: machineRun)
            for result in results { onEvent(.runFinished(result)) }
            if let machineRun { onEvent(.machineFinished(machineRun)) }
        }
        return true
    }

    /// The floor of one size's checkpoint; false when interrupted. A floor that could not be measured is
    /// recorded with its reason, and the runs go on without one.
    private func measureFloor(
        _ prepared: PreparedScenario, sweepScale: Double?, store: ResultsStore, children: ChildRunner
    ) throws -> Bool {
        let stem = runsFolder + "/\(scenario.name)-floor" + (sweepScale.map { "-\($0)" } ?? "")
        let floor = children.run([launch(floorRequest(prepared), stem: stem)])[0]
        if floor.stop == .interrupted { return false }
        if let info = floor.floor {
            try store.setFloor(info, scale: sweepScale)
            onEvent(
                .note(
                    "floor: \(ByteSize.decimal(info.bytes)) read in \(ByteSize.fixed(info.seconds, digits: 2)) s (\(ByteSize.fixed(info.gigabytesPerSecond, digits: 2)) GB/s, \(info.method))"
                ))
        } else {
            // The runs go on without a floor; the results say why there is none.
            let reason = Judge.errorReason(floor)?.1 ?? "the floor child sent no floor"
            try store.setFloorFailure(reason, scale: sweepScale)
            onEvent(.note("floor: not measured: \(reason)"))
        }
        return true
    }

    /// Every rank's result judged, and the machine's when the run has several ranks.
    private func judged(
        _ run: Scenario.Run, repeatIndex: Int, outcomes: [ChildRunner.Outcome], machine: MachineProbe?,
        prepared: PreparedScenario, floor: FloorInfo?, judge: Judge
    ) -> ([RunResult], MachineRun?) {
        let prediction = prepared.atScale[run.id]
        let node = SystemInfo.current().hostname
        let results = outcomes.enumerated().map { rank, outcome in
            var result = judge.judge(
                run: run, repeatIndex: repeatIndex, outcome: outcome.assembled(run: run, prediction: prediction),
                floor: floor)
            if run.ranks > 1 {
                result.place(
                    RankInfo(rank: rank, localRank: rank, worldSize: run.ranks, localWorldSize: run.ranks), node: node)
            }
            return result
        }
        let machineRun = machine.flatMap { machine in
            prediction.map {
                MachineJudge(tolerance: scenario.tolerance(for: run)).judge(
                    MachineClaim(run: run, prediction: $0), repeatIndex: repeatIndex, ranks: results,
                    series: machine.series(), node: node)
            }
        }
        return (results, machineRun)
    }

    private func measureRun(
        _ run: Scenario.Run, repeatIndex: Int, prepared: PreparedScenario, ledgerCap: Int, children: ChildRunner,
        loaders: LoaderEnvironment
    ) throws -> ([ChildRunner.Outcome], MachineProbe?) {
        let launches = try (0..<run.ranks).map { rank in
            try rankLaunch(
                run,
                rank: run.ranks > 1
                    ? RankInfo(rank: rank, localRank: rank, worldSize: run.ranks, localWorldSize: run.ranks) : nil,
                repeatIndex: repeatIndex, prepared: prepared, ledgerCap: ledgerCap, loaders: loaders)
        }
        MemoryLeveling.levelBeforeChild(bytes: (prepared.atScale[run.id]?.predictedPeakBytes ?? 0) * run.ranks)
        let machine = run.ranks > 1 ? MachineProbe() : nil
        let start = ContinuousClock.now
        var outcomes = children.run(launches, machine: machine) { [onEvent] rank, event in
            if case .phaseBegan(let mark) = event {
                let id = run.ranks > 1 ? "\(run.id) r\(rank)" : run.id
                onEvent(
                    .phase(
                        id: id, name: mark.name, ledgerBytes: mark.ledgerLiveBytes,
                        elapsedSeconds: (ContinuousClock.now - start).inSeconds))
            }
        }
        for (index, launch) in launches.enumerated() {
            if let capture = launch.request.attribution?.captureFile {
                readAttribution(capture, run: run, into: &outcomes[index], loaders: loaders)
            }
        }
        return (outcomes, machine)
    }

    /// memray's capture of a Python subject's run, read now that it has exited.
    private func readAttribution(
        _ capture: String, run: Scenario.Run, into outcome: inout ChildRunner.Outcome, loaders: LoaderEnvironment
    ) {
        guard let python = loaders.python, let script = loaders.attributionReader else { return }
        onEvent(.note("\(run.id): reading memray's capture"))
        switch AttributionReader.read(capture: capture, python: python, script: script) {
        case .success(let attribution): outcome.attribution = attribution
        case .failure(let failure): outcome.attributionFailure = failure.description
        }
    }

    /// One rank's child (`rank` nil: the run's only process).
    func rankLaunch(
        _ run: Scenario.Run, rank: RankInfo?, repeatIndex: Int, prepared: PreparedScenario, ledgerCap: Int,
        loaders: LoaderEnvironment
    ) throws -> ChildRunner.Launch {
        let suffix = "\(run.id)-\(repeatIndex + 1)" + (rank.map { "-r\($0.rank)" } ?? "")
        let config = prepared.folder + "/config.json"
        var request = ChildRequest(
            task: .load, checkpoint: prepared.folder, files: prepared.shardPaths, strategy: run.strategy,
            dtype: run.dtype,
            sampleIntervalMilliseconds: scenario.sampleIntervalMilliseconds, ledgerBudgetBytes: ledgerCap,
            subject: run.subject, touch: run.touch,
            config: FileManager.default.fileExists(atPath: config) ? config : nil)
        request.rank = rank
        request.samplePss = rank != nil
        request.prediction = prepared.atScale[run.id].map {
            ChildPrediction(predictedPeakBytes: $0.predictedPeakBytes, formula: $0.formula)
        }
        var cleanup: [String] = []
        if scenario.attribute && run.subject.isPython {
            let capture = attributionFolder + "/\(scenario.name)-\(suffix).memray"
            try? FileManager.default.removeItem(atPath: capture)  // memray refuses to overwrite
            request.attribution = AttributionRequest(captureFile: capture)
        }
        if let placement = prepared.atScale[run.id]?.request {
            let offload = options.workDirectory + "/offload/\(scenario.name)-\(suffix)"
            try? FileManager.default.removeItem(atPath: offload)
            try FileManager.default.createDirectory(atPath: offload, withIntermediateDirectories: true)
            request.placement = placement
            request.offloadFolder = offload
            cleanup.append(offload)
        }
        var launch = launch(request, stem: runsFolder + "/\(scenario.name)-\(suffix)", cleanup: cleanup)
        try configure(&launch, for: run, loaders: loaders, ledgerCap: ledgerCap)
        launch.environment.merge(request.rank?.environment ?? [:]) { _, new in new }
        launch.holdsUntilAllLoaded = rank != nil
        return launch
    }

    private func floorRequest(_ prepared: PreparedScenario) -> ChildRequest {
        ChildRequest(
            task: .floor, checkpoint: prepared.folder, files: prepared.shardPaths, coldCache: scenario.cache == .cold)
    }

    private func launch(_ request: ChildRequest, stem: String, cleanup: [String] = []) -> ChildRunner.Launch {
        ChildRunner.Launch(
            request: request, executable: options.executable, arguments: ["measure-run"], environment: childEnvironment,
            logPath: stem + ".log",
            requestPath: stem + ".request.json", cleanupPaths: cleanup)
    }

    /// A loader outside this tool runs its own program, measured from outside, under a memory cap on its
    /// sampled VmRSS (it has no ledger to refuse an allocation).
    private func configure(
        _ launch: inout ChildRunner.Launch, for run: Scenario.Run, loaders: LoaderEnvironment, ledgerCap: Int
    ) throws {
        switch run.subject {
        case .engine:
            return
        case .transformers, .fastLoader:
            guard let python = loaders.python, let driver = loaders.drivers[run.subject] else {
                throw SubjectUnavailable("the \(run.subject.name) subject was not checked")
            }
            launch.executable = python
            launch.arguments = [driver]
        case .command(let argv):
            launch.speaksProtocol = false
            launch.executable = try LoaderEnvironment.program(argv[0], what: "the loader command")
            launch.arguments = Subject.expand(
                Array(argv.dropFirst()), checkpoint: launch.request.checkpoint, dtype: run.dtype,
                config: launch.request.config ?? "",
                offload: launch.request.offloadFolder)
        }
        launch.environment.merge(Self.pythonEnvironment) { _, new in new }
        launch.probeInterval = .microseconds(Int64((scenario.outsideProbeIntervalMilliseconds * 1000).rounded()))
        launch.memoryCapBytes = ledgerCap
    }

    /// Where `--attribute`'s memray captures are written: the work directory's, one folder per scenario (whose
    /// run lock keeps it to one run at a time).
    var attributionFolder: String { options.workDirectory + "/attribution/" + scenario.name }

    /// For Python loaders: no bytecode written beside the driver, no network, output unbuffered.
    static let pythonEnvironment = [
        "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
    ]

    /// Applies the scenario's cache mode to the shard files before a measured child starts.
    func prepareCache(_ paths: [String]) throws {
        for path in paths {
            switch scenario.cache {
            case .cold:
                try PageCache.evict(path: path)
            case .warm:
                let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
                if (try? PageCache.residentBytes(path: path)) != size { try PageCache.warm(path: path) }
            }
        }
    }

    /// 85% of the memory offered less the per-process overhead, but never under half of it (tiny simulated
    /// machines).
    package static func ledgerCap(memoryBytes: Int) -> Int {
        max(Int(Double(memoryBytes) * 0.85) - ScalePlanner.processOverheadBytes, memoryBytes / 2)
    }
}
