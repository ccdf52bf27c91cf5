import Foundation
import OSLayer
import Probes
import ResultsFormat

/// Samples the machine while the ranks of a run load: each rank's `/proc/<pid>/status` every sample and its
/// `smaps_rollup` every other one, `/proc/meminfo` and the cgroup. Driven by the child runner's loop (every 10 ms
/// while ranks run), so the Σ of a sample is of readings taken together.
final class MachineProbe {
    static let interval = 0.01
    private let cgroup = CgroupMemory.current()
    private var pids: [pid_t] = []
    private var start = 0.0
    private var lastPss: [Int: (Int?, Int?, Int?)] = [:]
    private(set) var samples: [MachineSample] = []
    private(set) var baseline: MachineReading?
    /// The sample taken when every rank held its model.
    private var held: MachineReading?
    private var count = 0

    /// At the start barrier: the ranks' pids, and the baseline.
    func begin(pids: [pid_t]) {
        self.pids = pids
        start = MonotonicClock.monotonicSeconds()
        sample()
        baseline = samples.last?.reading
    }

    var started: Bool { baseline != nil }

    /// One sample; `smaps_rollup` every other one, and always when `rollup` (the moment every rank holds its
    /// model, before the parent lets them exit).
    func sample(rollup: Bool = false) {
        var reading = MachineReading()
        var perRank: [Int?] = []
        let withRollup = rollup || count % 2 == 0
        count += 1
        var anon = 0
        var rss = 0
        var file = 0
        var pss = 0
        var pssAnon = 0
        var pssFile = 0
        for (index, pid) in pids.enumerated() {
            let status = try? ProcessMemory.read(pid: pid)
            perRank.append(status?.vmRSSBytes)
            anon += status?.rssAnonBytes ?? 0
            rss += status?.vmRSSBytes ?? 0
            file += status?.rssFileBytes ?? 0
            if withRollup, let rollup = try? ProcessMemory.smapsRollup(pid: pid) {
                lastPss[index] = (rollup.pssBytes, rollup.pssAnonBytes, rollup.pssFileBytes)
            }
            if status == nil { lastPss[index] = nil }
            pss += lastPss[index]?.0 ?? 0
            pssAnon += lastPss[index]?.1 ?? 0
            pssFile += lastPss[index]?.2 ?? 0
        }
        reading[.sumRssAnon] = anon
        reading[.sumRss] = rss
        reading[.sumRssFile] = file
        reading[.sumPss] = pss
        reading[.sumPssAnon] = pssAnon
        reading[.sumPssFile] = pssFile
        let memory = SystemMemory.read()
        reading[.memAvailable] = memory.availableBytes
        reading[.cached] = memory.cachedBytes
        reading[.cgroupUsage] = cgroup?.refreshed().usageBytes
        samples.append(
            MachineSample(seconds: MonotonicClock.monotonicSeconds() - start, reading: reading, ranks: perRank))
        if rollup { held = reading }
    }

    /// What was sampled, for the machine judge.
    func series() -> MachineJudge.Series {
        MachineJudge.Series(
            baseline: baseline ?? MachineReading(), samples: samples,
            method:
                "sampled by the parent every 10 ms from the start barrier: each rank's /proc/<pid>/status every sample and smaps_rollup every other one and when every rank held its model (Σ Pss carried between; mmap's Σ Pss claims use the held moment), /proc/meminfo, the cgroup",
            held: held)
    }
}
