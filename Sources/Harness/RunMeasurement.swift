import Loading

/// What the measured child reports about one load: the figures predicted, and the memory the ledger,
/// jemalloc and the kernel saw before, during and after it.
public struct RunMeasurement: Codable, Sendable, Equatable {
    public var strategy: String
    public var dtype: String
    /// How the target dtype was resolved ("requested", "config", "first floating tensor").
    public var dtypeSource: String
    public var figures: MemoryFigures
    public var formula: String
    public var predictedPeakBytes: Int
    /// The engine's exact peak of owned bytes during the load.
    public var ledgerPeakBytes: Int
    /// Wall-clock seconds of the load.
    public var seconds: Double
    /// Before the load started (process up, plan built, sampler running).
    public var baseline: MemorySnapshot
    /// After the load, the model still alive.
    public var end: MemorySnapshot
    public var peaks: PeakDeltas
    public var phases: [PhaseRecord]
    public var sampler: SamplerStats
    public var timeline: Timeline
    public var missingKeys: [String]
    public var unexpectedKeys: [String]
    /// Set when the load hit its memory cap instead of finishing.
    public var outOfMemory: OutOfMemoryInfo?
    /// Set when the load failed for another reason (the message).
    public var failure: String?
    /// device-map runs: the placement and each device's figures.
    public var devices: DeviceUsage?
}

/// One reading of every probe.
public struct MemorySnapshot: Codable, Sendable, Equatable {
    /// /proc/self/status VmRSS, RssAnon, RssFile (kB × 1024).
    public var rssBytes: Int
    public var rssAnonBytes: Int
    public var rssFileBytes: Int
    /// /proc/self/status VmHWM: the kernel's high-water mark of VmRSS since the reset at start.
    public var vmhwmBytes: Int?
    /// /proc/self/smaps_rollup Pss, Pss_Anon, Pss_File.
    public var pssBytes: Int?
    public var pssAnonBytes: Int?
    public var pssFileBytes: Int?
    /// jemalloc stats.allocated / active / resident / mapped / retained (after an epoch refresh).
    public var jemallocAllocatedBytes: Int
    public var jemallocActiveBytes: Int
    public var jemallocResidentBytes: Int
    public var jemallocMappedBytes: Int
    public var jemallocRetainedBytes: Int
    /// The engine's ledger: live owned bytes.
    public var ledgerLiveBytes: Int
}

/// Peaks during the load, each as a delta over the baseline.
public struct PeakDeltas: Codable, Sendable, Equatable {
    /// VmHWM read at the end minus the baseline VmRSS: the kernel's own peak, which no sampling gap can miss.
    public var vmhwmDeltaBytes: Int?
    /// Sampled maxima minus baseline: VmRSS, RssAnon, RssFile.
    public var rssDeltaBytes: Int
    public var rssAnonDeltaBytes: Int
    public var rssFileDeltaBytes: Int
    /// Sampled maxima of jemalloc stats minus baseline.
    public var jemallocAllocatedDeltaBytes: Int
    public var jemallocActiveDeltaBytes: Int
    public var jemallocResidentDeltaBytes: Int
    /// The ledger's exact peak minus its baseline (0: the ledger owns nothing before the load).
    public var ledgerDeltaBytes: Int
    /// The ledger's peak with every allocation at its jemalloc size class (`nallocx`): what
    /// `stats.allocated` should show for the same allocations.
    public var ledgerSizeClassDeltaBytes: Int
}

public struct PhaseRecord: Codable, Sendable, Equatable {
    public var name: String
    public var startSeconds: Double
    public var endSeconds: Double
    public var ledgerLiveBytesAtStart: Int
    public var ledgerLiveBytesAtEnd: Int
}

/// The sampler's own cost, measured.
public struct SamplerStats: Codable, Sendable, Equatable {
    public var requestedIntervalSeconds: Double
    public var achievedMeanIntervalSeconds: Double
    public var samples: Int
    public var droppedSamples: Int
    public var meanSampleSeconds: Double
    public var maxSampleSeconds: Double
    /// CPU time the sampler thread used (CLOCK_THREAD_CPUTIME_ID), and as a share of the load's wall time.
    public var cpuSeconds: Double
    public var cpuShareOfLoad: Double
}

/// The samples, downsampled to at most 2000 points keeping each bucket's maxima.
public struct Timeline: Codable, Sendable, Equatable {
    /// Column names of each point: seconds, rss, rss_anon, rss_file, jemalloc_allocated, jemalloc_active,
    /// jemalloc_resident, ledger_live (bytes, as deltas over the baseline), phase (index into phases, −1 none).
    public var columns: [String]
    public var points: [[Double]]

    public static let standardColumns = [
        "seconds", "rss", "rss_anon", "rss_file", "jemalloc_allocated", "jemalloc_active", "jemalloc_resident", "ledger_live", "phase",
    ]
}

public struct OutOfMemoryInfo: Codable, Sendable, Equatable {
    /// The cap the run was under (ledger budget).
    public var capBytes: Int
    /// Ledger bytes live when the allocation failed, and the size of the failed allocation.
    public var reachedBytes: Int
    public var requestedBytes: Int
    public var message: String
}
