/// One reading of the ``RSSSampler``. Memory figures in bytes; a figure whose source could not be read is 0
/// (see ``RSSSamplerResult/statusReadFailures`` and ``RSSSamplerResult/jemallocAvailable``).
public struct RSSSample: Sendable, Equatable {
    /// Seconds since ``RSSSampler/start()`` (`CLOCK_MONOTONIC`; see ``RSSSampler/startSeconds``).
    public var seconds: Double
    /// `VmRSS` of `/proc/self/status`, bytes.
    public var vmRSSBytes: Int
    /// `RssAnon` of `/proc/self/status`, bytes.
    public var rssAnonBytes: Int
    /// `RssFile` of `/proc/self/status`, bytes.
    public var rssFileBytes: Int
    /// jemalloc `stats.allocated` (after `epoch`), bytes.
    public var jemallocAllocatedBytes: Int
    /// jemalloc `stats.active`, bytes.
    public var jemallocActiveBytes: Int
    /// jemalloc `stats.resident`, bytes.
    public var jemallocResidentBytes: Int
    /// jemalloc `stats.mapped`, bytes.
    public var jemallocMappedBytes: Int
    /// jemalloc `stats.retained`, bytes.
    public var jemallocRetainedBytes: Int
    /// The caller's ledger live bytes, from the sampler's context closure.
    public var ledgerLiveBytes: Int
    /// The caller's current phase index, from the sampler's context closure.
    public var phase: Int

    public init(
        seconds: Double, vmRSSBytes: Int, rssAnonBytes: Int, rssFileBytes: Int, jemallocAllocatedBytes: Int,
        jemallocActiveBytes: Int, jemallocResidentBytes: Int, jemallocMappedBytes: Int, jemallocRetainedBytes: Int,
        ledgerLiveBytes: Int, phase: Int
    ) {
        self.seconds = seconds
        self.vmRSSBytes = vmRSSBytes
        self.rssAnonBytes = rssAnonBytes
        self.rssFileBytes = rssFileBytes
        self.jemallocAllocatedBytes = jemallocAllocatedBytes
        self.jemallocActiveBytes = jemallocActiveBytes
        self.jemallocResidentBytes = jemallocResidentBytes
        self.jemallocMappedBytes = jemallocMappedBytes
        self.jemallocRetainedBytes = jemallocRetainedBytes
        self.ledgerLiveBytes = ledgerLiveBytes
        self.phase = phase
    }

    /// Column-wise maximum of two samples (seconds and phase included).
    func columnMax(_ other: RSSSample) -> RSSSample {
        RSSSample(
            seconds: max(seconds, other.seconds),
            vmRSSBytes: max(vmRSSBytes, other.vmRSSBytes),
            rssAnonBytes: max(rssAnonBytes, other.rssAnonBytes),
            rssFileBytes: max(rssFileBytes, other.rssFileBytes),
            jemallocAllocatedBytes: max(jemallocAllocatedBytes, other.jemallocAllocatedBytes),
            jemallocActiveBytes: max(jemallocActiveBytes, other.jemallocActiveBytes),
            jemallocResidentBytes: max(jemallocResidentBytes, other.jemallocResidentBytes),
            jemallocMappedBytes: max(jemallocMappedBytes, other.jemallocMappedBytes),
            jemallocRetainedBytes: max(jemallocRetainedBytes, other.jemallocRetainedBytes),
            ledgerLiveBytes: max(ledgerLiveBytes, other.ledgerLiveBytes),
            phase: max(phase, other.phase)
        )
    }
}

/// The maximum of each column over a run of samples (each column's maximum may come from a different sample).
public struct RSSSamplePeaks: Sendable, Equatable {
    /// How many samples the maxima were taken over (0: every figure below is 0).
    public var sampleCount: Int
    /// Maximum `VmRSS`, bytes.
    public var vmRSSBytes: Int
    /// Time of the (first) sample holding the maximum `VmRSS`, seconds since the sampler started.
    public var vmRSSPeakSeconds: Double
    /// Maximum `RssAnon`, bytes.
    public var rssAnonBytes: Int
    /// Maximum `RssFile`, bytes.
    public var rssFileBytes: Int
    /// Maximum jemalloc `stats.allocated`, bytes.
    public var jemallocAllocatedBytes: Int
    /// Maximum jemalloc `stats.active`, bytes.
    public var jemallocActiveBytes: Int
    /// Maximum jemalloc `stats.resident`, bytes.
    public var jemallocResidentBytes: Int
    /// Maximum jemalloc `stats.mapped`, bytes.
    public var jemallocMappedBytes: Int
    /// Maximum jemalloc `stats.retained`, bytes.
    public var jemallocRetainedBytes: Int
    /// Maximum ledger live bytes reported by the context closure.
    public var ledgerLiveBytes: Int

    /// The column maxima of `samples`.
    public init(_ samples: some Collection<RSSSample>) {
        sampleCount = samples.count
        vmRSSBytes = 0
        vmRSSPeakSeconds = 0
        rssAnonBytes = 0
        rssFileBytes = 0
        jemallocAllocatedBytes = 0
        jemallocActiveBytes = 0
        jemallocResidentBytes = 0
        jemallocMappedBytes = 0
        jemallocRetainedBytes = 0
        ledgerLiveBytes = 0
        var first = true
        for sample in samples {
            if first || sample.vmRSSBytes > vmRSSBytes {
                vmRSSBytes = sample.vmRSSBytes
                vmRSSPeakSeconds = sample.seconds
            }
            first = false
            rssAnonBytes = max(rssAnonBytes, sample.rssAnonBytes)
            rssFileBytes = max(rssFileBytes, sample.rssFileBytes)
            jemallocAllocatedBytes = max(jemallocAllocatedBytes, sample.jemallocAllocatedBytes)
            jemallocActiveBytes = max(jemallocActiveBytes, sample.jemallocActiveBytes)
            jemallocResidentBytes = max(jemallocResidentBytes, sample.jemallocResidentBytes)
            jemallocMappedBytes = max(jemallocMappedBytes, sample.jemallocMappedBytes)
            jemallocRetainedBytes = max(jemallocRetainedBytes, sample.jemallocRetainedBytes)
            ledgerLiveBytes = max(ledgerLiveBytes, sample.ledgerLiveBytes)
        }
    }
}

extension RSSSampler {
    /// Reduces `samples` to at most `maxPoints` points without losing peaks: consecutive samples are grouped in
    /// equal buckets of ⌈count / maxPoints⌉, and each bucket becomes one sample whose every column (memory
    /// figures, ledger bytes, phase) is that bucket's maximum, at the time of the bucket's first sample.
    /// So the maximum of every column over the result equals the maximum over the input.
    /// Returns the input unchanged when it already has ≤ maxPoints samples (or maxPoints < 1).
    public static func downsample(_ samples: [RSSSample], toAtMost maxPoints: Int) -> [RSSSample] {
        guard maxPoints >= 1, samples.count > maxPoints else { return samples }
        let bucketSize = (samples.count + maxPoints - 1) / maxPoints
        var result: [RSSSample] = []
        result.reserveCapacity((samples.count + bucketSize - 1) / bucketSize)
        var start = 0
        while start < samples.count {
            let end = min(start + bucketSize, samples.count)
            var merged = samples[start]
            for index in (start + 1)..<end { merged = merged.columnMax(samples[index]) }
            merged.seconds = samples[start].seconds
            result.append(merged)
            start = end
        }
        return result
    }
}
