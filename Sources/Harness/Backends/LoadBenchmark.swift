import Checkpoint
import Foundation
import Loading
import OSLayer
import Probes
import ResultsFormat
import TensorEngine

/// `bench load`: how fast each way of loading one checkpoint runs, against the machine's floor and against
/// the Python stack, in one run on the same files.
///
/// Every case runs `repeats` times after an uncounted warm-up round, the cases interleaved round by round
/// (floor, each strategy, each peer, then again), so that a slow stretch of the machine (this VM's memory is backed lazily by its host, and the page
/// cache competes with the loads) falls on all of them alike. The page cache is warmed once before the first
/// round. Strategies run in this process with jemalloc returning freed pages at once, as the measured children
/// run it, each repetition on a fresh ledger after every arena was purged (so each faults its memory in as a
/// fresh process would); peers run in a fresh interpreter each time,
/// timed inside it around the load alone. Each case reports its median, minimum and maximum.
///
/// Before the rounds it also times the first touch of fresh memory as large as naive's peak
/// (``FirstTouchFloor``): on a VM whose host takes freed memory back that, not the read floor, bounds every
/// phase that fills fresh memory, and the report says which machine it is (``FreePageReporting``).
package struct LoadBenchmark {
    package struct Options: Sendable {
        package var checkpoint: String
        package var repeats: Int
        /// The interpreter of the peers; nil: `BIGMODEL_BENCH_PYTHON`, else the venv `scripts/setup --test` makes,
        /// else python3. Peers are skipped (and the
        /// report says why) when it cannot import torch and safetensors.
        package var python: String?
        package var peers: Bool
        /// Rounds run first and not counted: the first touch of memory this VM's host has not backed yet costs
        /// several times a later one, and would fall on whichever case runs first.
        package var warmupRounds = 1
        /// `--cache`: warm (the page cache filled once before the first round) or cold (every file evicted
        /// with `posix_fadvise(DONTNEED)` before every case of every round).
        package var cache: PageCacheMode = .warm
        /// `--only`: the cases to time, by name (nil: every case); a name that is no case is a usage error.
        package var only: [String]?

        package init(checkpoint: String, repeats: Int = 5, python: String? = nil, peers: Bool = true) {
            self.checkpoint = checkpoint
            self.repeats = repeats
            self.python = python
            self.peers = peers
        }
    }

    /// One timed way of loading (or reading) the checkpoint.
    package struct Case: Codable, Sendable, Equatable {
        package enum Kind: String, Codable, Sendable { case floor, strategy, peer }
        package var name: String
        package var kind: Kind
        package var description: String
        /// Every repetition's seconds, in order.
        package var seconds: [Double]
        /// The engine's phases (strategies): each phase's seconds per repetition.
        package var phases: [String: [Double]]?
        package var ledgerPeakBytes: Int?
        package var predictedPeakBytes: Int?
        /// M_t at the case's dtype: what random init writes.
        package var modelBytes: Int?
        /// Peers: whether it ends with owned copies of the tensors (false: views of the mapped files).
        package var ownsCopies: Bool?
        /// Peers: the largest peak RSS of the peer's process over the rounds, interpreter included (VmHWM, reset
        /// after the levelling write where ``MemoryLeveling`` wrote one, else `ru_maxrss`).
        package var maxRSSBytes: Int?

        package var median: Double { LoadBenchmark.median(seconds) }
    }

    package struct Report: Codable, Sendable, Equatable {
        package var checkpoint: String
        /// The checkpoint's tensor bytes: every GB/s is these over a case's seconds.
        package var tensorBytes: Int
        package var files: Int
        package var repeats: Int
        package var warmupRounds: Int
        package var cores: Int
        package var cases: [Case]
        /// Why the peers are missing, when they are.
        package var peersSkipped: String?
        /// Peers this Python could not run (a package or option missing), each with why.
        package var peersUnavailable: [String: String]?
        package var cache: PageCacheMode = .warm
        package var peerVersions: [String: String]?
        /// Fresh memory of naive's peak (M_t + M_ck) written twice, before the rounds (``FirstTouchFloor``);
        /// nil when MemAvailable had no room for it.
        package var firstTouch: FirstTouchResult?
        /// This VM's free page reporting when it has it (read before the rounds); nil on a machine without it.
        package var freePageReporting: FreePageReporting?
        /// Bytes the kernel reported to the host from the first touch to the last round (`reported_kib`'s growth).
        package var reportedBytesDuringRun: Int?
        /// Whether every case was preceded by a write of fresh memory as large as its peak (``MemoryLeveling``).
        package var memoryLeveled: Bool?
    }

    package let options: Options

    package init(options: Options) { self.options = options }

    /// The strategies timed, with their target dtypes (nil: the checkpoint's).
    static let strategies: [(StrategyName, DType?)] = [
        (.naive, nil), (.sharded, nil), (.lowMemory, nil), (.dtypeDirect, .f16), (.loadThenCast, .f16), (.mmap, nil),
    ]

    package func run(progress: (String) -> Void = { _ in }) throws -> Report {
        let checkpoint = try Checkpoint(path: options.checkpoint)
        JemallocStats.returnFreedPagesAtOnce()
        progress("warming the page cache: \(ByteSize.decimal(checkpoint.totalSize)) in \(checkpoint.files.count) files")
        _ = try checkpoint.verify()
        let reporting = FreePageReporting.current()
        let firstTouch = try measureFirstTouch(checkpoint, progress: progress)
        let peers = options.peers ? PeerLoaders.find(python: options.python) : .skipped("--no-peers")
        var cases = ReadFloorCase.all.map {
            Case(name: $0.name, kind: .floor, description: $0.description, seconds: [])
        }
        cases += Self.strategies.map { name, dtype in
            Case(
                name: Self.caseName(name, dtype), kind: .strategy,
                description: name.strategy.formula, seconds: [], phases: [:])
        }
        if case .available(let found) = peers {
            cases += PeerLoaders.peers.map {
                var peer = Case(name: $0.name, kind: .peer, description: $0.description, seconds: [])
                peer.ownsCopies = $0.copies
                return peer
            }
            progress(
                "peers: \(found.python) (torch \(found.versions["torch"] ?? "?"), safetensors \(found.versions["safetensors"] ?? "?"))"
            )
        }
        cases = try Self.selected(cases, only: options.only)
        let leveling = reporting == nil ? nil : try MemoryLeveling(cases: cases, checkpoint: checkpoint)
        var unavailable: [String: String] = [:]
        for round in 0..<(options.warmupRounds + options.repeats) {
            let warmup = round < options.warmupRounds
            for index in cases.indices where unavailable[cases[index].name] == nil {
                progress(
                    warmup
                        ? "warm-up round (not counted): \(cases[index].name)"
                        : "round \(round - options.warmupRounds + 1)/\(options.repeats): \(cases[index].name)")
                if options.cache == .cold { for file in checkpoint.files { try PageCache.evict(path: file.path) } }
                if cases[index].kind != .peer { try leveling?.prepare(for: cases[index].name) }
                var item = cases[index]
                if let why = try measure(&item, checkpoint: checkpoint, peers: peers, leveling: leveling) {
                    unavailable[item.name] = why
                    progress("\(item.name): unavailable: \(why)")
                }
                if !warmup { cases[index] = item }
            }
        }
        cases.removeAll { unavailable[$0.name] != nil }
        var report = Report(
            checkpoint: options.checkpoint, tensorBytes: checkpoint.totalSize, files: checkpoint.files.count,
            repeats: options.repeats,
            warmupRounds: options.warmupRounds, cores: ProcessInfo.processInfo.activeProcessorCount, cases: cases)
        report.firstTouch = firstTouch
        report.cache = options.cache
        if !unavailable.isEmpty { report.peersUnavailable = unavailable }
        report.freePageReporting = reporting
        report.memoryLeveled = leveling != nil
        if let before = reporting?.reportedBytes, let after = FreePageReporting.current()?.reportedBytes {
            report.reportedBytesDuringRun = after - before
        }
        switch peers {
        case .available(let found): report.peerVersions = found.versions
        case .skipped(let why): report.peersSkipped = why
        }
        return report
    }

    /// A strategy's case name: the strategy, and "→dtype" when it converts.
    static func caseName(_ name: StrategyName, _ dtype: DType?) -> String {
        name.rawValue + (dtype.map { "→" + $0.torchName } ?? "")
    }

    /// The cases `only` names, in their usual order; every case when it is nil.
    static func selected(_ cases: [Case], only: [String]?) throws(UsageError) -> [Case] {
        guard let only else { return cases }
        let unknown = only.filter { name in !cases.contains { $0.name == name } }
        guard unknown.isEmpty else {
            throw UsageError(
                "--only \(unknown.joined(separator: ",")) names no case; the cases: "
                    + cases.map(\.name).joined(separator: ", "))
        }
        return cases.filter { only.contains($0.name) }
    }

    /// Fresh memory as much as naive holds at its peak, written twice (``FirstTouchFloor``), before the
    /// warm-up round so that the host's state it leaves falls on an uncounted round. Skipped (nil) when
    /// MemAvailable less 1 GiB has no room for it.
    private func measureFirstTouch(_ checkpoint: Checkpoint, progress: (String) -> Void) throws -> FirstTouchResult? {
        let plan = try LoadPlan(checkpoint: checkpoint, requested: nil)
        let bytes = StrategyName.naive.strategy.predictedPeakBytes(plan.figures)
        guard let available = SystemMemory.read().availableBytes, bytes <= available - (1 << 30) else { return nil }
        progress("first touch: \(ByteSize.decimal(bytes)) of fresh memory, twice")
        _ = JemallocStats.purgeAll()
        return try FirstTouchFloor.measure(bytes: bytes)
    }

    /// Times one case once; returns why a peer could not run, when it could not.
    private func measure(
        _ item: inout Case, checkpoint: Checkpoint, peers: PeerLoaders.Availability, leveling: MemoryLeveling?
    ) throws -> String? {
        switch item.kind {
        case .floor:
            guard let floor = ReadFloorCase.all.first(where: { $0.name == item.name }) else { return nil }
            do {
                item.seconds.append(try floor.measure(paths: checkpoint.files.map(\.path)).seconds)
            } catch let error as SystemCallError where floor.direct && error.errno == .invalidArgument {
                return "the file system does not support O_DIRECT (\(error))"
            }
        case .strategy:
            guard
                let (name, dtype) = Self.strategies.first(where: {
                    Self.caseName($0.0, $0.1) == item.name
                })
            else { return nil }
            try measureStrategy(name, dtype: dtype, into: &item, checkpoint: checkpoint)
        case .peer:
            guard case .available(let found) = peers else { return nil }
            switch try PeerLoaders.run(
                item.name, python: found.python, script: found.script, checkpoint: options.checkpoint,
                levelBytes: leveling?.bytes(for: item.name) ?? 0)
            {
            case .measured(let seconds, let rss):
                item.seconds.append(seconds)
                if let rss { item.maxRSSBytes = max(item.maxRSSBytes ?? 0, rss) }
            case .unavailable(let why):
                return why
            }
        }
        return nil
    }

    private func measureStrategy(_ name: StrategyName, dtype: DType?, into item: inout Case, checkpoint: Checkpoint)
        throws
    {
        _ = JemallocStats.purgeAll()
        let load = try InProcessLoad(checkpoint: checkpoint, dtype: dtype, strategy: name.strategy)
        let start = ContinuousClock.now
        let loaded = try load.run()
        item.seconds.append((ContinuousClock.now - start).inSeconds)
        withExtendedLifetime(loaded) {}
        for phase in load.phases.phases {
            // Per-shard phases ("read shard 2/4") add up under one name ("read shard").
            let key = phase.name.split(separator: " ").filter { !$0.contains("/") }.joined(separator: " ")
            var list = item.phases?[key] ?? []
            if list.count < item.seconds.count { list.append(0) }
            list[list.count - 1] += phase.endSeconds - phase.startSeconds
            item.phases?[key] = list
        }
        item.ledgerPeakBytes = load.ledger.peakBytes
        item.predictedPeakBytes = load.predictedPeakBytes
        item.modelBytes = load.plan.figures.modelBytes
    }

    package static func median(_ values: [Double]) -> Double {
        guard !values.isEmpty else { return 0 }
        let sorted = values.sorted()
        return sorted.count % 2 == 1
            ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }
}
