import Checkpoint
import Foundation
import Loading
import OSLayer
import Probes
import ResultsFormat
import Synchronization
import TensorEngine

/// One strategy run inside this process with every probe on: the code the measured child executes.
///
/// Order matters: the sampler starts first (its thread and sample storage belong to the baseline), jemalloc
/// is purged and VmHWM reset, the baseline is read, the caller is told (``ready``) and may hold the start
/// (the barrier of several ranks), and only then does the load begin. The model stays alive until the end
/// reading has been taken.
package struct MeasuredLoad {
    package let checkpointPath: String
    package let strategy: any LoadStrategy
    package let dtype: DType?
    package let sampleInterval: Duration
    /// The ledger's RAM cap (nil: none). Exceeding it ends the load as `oom`.
    package let ledgerBudget: Int?
    /// Receives phase transitions as they happen (the child's event stream).
    package let onPhase: @Sendable (PhaseLog.Transition) -> Void
    /// Called once the baseline is taken; returns when the load may begin.
    package let ready: () throws -> Void
    /// Sample PSS too (`smaps_rollup` every tenth sample): a rank of a multi-rank run, whose Σ PSS is summed.
    package var samplePss = false
    /// The parent's prediction of this run (nil: predicted here from the plan, as `load` does on its own).
    package var prediction: ChildPrediction?
    /// Called with the measurement while the model is still alive (a rank holds its model until every rank
    /// has loaded, so the machine's Σ is of all models at once).
    package var hold: (RunMeasurement) throws -> Void = { _ in }

    package init(
        checkpointPath: String, strategy: any LoadStrategy, dtype: DType?,
        sampleInterval: Duration = RSSSampler.defaultInterval, ledgerBudget: Int? = nil,
        onPhase: @escaping @Sendable (PhaseLog.Transition) -> Void = { _ in }, ready: @escaping () throws -> Void = {}
    ) {
        self.checkpointPath = checkpointPath
        self.strategy = strategy
        self.dtype = dtype
        self.sampleInterval = sampleInterval
        self.ledgerBudget = ledgerBudget
        self.onPhase = onPhase
        self.ready = ready
    }

    /// What the load left: the model (alive until the end reading), or why there is none.
    struct LoadOutcome {
        var model: LoadedModel?
        var devices: DeviceUsage?
        var outOfMemory: OutOfMemoryInfo?
        var failure: String?
        var seconds: Double = 0
    }

    /// Runs the load. Throws only when it cannot start (bad checkpoint, bad dtype); failures during the load
    /// (out of memory, I/O) are recorded in the measurement.
    package func run() throws -> RunMeasurement {
        let checkpoint = try Checkpoint(path: checkpointPath)
        let ledger = MemoryLedger()
        if let ledgerBudget { ledger.setTotalBudget(ledgerBudget) }
        let marks = SamplerMarks()
        let onPhase = self.onPhase
        let phases = PhaseLog(ledger: ledger) { transition in
            marks.mark()
            onPhase(transition)
        }
        // A device-map run is placed now (before the baseline), so its prediction is exact per device.
        let inProcess = try InProcessLoad(
            checkpoint: checkpoint, dtype: dtype, strategy: strategy, ledger: ledger, phases: phases)
        let plan = inProcess.plan
        let sampler = try RSSSampler(
            interval: sampleInterval,
            rollupEvery: samplePss ? RSSSampler.samples(every: RSSSampler.rollupPeriodSeconds, at: sampleInterval) : 0
        ) {
            (ledgerLiveBytes: ledger.liveBytes, phase: phases.currentPhaseIndex)
        }
        try sampler.start()
        marks.attach(sampler)
        ledger.observePeaks(stepBytes: RSSSampler.markPeakStepBytes) { marks.mark() }
        defer { ledger.observePeaks(stepBytes: RSSSampler.markPeakStepBytes, nil) }
        let baseline = Self.settledBaseline(ledger: ledger, rollup: samplePss)
        let phaseOffset = RSSSampler.monotonicSeconds() - sampler.startSeconds - phases.elapsedSeconds
        try ready()

        var outcome = load(inProcess)
        Thread.sleep(forTimeInterval: 0.005)
        let sampled = sampler.stop()
        let end = Self.reading(ledger: ledger, rollup: true)
        let measurement = RunMeasurement(
            strategy: strategy.name, dtype: plan.dtype, dtypeSource: plan.dtypeSource, figures: plan.figures,
            formula: prediction?.formula ?? strategy.formula,
            predictedPeakBytes: prediction?.predictedPeakBytes ?? inProcess.predictedPeakBytes,
            seconds: outcome.seconds, baseline: baseline, end: end,
            peaks: Self.peaks(sampled: sampled, end: end, baseline: baseline, ledger: ledger),
            phases: phases.phases.map {
                PhaseRecord(
                    name: $0.name, startSeconds: $0.startSeconds + phaseOffset, endSeconds: $0.endSeconds + phaseOffset,
                    ledgerLiveBytesAtStart: $0.ledgerLiveBytesAtStart, ledgerLiveBytesAtEnd: $0.ledgerLiveBytesAtEnd)
            },
            sampler: SamplerStats(sampled, loadSeconds: outcome.seconds),
            timeline: ProcessTimeline(
                samples: sampled.samples, baseline: baseline,
                columns: ProcessTimeline.engineColumns + (samplePss ? ProcessTimeline.pssColumns : [])),
            missingKeys: plan.missingKeys, unexpectedKeys: plan.unexpectedKeys, outOfMemory: outcome.outOfMemory,
            failure: outcome.failure, timelineOriginSeconds: sampler.startSeconds,
            loader: .engine(
                .init(
                    ledgerPeakBytes: ledger.peakBytes, devices: outcome.devices,
                    mappedBytes: strategy.name == .mmap ? outcome.model?.mappedBytes : nil)))
        try hold(measurement)
        withExtendedLifetime(outcome.model) {}
        outcome.model = nil
        return measurement
    }

    /// Loads, turning a cap that was hit into `outOfMemory` and any other failure into `failure`.
    func load(_ inProcess: InProcessLoad) -> LoadOutcome {
        let (ledger, phases) = (inProcess.ledger, inProcess.phases)
        var outcome = LoadOutcome()
        let start = ContinuousClock.now
        do {
            let loaded = try inProcess.run()
            outcome.model = loaded.model
            outcome.devices = loaded.placement.map(DeviceUsage.init)
        } catch let error as OutOfMemoryError {
            phases.end()
            outcome.outOfMemory = OutOfMemoryInfo(
                capBytes: error.budgetBytes, reachedBytes: error.liveBytes, requestedBytes: error.requestedBytes,
                message: error.description)
        } catch let error as AllocationFailure {
            phases.end()
            outcome.outOfMemory = OutOfMemoryInfo(
                capBytes: ledgerBudget ?? 0, reachedBytes: ledger.liveBytes, requestedBytes: error.requestedBytes,
                message: error.description)
        } catch {
            phases.end()
            outcome.failure = "\(error)"
        }
        outcome.seconds = (ContinuousClock.now - start).inSeconds
        return outcome
    }

    /// Purges jemalloc, resets VmHWM, gives the sampler a couple of intervals on the settled process, reads.
    static func settledBaseline(ledger: MemoryLedger, rollup: Bool = false) -> MemoryReading {
        _ = JemallocStats.flushThreadCache()
        _ = JemallocStats.purgeAll()
        _ = ProcessMemory.resetPeakRSS()
        Thread.sleep(forTimeInterval: 0.01)
        return reading(ledger: ledger, rollup: rollup)
    }

    /// Every probe read once: the status file, jemalloc, the ledger, and with `rollup` smaps_rollup's PSS.
    static func reading(ledger: MemoryLedger, rollup: Bool) -> MemoryReading {
        let status = (try? ProcessMemory.read()) ?? ProcessMemory()
        var reading = MemoryReading(status: status, rollup: rollup ? try? ProcessMemory.smapsRollup() : nil)
        if let stats = JemallocStats()?.read(refresh: true) { reading.add(jemalloc: stats) }
        reading[.ledgerLive] = ledger.liveBytes
        return reading
    }

    /// The peaks as deltas over the baseline: each sampled figure's maximum (the sampler's, over every sample
    /// it took, or the end reading, if higher), VmHWM at the end against the baseline VmRSS, the ledger's exact peaks.
    static func peaks(sampled: RSSSamplerResult, end: MemoryReading, baseline: MemoryReading, ledger: MemoryLedger)
        -> PeakDeltas
    {
        // The sampler's peaks already cover every sample it took (stored or not).
        let series = MemorySeries(baseline: baseline, samples: [], marks: [sampled.peaks, end])
        var peaks = PeakDeltas(series, figures: PeakDeltas.engineFigures)
        peaks[.ledgerLive] = ledger.peakBytes - (baseline[.ledgerLive] ?? 0)
        peaks[.ledgerSizeClass] = ledger.allocatorFigures.peakBytes
        return peaks
    }
}

/// Where the load tells the sampler that memory stands at a local peak: every phase transition and the first
/// free after the ledger's peak rose by ``RSSSampler/markPeakStepBytes`` (``MemoryLedger/observePeaks(stepBytes:_:)``). Each
/// mark is one reading on the loading thread with jemalloc refreshed (~0.1 ms), so the sampled peaks of RSS
/// and jemalloc include the moments the ledger peaks whatever the sampling interval, and the periodic sampler
/// can run at a period whose wake-ups cost under 1% of a core.
package final class SamplerMarks: Sendable {
    private let sampler = Mutex<RSSSampler?>(nil)

    func attach(_ sampler: RSSSampler) { self.sampler.withLock { $0 = sampler } }

    func mark() { sampler.withLock { $0 }?.mark() }
}
