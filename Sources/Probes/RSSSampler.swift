import OSLayer
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// What the sampler thread itself cost.
package struct SamplerOverhead: Sendable, Equatable {
    /// Samples taken (stored plus dropped).
    package var sampleCount: Int
    /// The interval asked for, seconds.
    package var requestedIntervalSeconds: Double
    /// Mean wall time between consecutive samples, seconds (0 with fewer than two samples).
    package var meanIntervalSeconds: Double
    /// Mean wall time spent taking one sample (status read + jemalloc epoch and reads + context + store), seconds.
    package var meanSecondsPerSample: Double
    /// Longest wall time spent taking one sample, seconds.
    package var maxSecondsPerSample: Double
    /// CPU time of the sampler thread from start to stop (`clock_gettime(CLOCK_THREAD_CPUTIME_ID)`), seconds.
    package var threadCPUSeconds: Double
    /// Wall time from the first sample to the last, seconds.
    package var wallSeconds: Double
    /// Times a sample ended after the next one was due (the schedule then restarts from now; no catch-up burst).
    package var overrunCount: Int
    /// Samples taken on demand by ``RSSSampler/mark()`` (on the caller's thread, not the sampler's).
    package var markCount: Int = 0
    /// Wall time spent in those marks, seconds (their CPU falls on the caller, not on the sampler thread).
    package var markSeconds: Double = 0
}

/// Everything a stopped ``RSSSampler`` recorded.
package struct RSSSamplerResult: Sendable {
    /// The samples, oldest first (at most the sampler's capacity).
    package var samples: [MemorySample]
    /// Samples taken after the capacity was reached and therefore not stored.
    package var droppedSamples: Int
    /// Samples whose `/proc/<pid>/status` read failed (their kernel figures are absent).
    package var statusReadFailures: Int
    /// Whether jemalloc statistics were readable; when false no sample has `jemalloc*` figures.
    package var jemallocAvailable: Bool
    /// The sampler's own cost.
    package var overhead: SamplerOverhead

    /// The maximum of each figure over all stored samples.
    package var peaks: MemoryReading { RSSSampler.peaks(samples) }

    /// The samples reduced to at most `maxPoints`, keeping each bucket's maxima
    /// (see ``RSSSampler/downsample(_:toAtMost:)``).
    package func downsampled(toAtMost maxPoints: Int) -> [MemorySample] {
        RSSSampler.downsample(samples, toAtMost: maxPoints)
    }
}

/// Samples this process's memory on a dedicated thread (a `pthread`) every `interval` (default 20 ms, at most
/// 50 ms) from ``start()`` until ``stop()``, and once more at each ``mark()`` on the caller's thread.
///
/// Each sample: seconds since start (`CLOCK_MONOTONIC`), `VmRSS`/`RssAnon`/`RssFile` from `/proc/self/statm`, or
/// those and `VmHWM` from `/proc/<pid>/status` (one `pread` into a reused buffer), for this process jemalloc
/// `stats.allocated/active/resident/mapped/retained` after writing `epoch` (by MIB; every ``jemallocEvery``th
/// sample, carried between), and the two values the caller's context closure returns (ledger live bytes and
/// phase index; Probes knows nothing of the ledger). The closure runs on the sampler thread every interval, so
/// it must be cheap and thread-safe (an atomic load, say).
///
/// Samples go into an array written up front (`initialReserve`), growing up to `capacity` (default 2 million,
/// ~11 hours at 20 ms, 288 MB); beyond it samples are counted as dropped. The array is itself process memory
/// and shows in the RSS it samples (88 bytes per sample). The periodic samples miss spikes shorter than the
/// interval: a caller that knows when memory peaks calls ``mark()`` there; anything else is reconciled with
/// `VmHWM`.
///
/// Why 20 ms by default: under a load that saturates both cores' memory bandwidth, one wake-up and sample costs
/// 40–130 µs of CPU on this VM (cache-cold, not the ~20 µs of an idle wake-up), so 1 ms took 2–8% of a core
/// and 10 ms still up to 1.6%; 20 ms keeps it under 1%. The exact peaks come from the marks, not the period.
package final class RSSSampler: Sendable {
    /// Returns the caller's ledger live bytes (nil: no ledger) and current phase index (−1: none).
    package typealias Context = @Sendable () -> (ledgerLiveBytes: Int?, phase: Int)

    /// An interval or capacity the sampler cannot honour.
    package struct ConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
        package var message: String
        package var description: String { message }
    }

    /// The longest interval allowed: 50 ms.
    package static let maximumInterval: Duration = .milliseconds(50)
    /// The default interval: 20 ms (see the type's comment for why).
    package static let defaultInterval: Duration = .milliseconds(20)
    /// The default cap on stored samples.
    package static let defaultCapacity = 2_000_000

    /// Time between samples.
    package let interval: Duration
    /// The most samples stored.
    package let capacity: Int
    private let intervalNanoseconds: Int
    private let initialReserve: Int
    private let context: Context
    /// The sampled process; nil: this one.
    package let pid: pid_t?
    /// Every this many samples `smaps_rollup` is read too (its PSS carried forward between reads); 0: never.
    package let rollupEvery: Int
    /// How often the sampler thread refreshes jemalloc's statistics (carried between): every 250 ms whatever the
    /// interval. The `epoch` write merges every arena's statistics (~0.1 ms, and it waits on arena locks while
    /// the loader purges), so more often costs more than the rest of the sampling; the moments jemalloc peaks
    /// with the ledger are read fresh by ``mark()``, which is where an engine load's jemalloc peak comes from.
    package static let jemallocPeriodSeconds = 0.250
    /// Peak growth of owned memory between two marks taken by a load (the first free after the peak rose by
    /// this much): within the agreement tolerance's 32 MiB floor, and few enough marks (≤ 1 per 8 MiB of peak)
    /// to cost nothing measurable.
    package static let markPeakStepBytes = 8 << 20
    /// Every this many samples jemalloc's statistics are refreshed: 250 ms over the interval (12 at 20 ms).
    package var jemallocEvery: Int { Self.samples(every: Self.jemallocPeriodSeconds, at: interval) }
    /// How often a caller that wants PSS should read `smaps_rollup` (it walks every page table: milliseconds for
    /// a multi-GB process): every 100 ms.
    package static let rollupPeriodSeconds = 0.100

    /// The number of samples at `interval` closest to `seconds`, at least 1: a period as a sample count.
    package static func samples(every seconds: Double, at interval: Duration) -> Int {
        max(1, Int((seconds / interval.inSeconds).rounded()))
    }
    private let stopRequested = Atomic<Bool>(false)
    private let state = Mutex(State())
    /// Held for the whole of ``stop()``, so a second concurrent caller waits for the first to finish.
    private let stopLock = Mutex(())
    /// The readers ``mark()`` uses (its own: the sampler thread's are not shared), opened at the first mark.
    private let markProbes = Mutex<MarkProbes?>(nil)

    /// A status reader and jemalloc's MIBs for marks, taken on whatever thread calls ``mark()``.
    private struct MarkProbes {
        var reader: ProcessMemoryReader?
        var jemalloc: JemallocStats?

        init(pid: pid_t?) {
            reader = try? ProcessMemoryReader(pid: pid, source: pid == nil ? .statm : .status)
            jemalloc = pid == nil ? JemallocStats() : nil
        }

        func reading() -> MemoryReading? {
            guard let status = try? reader?.read() else { return nil }
            var reading = MemoryReading(status: status, rollup: nil)
            if let allocator = jemalloc?.read(refresh: true) { reading.add(jemalloc: allocator) }
            return reading
        }
    }

    private struct State {
        var samples: [MemorySample] = []
        var dropped = 0
        var statusReadFailures = 0
        var jemallocAvailable = false
        var thread: pthread_t? = nil
        var started = false
        var startSeconds = 0.0
        var sampleCount = 0
        var costSum = 0.0
        var costMax = 0.0
        var cpuSeconds = 0.0
        var firstSampleSeconds = 0.0
        var lastSampleSeconds = 0.0
        var overruns = 0
        var markCount = 0
        var markSeconds = 0.0
        var markedOutOfOrder = false
        var result: RSSSamplerResult? = nil
    }

    /// - Parameters:
    ///   - interval: time between samples; > 0 and ≤ 50 ms (default 20 ms).
    ///   - capacity: the most samples stored (default 2 million); later samples are counted as dropped.
    ///   - initialReserve: samples' storage written before sampling starts (default 65,536 ≈ 5.8 MB, 22 minutes
    ///     at 20 ms), so that the samples of a load fault in no page of their own and the array's growth stays
    ///     out of the load's deltas.
    ///   - pid: the process to sample; nil samples this one (and only then jemalloc's statistics, which exist
    ///     only inside the process that links it).
    ///   - context: returns the ledger's live bytes and the phase index, called once per sample on the sampler
    ///     thread.
    package init(
        interval: Duration = RSSSampler.defaultInterval,
        capacity: Int = RSSSampler.defaultCapacity,
        initialReserve: Int = 65_536,
        pid: pid_t? = nil,
        rollupEvery: Int = 0,
        context: @escaping Context = { (ledgerLiveBytes: nil, phase: -1) }
    ) throws(ConfigurationError) {
        guard interval > .zero, interval <= Self.maximumInterval else {
            throw ConfigurationError(message: "sampler interval must be > 0 and ≤ 50 ms, got \(interval)")
        }
        guard capacity >= 1 else { throw ConfigurationError(message: "sampler capacity must be ≥ 1, got \(capacity)") }
        self.interval = interval
        self.capacity = capacity
        self.initialReserve = max(1, min(initialReserve, capacity))
        self.context = context
        self.pid = pid
        self.rollupEvery = max(0, rollupEvery)
        let (seconds, attoseconds) = interval.components
        intervalNanoseconds = Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000)
    }

    /// The clock every sample's ``RSSSample/seconds`` is measured on: `clock_gettime(CLOCK_MONOTONIC)`, seconds.
    /// Callers timing their own events (phase boundaries) with it can subtract ``startSeconds`` to line them up
    /// with the samples.
    package static func monotonicSeconds() -> Double { MonotonicClock.monotonicSeconds() }

    /// The ``monotonicSeconds()`` reading taken in ``start()``: time zero of the samples (0 before start).
    package var startSeconds: Double { state.withLock { $0.startSeconds } }

    /// Starts the sampling thread (`pthread_create`); the first sample is taken at once. Calling it again has no
    /// effect. The thread holds a reference to the sampler until ``stop()``: always call `stop()`.
    package func start() throws(SystemCallError) {
        let reserve = initialReserve
        let alreadyStarted = state.withLock { state -> Bool in
            if state.started { return true }
            state.started = true
            state.startSeconds = MonotonicClock.monotonicSeconds()
            // Written once now, not reserved: a first touch of a page here can cost milliseconds (a VM that
            // backs guest memory lazily), and would otherwise fall inside a sample during the load.
            state.samples = Array(
                repeating: MemorySample(seconds: 0, reading: MemoryReading(), phase: -1), count: reserve)
            state.samples.removeAll(keepingCapacity: true)
            return false
        }
        if alreadyStarted { return }
        var thread = pthread_t()
        let retained = Unmanaged.passRetained(self).toOpaque()
        let status = pthread_create(
            &thread, nil,
            { raw in
                guard let raw else { return nil }
                let sampler = Unmanaged<RSSSampler>.fromOpaque(raw).takeRetainedValue()
                sampler.run()
                return nil
            }, retained)
        guard status == 0 else {
            Unmanaged<RSSSampler>.fromOpaque(retained).release()
            state.withLock { $0.started = false }
            throw SystemCallError(call: "pthread_create", subject: "RSSSampler", errno: .init(rawValue: status))
        }
        state.withLock { $0.thread = thread }
    }

    /// Stops sampling (after one last sample), joins the thread (`pthread_join`) and returns everything
    /// recorded. Later calls return the same result; a sampler never started returns an empty result.
    package func stop() -> RSSSamplerResult {
        stopLock.withLock { _ in stopAndCollect() }
    }

    private func stopAndCollect() -> RSSSamplerResult {
        stopRequested.store(true, ordering: .releasing)
        let thread = state.withLock { state -> pthread_t? in
            let thread = state.thread
            state.thread = nil
            return thread
        }
        if let thread { pthread_join(thread, nil) }
        let requested = interval.inSeconds
        return state.withLock { state in
            if let result = state.result { return result }
            let count = state.sampleCount
            let overhead = SamplerOverhead(
                sampleCount: count,
                requestedIntervalSeconds: requested,
                meanIntervalSeconds: count > 1
                    ? (state.lastSampleSeconds - state.firstSampleSeconds) / Double(count - 1) : 0,
                meanSecondsPerSample: count > 0 ? state.costSum / Double(count) : 0,
                maxSecondsPerSample: state.costMax,
                threadCPUSeconds: state.cpuSeconds,
                wallSeconds: state.lastSampleSeconds - state.firstSampleSeconds,
                overrunCount: state.overruns, markCount: state.markCount, markSeconds: state.markSeconds
            )
            // A mark taken on another thread may land a few microseconds before a sample already stored.
            if state.markedOutOfOrder { state.samples.sort { $0.seconds < $1.seconds } }
            let result = RSSSamplerResult(
                samples: state.samples, droppedSamples: state.dropped,
                statusReadFailures: state.statusReadFailures, jemallocAvailable: state.jemallocAvailable,
                overhead: overhead
            )
            state.result = result
            state.samples = []
            return result
        }
    }

    /// Takes one sample now, on the calling thread, with jemalloc's statistics refreshed: for the moments the
    /// caller knows memory is at a local peak (a phase boundary, the first free after the ledger's peak rose),
    /// which the periodic samples can miss by up to an interval. PSS is carried from the latest sample (the
    /// rollup is too costly to read on the caller's thread). Does nothing before ``start()`` or after ``stop()``.
    package func mark() {
        let begin = MonotonicClock.monotonicSeconds()
        guard let startSeconds = state.withLock({ $0.started && $0.result == nil ? $0.startSeconds : nil }) else {
            return
        }
        let reading = markProbes.withLock { probes -> MemoryReading? in
            if probes == nil { probes = MarkProbes(pid: pid) }
            return probes?.reading()
        }
        let (ledger, phase) = context()
        let cost = MonotonicClock.monotonicSeconds() - begin
        let capacity = self.capacity
        state.withLock { state in
            state.markCount += 1
            state.markSeconds += cost
            guard var reading, state.result == nil else { return }
            reading[.ledgerLive] = ledger
            if let last = state.samples.last {
                for figure: MemoryFigure in [.pss, .pssAnon, .pssFile] where reading[figure] == nil {
                    reading[figure] = last.reading[figure]
                }
                if last.seconds > begin - startSeconds { state.markedOutOfOrder = true }
            }
            let sample = MemorySample(seconds: begin - startSeconds, reading: reading, phase: phase)
            if state.samples.count < capacity { state.samples.append(sample) } else { state.dropped += 1 }
        }
    }

    /// The most recent sample, if any (for live progress displays and watchdogs).
    package var latestSample: MemorySample? { state.withLock { $0.samples.last } }

    /// The sampler thread's running totals, written to the shared state once when it stops.
    private struct Tally {
        var count = 0
        var costSum = 0.0
        var costMax = 0.0
        var firstSeconds = 0.0
        var lastSeconds = 0.0
        var overruns = 0
        var failures = 0

        mutating func record(seconds: Double, cost: Double) {
            if count == 0 { firstSeconds = seconds }
            lastSeconds = seconds
            count += 1
            costSum += cost
            costMax = max(costMax, cost)
        }
    }

    /// One sample: the status file, jemalloc (this process only), the rollup's PSS when due, the caller's context.
    private func takeSample(
        at seconds: Double, reader: ProcessMemoryReader?, jemalloc: JemallocStats?, rollup: inout SmapsRollup?,
        lastJemalloc: inout JemallocGlobalStats?, index: Int
    ) -> MemorySample? {
        guard let status = try? reader?.read() else { return nil }
        if rollupEvery > 0 && index % rollupEvery == 0 { rollup = (try? ProcessMemory.smapsRollup(pid: pid)) ?? rollup }
        var reading = MemoryReading(status: status, rollup: rollup)
        // jemalloc's `epoch` merges every arena's statistics: every `jemallocEvery`th sample (250 ms), carried
        // between; the marks read it fresh where it peaks.
        if index % jemallocEvery == 0, let allocator = jemalloc?.read(refresh: true) { lastJemalloc = allocator }
        if let allocator = lastJemalloc { reading.add(jemalloc: allocator) }
        let (ledger, phase) = context()
        reading[.ledgerLive] = ledger
        return MemorySample(seconds: seconds, reading: reading, phase: phase)
    }

    private func store(_ sample: MemorySample) {
        let capacity = self.capacity
        state.withLock { state in
            if state.samples.count < capacity { state.samples.append(sample) } else { state.dropped += 1 }
        }
    }

    /// The sampling loop, on the sampler thread.
    private func run() {
        let cpuStart = MonotonicClock.threadCPUSeconds()
        // In this process, statm, not status: the same counters at a fifth of the cost, on the measured process's
        // own cores (its VmHWM is read at the marks instead). Another process is sampled from status: a loader
        // that does not speak the protocol has no marks, so its sampled VmHWM is the only high-water mark there
        // is, and the cost falls on the parent, not on the process measured.
        let reader = try? ProcessMemoryReader(pid: pid, source: pid == nil ? .statm : .status)
        let jemalloc = pid == nil ? JemallocStats() : nil
        let startSeconds = state.withLock { state in
            state.jemallocAvailable = jemalloc != nil
            return state.startSeconds
        }
        var deadline = MonotonicClock.monotonicTimespec()
        var tally = Tally()
        var rollup: SmapsRollup?
        var lastJemalloc: JemallocGlobalStats?
        while true {
            let stopping = stopRequested.load(ordering: .acquiring)
            let begin = MonotonicClock.monotonicSeconds()
            if let sample = takeSample(
                at: begin - startSeconds, reader: reader, jemalloc: jemalloc, rollup: &rollup,
                lastJemalloc: &lastJemalloc, index: tally.count)
            {
                store(sample)
            } else {
                tally.failures += 1
            }
            tally.record(seconds: begin - startSeconds, cost: MonotonicClock.monotonicSeconds() - begin)
            if stopping { break }
            deadline = MonotonicClock.adding(intervalNanoseconds, to: deadline)
            let now = MonotonicClock.monotonicTimespec()
            if MonotonicClock.isBefore(deadline, now) {
                tally.overruns += 1
                deadline = now
            }
            MonotonicClock.sleep(until: deadline)
        }
        let cpuSeconds = MonotonicClock.threadCPUSeconds() - cpuStart
        state.withLock { state in
            state.sampleCount = tally.count
            state.costSum = tally.costSum
            state.costMax = tally.costMax
            state.cpuSeconds = cpuSeconds
            state.firstSampleSeconds = tally.firstSeconds
            state.lastSampleSeconds = tally.lastSeconds
            state.overruns = tally.overruns
            state.statusReadFailures = tally.failures
        }
    }
}
