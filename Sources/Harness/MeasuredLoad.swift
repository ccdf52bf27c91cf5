import Checkpoint
import Foundation
import Loading
import Probes
import TensorEngine

/// One strategy run inside this process with every probe on: the code the measured child executes.
///
/// Order matters: the sampler starts first (its thread and sample storage belong to the baseline), jemalloc
/// is purged and VmHWM reset, the baseline is read, and only then does the load begin. The model stays alive
/// until the end snapshot has been read.
public struct MeasuredLoad {
    public let checkpointPath: String
    public let strategy: any LoadStrategy
    public let dtype: DType?
    public let sampleInterval: Duration
    /// The ledger's RAM cap (nil: none). Exceeding it ends the load as `oom`.
    public let ledgerBudget: Int?
    /// Receives phase changes (for progress lines).
    public let onPhase: @Sendable (String, Int) -> Void

    public init(
        checkpointPath: String, strategy: any LoadStrategy, dtype: DType?, sampleInterval: Duration = .milliseconds(1), ledgerBudget: Int? = nil,
        onPhase: @escaping @Sendable (String, Int) -> Void = { _, _ in }
    ) {
        self.checkpointPath = checkpointPath
        self.strategy = strategy
        self.dtype = dtype
        self.sampleInterval = sampleInterval
        self.ledgerBudget = ledgerBudget
        self.onPhase = onPhase
    }

    /// Runs the load. Throws only when it cannot start (bad checkpoint, bad dtype); failures during the load
    /// (out of memory, I/O) are recorded in the measurement.
    public func run() throws -> RunMeasurement {
        let checkpoint = try Checkpoint(path: checkpointPath)
        let plan = try LoadPlan(checkpoint: checkpoint, requested: dtype)
        let figures = plan.figures
        // A device-map run is placed now (before the baseline), so its prediction is exact per device.
        let prepared = try (strategy as? DeviceMapLoad)?.prepare(plan)
        let predicted = prepared?.prediction.ramPeakBytes ?? strategy.predictedPeakBytes(figures)
        let ledger = MemoryLedger()
        if let ledgerBudget { ledger.setTotalBudget(ledgerBudget) }

        let phases = PhaseLog(ledger: ledger)
        let sampler = try RSSSampler(interval: sampleInterval) { (ledgerLiveBytes: ledger.liveBytes, phase: phases.currentPhaseIndex) }
        try sampler.start()
        _ = JemallocStats.flushThreadCache()
        _ = JemallocStats.purgeAll()
        _ = ProcessMemory.resetPeakRSS()
        // Give the sampler a couple of intervals on the settled baseline.
        Thread.sleep(forTimeInterval: 0.01)
        let jemalloc = JemallocStats()
        let baseline = Self.snapshot(jemalloc: jemalloc, ledger: ledger, rollup: false)
        let phaseOffset = RSSSampler.monotonicSeconds() - sampler.startSeconds - phases.elapsedSeconds

        var model: LoadedModel?
        var devices: DeviceUsage?
        var outOfMemory: OutOfMemoryInfo?
        var failure: String?
        let watcher = PhaseWatcher(phases: phases, ledger: ledger, onPhase: onPhase)
        watcher.start()
        let start = ContinuousClock.now
        do {
            if let prepared {
                let result = try prepared.loadReporting(plan, ledger: ledger, phases: phases)
                model = result.model
                devices = DeviceUsage(result.report)
            } else {
                model = try strategy.load(plan, ledger: ledger, phases: phases)
            }
        } catch let error as OutOfMemoryError {
            phases.end()
            outOfMemory = OutOfMemoryInfo(
                capBytes: error.budgetBytes, reachedBytes: error.liveBytes, requestedBytes: error.requestedBytes, message: error.description)
        } catch let error as AllocationFailure {
            phases.end()
            let live = ledger.liveBytes
            outOfMemory = OutOfMemoryInfo(capBytes: ledgerBudget ?? 0, reachedBytes: live, requestedBytes: error.requestedBytes, message: error.description)
        } catch {
            phases.end()
            failure = "\(error)"
        }
        let seconds = (ContinuousClock.now - start).inSeconds
        watcher.stop()
        Thread.sleep(forTimeInterval: 0.005)
        let sampled = sampler.stop()
        let end = Self.snapshot(jemalloc: jemalloc, ledger: ledger, rollup: true)
        withExtendedLifetime(model) {}
        model = nil

        let peaks = sampled.peaks
        let deltas = PeakDeltas(
            vmhwmDeltaBytes: end.vmhwmBytes.map { $0 - baseline.rssBytes },
            rssDeltaBytes: max(peaks.vmRSSBytes, end.rssBytes) - baseline.rssBytes,
            rssAnonDeltaBytes: max(peaks.rssAnonBytes, end.rssAnonBytes) - baseline.rssAnonBytes,
            rssFileDeltaBytes: max(peaks.rssFileBytes, end.rssFileBytes) - baseline.rssFileBytes,
            jemallocAllocatedDeltaBytes: max(peaks.jemallocAllocatedBytes, end.jemallocAllocatedBytes) - baseline.jemallocAllocatedBytes,
            jemallocActiveDeltaBytes: max(peaks.jemallocActiveBytes, end.jemallocActiveBytes) - baseline.jemallocActiveBytes,
            jemallocResidentDeltaBytes: max(peaks.jemallocResidentBytes, end.jemallocResidentBytes) - baseline.jemallocResidentBytes,
            ledgerDeltaBytes: ledger.peakBytes - baseline.ledgerLiveBytes,
            ledgerSizeClassDeltaBytes: ledger.allocatorFigures.peakBytes)
        let overhead = sampled.overhead
        let samplerStats = SamplerStats(
            requestedIntervalSeconds: overhead.requestedIntervalSeconds, achievedMeanIntervalSeconds: overhead.meanIntervalSeconds,
            samples: overhead.sampleCount, droppedSamples: sampled.droppedSamples, meanSampleSeconds: overhead.meanSecondsPerSample,
            maxSampleSeconds: overhead.maxSecondsPerSample, cpuSeconds: overhead.threadCPUSeconds,
            cpuShareOfLoad: seconds > 0 ? overhead.threadCPUSeconds / max(seconds, overhead.wallSeconds) : 0)
        let points = sampled.downsampled(toAtMost: 2000).map { s -> [Double] in
            [
                s.seconds, Double(s.vmRSSBytes - baseline.rssBytes), Double(s.rssAnonBytes - baseline.rssAnonBytes),
                Double(s.rssFileBytes - baseline.rssFileBytes), Double(s.jemallocAllocatedBytes - baseline.jemallocAllocatedBytes),
                Double(s.jemallocActiveBytes - baseline.jemallocActiveBytes), Double(s.jemallocResidentBytes - baseline.jemallocResidentBytes),
                Double(s.ledgerLiveBytes), Double(s.phase),
            ]
        }
        return RunMeasurement(
            strategy: strategy.name.rawValue, dtype: plan.dtype.torchName, dtypeSource: plan.dtypeSource, figures: figures,
            formula: strategy.formula, predictedPeakBytes: predicted, ledgerPeakBytes: ledger.peakBytes, seconds: seconds,
            baseline: baseline, end: end, peaks: deltas,
            phases: phases.phases.map {
                PhaseRecord(
                    name: $0.name, startSeconds: $0.startSeconds + phaseOffset, endSeconds: $0.endSeconds + phaseOffset,
                    ledgerLiveBytesAtStart: $0.ledgerLiveBytesAtStart, ledgerLiveBytesAtEnd: $0.ledgerLiveBytesAtEnd)
            },
            sampler: samplerStats, timeline: Timeline(columns: Timeline.standardColumns, points: points),
            missingKeys: plan.missingKeys, unexpectedKeys: plan.unexpectedKeys, outOfMemory: outOfMemory, failure: failure, devices: devices)
    }

    /// Every probe read once.
    static func snapshot(jemalloc: JemallocStats?, ledger: MemoryLedger, rollup: Bool) -> MemorySnapshot {
        let status = (try? ProcessMemory.read()) ?? ProcessMemory()
        let je = jemalloc?.read(refresh: true)
        let smaps = rollup ? try? ProcessMemory.smapsRollup() : nil
        return MemorySnapshot(
            rssBytes: status.vmRSSBytes ?? 0, rssAnonBytes: status.rssAnonBytes ?? 0, rssFileBytes: status.rssFileBytes ?? 0,
            vmhwmBytes: status.vmHWMBytes, pssBytes: smaps?.pssBytes, pssAnonBytes: smaps?.pssAnonBytes, pssFileBytes: smaps?.pssFileBytes,
            jemallocAllocatedBytes: je?.allocatedBytes ?? 0, jemallocActiveBytes: je?.activeBytes ?? 0, jemallocResidentBytes: je?.residentBytes ?? 0,
            jemallocMappedBytes: je?.mappedBytes ?? 0, jemallocRetainedBytes: je?.retainedBytes ?? 0, ledgerLiveBytes: ledger.liveBytes)
    }
}

/// Reports phase changes as they happen, from a small polling thread (the strategies know nothing of it).
final class PhaseWatcher: @unchecked Sendable {
    private let phases: PhaseLog
    private let ledger: MemoryLedger
    private let onPhase: @Sendable (String, Int) -> Void
    private let stopped = Mutex(false)
    private var thread: Thread?

    init(phases: PhaseLog, ledger: MemoryLedger, onPhase: @escaping @Sendable (String, Int) -> Void) {
        self.phases = phases
        self.ledger = ledger
        self.onPhase = onPhase
    }

    func start() {
        let thread = Thread { [self] in
            var last = -2
            while !stopped.withLock({ $0 }) {
                let index = phases.currentPhaseIndex
                if index != last, index >= 0 {
                    last = index
                    let names = phases.phaseNames
                    if index < names.count { onPhase(names[index], ledger.liveBytes) }
                }
                Thread.sleep(forTimeInterval: 0.02)
            }
        }
        self.thread = thread
        thread.start()
    }

    func stop() {
        stopped.withLock { $0 = true }
    }
}

import Synchronization
