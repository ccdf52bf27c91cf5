import Foundation
import Probes
import ResultsFormat
import Synchronization

/// Measures a child from outside, as the parent can for any process: `/proc/<pid>/status` sampled every
/// interval (VmRSS, RssAnon, RssFile, VmHWM), `smaps_rollup` (PSS) read at each mark, VmHWM reset with
/// `clear_refs` at the baseline. Marks come from the child's events when it speaks the protocol — `ready`
/// (the baseline, after its imports), `loaded` (end of load), `result` (after the touch, the final reading
/// taken while the child waits for `exit`) — and otherwise from the process itself: the first sample after
/// exec is the baseline and the last sample before it exits the final reading.
package final class ExternalProbe {
    /// What the probe saw, for the judge.
    package struct Observation: Sendable {
        var baseline: MemoryReading
        /// Seconds (sampler clock) of the baseline; samples before it belong to start-up.
        var baselineSeconds: Double
        var endOfLoad: MemoryReading?
        var endOfLoadSeconds: Double?
        var final: MemoryReading?
        var finalSeconds: Double?
        /// Phases by the sampler's clock (the parent stamps each event as it arrives).
        var phases: [PhaseRecord]
        var sampled: RSSSamplerResult
        /// True when the baseline and marks came from the protocol's events.
        var marked: Bool
        /// `CLOCK_MONOTONIC` at the samples' zero.
        var originSeconds: Double = 0
    }

    let pid: pid_t
    let sampler: RSSSampler
    /// The checkpoint's files as /proc names them, to tell their pages from the loader's code in RssFile.
    let checkpointFiles: Set<String>
    private let phase = PhaseIndex()
    private(set) var baseline: MemoryReading?
    private var baselineSeconds = 0.0
    private var endOfLoad: (MemoryReading, Double)?
    private var final: (MemoryReading, Double)?
    private var phases: [PhaseRecord] = []
    private var openPhase: (name: String, start: Double)?
    private var marked = false

    init(pid: pid_t, interval: Duration, checkpointFiles: [String], samplePss: Bool = false) throws {
        self.pid = pid
        self.checkpointFiles = Set(checkpointFiles.map(MappedFiles.canonicalPath))
        let phase = self.phase
        sampler = try RSSSampler(
            interval: interval, pid: pid,
            rollupEvery: samplePss ? RSSSampler.samples(every: RSSSampler.rollupPeriodSeconds, at: interval) : 0
        ) {
            (ledgerLiveBytes: nil, phase: phase.value.load(ordering: .relaxed))
        }
    }

    deinit { _ = sampler.stop() }

    func start() throws {
        try sampler.start()
        // Until the child says it is ready, the process as exec left it is the baseline.
        baseline = reading(rollup: false)
    }

    var now: Double { RSSSampler.monotonicSeconds() - sampler.startSeconds }

    /// `status` of the child, read now; at a mark also `smaps_rollup` and the checkpoint's share of RssFile.
    func reading(rollup: Bool) -> MemoryReading {
        guard let status = try? ProcessMemory.read(pid: pid) else { return MemoryReading() }
        var reading = MemoryReading(status: status, rollup: rollup ? try? ProcessMemory.smapsRollup(pid: pid) : nil)
        if rollup { reading[.rssFileCheckpoint] = MappedFiles.residentBytes(pid: pid, of: checkpointFiles) }
        return reading
    }

    /// At `ready`: VmHWM reset, then the baseline.
    func takeBaseline() {
        ProcessMemory.resetPeakRSS(pid: pid)
        baselineSeconds = now
        baseline = reading(rollup: true)
        marked = true
    }

    func markLoaded() { endOfLoad = (reading(rollup: true), now) }

    func markFinal() { final = (reading(rollup: true), now) }

    func phaseBegan(_ name: String) {
        closePhase()
        openPhase = (name, now)
        phase.value.store(phases.count, ordering: .relaxed)
    }

    func phaseEnded(_ name: String) {
        if openPhase?.name == name { closePhase() }
    }

    private func closePhase() {
        guard let open = openPhase else { return }
        phases.append(
            PhaseRecord(
                name: open.name, startSeconds: open.start, endSeconds: now, ledgerLiveBytesAtStart: nil,
                ledgerLiveBytesAtEnd: nil))
        openPhase = nil
        phase.value.store(-1, ordering: .relaxed)
    }

    /// The latest RssAnon sampled, for the memory cap: anonymous memory is what the kernel cannot reclaim
    /// (mapped checkpoint pages are clean page cache it can drop).
    var latestAnonymous: Int? { sampler.latestSample?.reading[.rssAnon] }

    /// Stops sampling (the child has exited or is about to) and returns what was seen.
    func finish() -> Observation {
        closePhase()
        let sampled = sampler.stop()
        // A process that has exited but is not yet reaped has a status with no Vm* lines: not a reading.
        let last = sampled.samples.last { $0.reading[.rss] != nil }.map { ($0.reading, $0.seconds) }
        return Observation(
            baseline: baseline ?? sampled.samples.first?.reading ?? MemoryReading(), baselineSeconds: baselineSeconds,
            endOfLoad: endOfLoad?.0, endOfLoadSeconds: endOfLoad?.1, final: final?.0 ?? last?.0,
            finalSeconds: final?.1 ?? last?.1,
            phases: phases, sampled: sampled, marked: marked, originSeconds: sampler.startSeconds)
    }
}

/// The phase under way, read by the sampler thread.
final class PhaseIndex: Sendable {
    let value = Atomic<Int>(-1)
}
