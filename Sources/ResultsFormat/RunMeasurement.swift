import Loading
import Probes
import TensorEngine

/// What was measured about one load: the figures predicted, and the memory the kernel (and, for the engine, its
/// ledger and jemalloc) saw before, during and after it — the figures every loader has — and then the figures only
/// its kind of loader has (``Loader``): the engine measures itself in its child; a loader outside this tool
/// (transformers, a command) is measured by the parent from `/proc`, and has no ledger or jemalloc figures — they
/// are absent, never 0.
///
/// In JSON one flat object, as version 1 and 2 files have it: the loader's own keys beside the shared ones, and
/// `subject` present only for a loader outside this tool.
package struct RunMeasurement: Sendable, Equatable {
    package var strategy: StrategyName
    package var dtype: DType
    package var dtypeSource: DTypeSource
    package var figures: MemoryFigures
    package var formula: String
    package var predictedPeakBytes: Int
    /// Wall-clock seconds of the load.
    package var seconds: Double
    /// Before the load started (process up, plan built, sampler running): every probe read once.
    package var baseline: MemoryReading
    /// After the load, the model still alive (with `smaps_rollup`'s PSS).
    package var end: MemoryReading
    package var peaks: PeakDeltas
    package var phases: [PhaseRecord]
    package var sampler: SamplerStats
    package var timeline: ProcessTimeline
    package var missingKeys: [String]
    package var unexpectedKeys: [String]
    /// Set when the load hit its memory cap instead of finishing.
    package var outOfMemory: OutOfMemoryInfo?
    /// Set when the load failed for another reason (the message).
    package var failure: String?
    /// `CLOCK_MONOTONIC` seconds at the timeline's zero: the ranks of one node line up on it (`merge`).
    package var timelineOriginSeconds: Double?
    /// A rank of `measure-rank`: its reading the moment every rank of its node held its model (`merge` adds
    /// these up into Σ Pss: readings taken at one moment are the only ones whose Pss can be added).
    package var held: HeldReading?
    /// What the process still held once its load was done, with the model alive (absent for a loader command
    /// that never says when its load is done).
    package var retained: RetainedMemory?
    /// What only this kind of loader has.
    package var loader: Loader

    /// Who measured what beyond the shared figures.
    package enum Loader: Sendable, Equatable {
        /// The engine, measured in its own child: its ledger and what it placed and mapped.
        case engine(Engine)
        /// A loader outside this tool, measured by the parent from `/proc`.
        case outside(Outside)
    }

    /// The engine's own figures.
    package struct Engine: Codable, Sendable, Equatable {
        /// The exact peak of owned bytes during the load.
        package var ledgerPeakBytes: Int?
        /// device-map runs: the placement and each device's figures.
        package var devices: DeviceUsage?
        /// mmap runs: the bytes the model holds as read-only views of the checkpoint's files (not in the ledger).
        package var mappedBytes: Int?

        package init(ledgerPeakBytes: Int? = nil, devices: DeviceUsage? = nil, mappedBytes: Int? = nil) {
            self.ledgerPeakBytes = ledgerPeakBytes
            self.devices = devices
            self.mappedBytes = mappedBytes
        }
    }

    /// A loader's figures, as the parent saw it and as it reported itself.
    package struct Outside: Codable, Sendable, Equatable {
        /// Who loaded.
        package var subject: Subject
        /// The reading when the load returned (before the touch), and the peaks up to then; `end` and `peaks`
        /// then cover the touch too.
        package var endOfLoad: MemoryReading?
        package var loadPeaks: PeakDeltas?
        package var touchSeconds: Double?
        /// What the loader runs on (`python`, `torch`, `transformers`, `safetensors`, …).
        package var subjectVersions: [String: String]?
        /// transformers' `hf_device_map`, and the map `plan` computes for the same budgets.
        package var hfDeviceMap: [DeviceUsage.MapEntry]?
        package var planDeviceMap: [DeviceUsage.MapEntry]?
        /// How the claimed bytes were held (anonymous memory, or mapped file pages); set by the judge.
        package var residency: Residency?
        /// How the peak was obtained, in a sentence.
        package var peakSource: String?
        /// How much the file pages that are not the checkpoint's (the loader's code and libraries, paged in as
        /// the load first runs them) grew from the baseline to the end, by `/proc/<pid>/smaps`. VmHWM counts them;
        /// the claims take them off, since they are not the load's memory.
        package var codePagesBytes: Int?
        package var notes: [String]?
        /// `--attribute`: where the peak came from, by memray; or why it could not be read.
        package var attribution: Attribution?
        package var attributionFailure: String?

        package init(subject: Subject) { self.subject = subject }
    }

    package init(
        strategy: StrategyName, dtype: DType, dtypeSource: DTypeSource, figures: MemoryFigures, formula: String,
        predictedPeakBytes: Int, seconds: Double, baseline: MemoryReading, end: MemoryReading, peaks: PeakDeltas,
        phases: [PhaseRecord], sampler: SamplerStats, timeline: ProcessTimeline, missingKeys: [String],
        unexpectedKeys: [String], outOfMemory: OutOfMemoryInfo? = nil, failure: String? = nil,
        timelineOriginSeconds: Double? = nil, held: HeldReading? = nil, loader: Loader = .engine(Engine()),
        retained: RetainedMemory? = nil
    ) {
        self.strategy = strategy
        self.dtype = dtype
        self.dtypeSource = dtypeSource
        self.figures = figures
        self.formula = formula
        self.predictedPeakBytes = predictedPeakBytes
        self.seconds = seconds
        self.baseline = baseline
        self.end = end
        self.peaks = peaks
        self.phases = phases
        self.sampler = sampler
        self.timeline = timeline
        self.missingKeys = missingKeys
        self.unexpectedKeys = unexpectedKeys
        self.outOfMemory = outOfMemory
        self.failure = failure
        self.timelineOriginSeconds = timelineOriginSeconds
        self.held = held
        self.loader = loader
        self.retained = retained
    }

    /// The engine's own figures; nil for a loader outside this tool.
    package var engine: Engine? {
        get { if case .engine(let engine) = loader { engine } else { nil } }
        set { if let newValue { loader = .engine(newValue) } }
    }

    /// A loader's figures; nil for the engine.
    package var outside: Outside? {
        get { if case .outside(let outside) = loader { outside } else { nil } }
        set { if let newValue { loader = .outside(newValue) } }
    }
}

extension RunMeasurement: Codable {
    private enum CodingKeys: String, CodingKey {
        case strategy, dtype, dtypeSource, figures, formula, predictedPeakBytes, seconds, baseline, end, peaks, phases
        case sampler, timeline, missingKeys, unexpectedKeys, outOfMemory, failure, timelineOriginSeconds, held, subject
        case retained
    }

    package init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        strategy = try c.decode(StrategyName.self, forKey: .strategy)
        dtype = try c.decode(DType.self, forKey: .dtype)
        dtypeSource = try c.decode(DTypeSource.self, forKey: .dtypeSource)
        figures = try c.decode(MemoryFigures.self, forKey: .figures)
        formula = try c.decode(String.self, forKey: .formula)
        predictedPeakBytes = try c.decode(Int.self, forKey: .predictedPeakBytes)
        seconds = try c.decode(Double.self, forKey: .seconds)
        baseline = try c.decode(MemoryReading.self, forKey: .baseline)
        end = try c.decode(MemoryReading.self, forKey: .end)
        peaks = try c.decode(PeakDeltas.self, forKey: .peaks)
        phases = try c.decode([PhaseRecord].self, forKey: .phases)
        sampler = try c.decode(SamplerStats.self, forKey: .sampler)
        timeline = try c.decode(ProcessTimeline.self, forKey: .timeline)
        missingKeys = try c.decode([String].self, forKey: .missingKeys)
        unexpectedKeys = try c.decode([String].self, forKey: .unexpectedKeys)
        outOfMemory = try c.decodeIfPresent(OutOfMemoryInfo.self, forKey: .outOfMemory)
        failure = try c.decodeIfPresent(String.self, forKey: .failure)
        timelineOriginSeconds = try c.decodeIfPresent(Double.self, forKey: .timelineOriginSeconds)
        held = try c.decodeIfPresent(HeldReading.self, forKey: .held)
        retained = try c.decodeIfPresent(RetainedMemory.self, forKey: .retained)
        // Absent `subject` means the engine (version-1 files, and every engine run).
        let subject = try c.decodeIfPresent(Subject.self, forKey: .subject) ?? .engine
        loader = subject.isEngine ? .engine(try Engine(from: decoder)) : .outside(try Outside(from: decoder))
    }

    package func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(strategy, forKey: .strategy)
        try c.encode(dtype, forKey: .dtype)
        try c.encode(dtypeSource, forKey: .dtypeSource)
        try c.encode(figures, forKey: .figures)
        try c.encode(formula, forKey: .formula)
        try c.encode(predictedPeakBytes, forKey: .predictedPeakBytes)
        try c.encode(seconds, forKey: .seconds)
        try c.encode(baseline, forKey: .baseline)
        try c.encode(end, forKey: .end)
        try c.encode(peaks, forKey: .peaks)
        try c.encode(phases, forKey: .phases)
        try c.encode(sampler, forKey: .sampler)
        try c.encode(timeline, forKey: .timeline)
        try c.encode(missingKeys, forKey: .missingKeys)
        try c.encode(unexpectedKeys, forKey: .unexpectedKeys)
        try c.encodeIfPresent(outOfMemory, forKey: .outOfMemory)
        try c.encodeIfPresent(failure, forKey: .failure)
        try c.encodeIfPresent(timelineOriginSeconds, forKey: .timelineOriginSeconds)
        try c.encodeIfPresent(held, forKey: .held)
        try c.encodeIfPresent(retained, forKey: .retained)
        // The loader's own keys go into the same object (`subject` among the outside loader's).
        switch loader {
        case .engine(let engine): try engine.encode(to: encoder)
        case .outside(let outside): try outside.encode(to: encoder)
        }
    }
}

/// Where a loader held the bytes its claim is about: as its own (anonymous) memory, or as pages of the
/// mapped checkpoint files — what transformers 5 does for same-dtype weights, which N processes can share.
package enum Residency: String, Codable, Sendable {
    /// RssAnon reached the claim's lower reach: the loader owns its copies.
    case anonymous
    /// RssAnon stayed well under the claim; the mapped files' pages (RssFile) make up the rest.
    case filePages = "file-pages"
    /// Neither alone: part owned, part mapped.
    case mixed
    /// The figures stayed under the claim in both: the bytes were never all resident at once (lazy views).
    case notResident = "not-resident"
}

/// Peaks during the load, each as a delta over the baseline: `peaks[.rssAnon]` is the sampled maximum of
/// RssAnon minus its baseline, `peaks[.vmhwm]` the kernel's high-water mark read at the end minus the
/// baseline VmRSS (which no sampling gap can miss), `peaks[.ledgerLive]` the ledger's exact peak minus its
/// baseline, `peaks[.ledgerSizeClass]` the ledger's peak at jemalloc size classes (`nallocx`): what
/// `stats.allocated` should show for the same allocations.
///
/// In JSON each figure is `<figure>_delta_bytes` (`rss_anon_delta_bytes`; the ledger's is `ledger_delta_bytes`).
package struct PeakDeltas: Codable, Sendable, Equatable {
    package var reading: MemoryReading

    package init(_ reading: MemoryReading = MemoryReading()) { self.reading = reading }

    /// The figures a loader measured from outside has peaks of: the kernel's VmRSS, RssAnon and RssFile.
    package static let kernelFigures: [MemoryFigure] = [.rss, .rssAnon, .rssFile]
    /// An engine run's: the kernel's and jemalloc's allocated, active and resident bytes.
    package static let engineFigures: [MemoryFigure] =
        kernelFigures + [.jemallocAllocated, .jemallocActive, .jemallocResident]

    /// A process's peaks over its baseline, the one rule for every loader: each of `figures` at its peak over the
    /// series (``ReadingSeries/peakDeltas``), and VmHWM — the kernel's own high-water mark — read at the last mark
    /// (else the highest read) less the baseline's VmRSS.
    package init(_ series: ReadingSeries<MemoryFigure, Int>, figures: [MemoryFigure]) {
        let extremes = series.extremes
        let deltas = MemoryReading.peakDeltas(extremes, over: series.baseline)
        self.init()
        for figure in figures { self[figure] = deltas[figure] }
        if let hwm = series.marks.last?[.vmhwm] ?? extremes.highest[.vmhwm], let rss = series.baseline[.rss] {
            self[.vmhwm] = hwm - rss
        }
    }

    package subscript(figure: MemoryFigure) -> Int? {
        get { reading[figure] }
        set { reading[figure] = newValue }
    }

    package static func key(_ figure: MemoryFigure) -> String {
        figure == .ledgerLive ? "ledger_delta_bytes" : figure.name + "_delta_bytes"
    }

    package init(from decoder: any Decoder) throws {
        reading = try MemoryReading(from: decoder, key: Self.key)
    }

    package func encode(to encoder: any Encoder) throws {
        try reading.encode(to: encoder, key: Self.key)
    }
}

package struct PhaseRecord: Codable, Sendable, Equatable {
    package var name: String
    package var startSeconds: Double
    package var endSeconds: Double
    /// The engine's ledger at the phase's start and end (absent for loaders measured from outside).
    package var ledgerLiveBytesAtStart: Int?
    package var ledgerLiveBytesAtEnd: Int?

    package init(
        name: String,
        startSeconds: Double,
        endSeconds: Double,
        ledgerLiveBytesAtStart: Int? = nil,
        ledgerLiveBytesAtEnd: Int? = nil
    ) {
        self.name = name
        self.startSeconds = startSeconds
        self.endSeconds = endSeconds
        self.ledgerLiveBytesAtStart = ledgerLiveBytesAtStart
        self.ledgerLiveBytesAtEnd = ledgerLiveBytesAtEnd
    }
}

/// The sampler's own cost, measured.
package struct SamplerStats: Codable, Sendable, Equatable {
    package var requestedIntervalSeconds: Double
    package var achievedMeanIntervalSeconds: Double
    package var samples: Int
    package var droppedSamples: Int
    package var meanSampleSeconds: Double
    package var maxSampleSeconds: Double
    /// CPU time the sampler thread used (CLOCK_THREAD_CPUTIME_ID), and as a share of the load's wall time.
    package var cpuSeconds: Double
    package var cpuShareOfLoad: Double
    /// Readings taken on the loading thread at the moments memory peaks (phase transitions, the first free after
    /// the ledger's peak rose by 8 MiB), and their wall time; absent in results written before marks existed.
    package var marks: Int?
    package var markSeconds: Double?

    package init(
        requestedIntervalSeconds: Double,
        achievedMeanIntervalSeconds: Double,
        samples: Int,
        droppedSamples: Int,
        meanSampleSeconds: Double,
        maxSampleSeconds: Double,
        cpuSeconds: Double,
        cpuShareOfLoad: Double,
        marks: Int? = nil,
        markSeconds: Double? = nil
    ) {
        self.requestedIntervalSeconds = requestedIntervalSeconds
        self.achievedMeanIntervalSeconds = achievedMeanIntervalSeconds
        self.samples = samples
        self.droppedSamples = droppedSamples
        self.meanSampleSeconds = meanSampleSeconds
        self.maxSampleSeconds = maxSampleSeconds
        self.cpuSeconds = cpuSeconds
        self.cpuShareOfLoad = cpuShareOfLoad
        self.marks = marks
        self.markSeconds = markSeconds
    }
}

extension SamplerStats {
    package init(_ result: RSSSamplerResult, loadSeconds: Double) {
        let overhead = result.overhead
        requestedIntervalSeconds = overhead.requestedIntervalSeconds
        achievedMeanIntervalSeconds = overhead.meanIntervalSeconds
        samples = overhead.sampleCount
        droppedSamples = result.droppedSamples
        meanSampleSeconds = overhead.meanSecondsPerSample
        maxSampleSeconds = overhead.maxSecondsPerSample
        cpuSeconds = overhead.threadCPUSeconds
        cpuShareOfLoad = loadSeconds > 0 ? overhead.threadCPUSeconds / max(loadSeconds, overhead.wallSeconds) : 0
        marks = overhead.markCount
        markSeconds = overhead.markSeconds
    }
}

/// One column of a ``Timeline``.
package enum TimelineColumn: Sendable, Hashable, Codable, CustomStringConvertible {
    /// Seconds since the sampler started.
    case seconds
    /// A memory figure; a delta over the baseline, except the ledger's live bytes, which are absolute.
    case figure(MemoryFigure)
    /// The index into the run's phases, −1 outside every phase.
    case phase

    package var description: String {
        switch self {
        case .seconds: "seconds"
        case .figure(let figure): figure.name
        case .phase: "phase"
        }
    }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let name = try container.decode(String.self)
        switch name {
        case "seconds": self = .seconds
        case "phase": self = .phase
        default:
            guard let figure = MemoryFigure(name: name) else {
                throw DecodingError.dataCorruptedError(
                    in: container, debugDescription: "unknown timeline column '\(name)'")
            }
            self = .figure(figure)
        }
    }

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// The samples, downsampled to at most ``maximumPoints`` points keeping each bucket's maxima: typed columns,
/// each point one value per column.
/// A timeline as the results keep it, for a process (``ProcessTimeline``) or a machine (`MachineTimeline`): named
/// columns (the first the seconds) and points, downsampled by ``Downsampling`` so no peak is lost.
package struct Timeline<Column: Codable & Hashable & Sendable>: Codable, Sendable, Equatable {
    package var columns: [Column]
    package var points: [[Double]]

    /// The most points a timeline keeps.
    package static var maximumPoints: Int { 2000 }

    package init(columns: [Column], points: [[Double]]) {
        self.columns = columns
        self.points = points
    }

    /// (seconds, value) of every point for `column`; empty when the timeline has no such column (the seconds are
    /// the first column).
    package func series(_ column: Column) -> [(seconds: Double, value: Double)] {
        guard !columns.isEmpty, let index = columns.firstIndex(of: column) else { return [] }
        return points.compactMap { p in index < p.count && !p.isEmpty ? (p[0], p[index]) : nil }
    }
}

/// A process's timeline: seconds, its figures as deltas over the baseline, the phase.
package typealias ProcessTimeline = Timeline<TimelineColumn>

extension Timeline where Column == TimelineColumn {
    /// PSS, sampled by a rank of a multi-rank run (deltas over the baseline).
    package static var pssColumns: [TimelineColumn] { [.figure(.pss), .figure(.pssAnon), .figure(.pssFile)] }

    /// The columns of a loader measured from outside: seconds, VmRSS, RssAnon, RssFile (deltas), the phase.
    package static var kernelColumns: [TimelineColumn] {
        [.seconds, .figure(.rss), .figure(.rssAnon), .figure(.rssFile), .phase]
    }

    /// The columns of an engine run: seconds, VmRSS, RssAnon, RssFile, jemalloc allocated / active / resident
    /// (deltas over the baseline), the ledger's live bytes (absolute), the phase.
    package static var engineColumns: [TimelineColumn] {
        [.seconds]
            + ([.rss, .rssAnon, .rssFile, .jemallocAllocated, .jemallocActive, .jemallocResident, .ledgerLive]
            as [MemoryFigure]).map { TimelineColumn.figure($0) }
            + [.phase]
    }

    /// The samples as deltas over `baseline` (the ledger absolute), downsampled, in `columns`.
    package init(samples: [MemorySample], baseline: MemoryReading, columns: [TimelineColumn]) {
        self.columns = columns
        points = RSSSampler.downsample(samples, toAtMost: Self.maximumPoints).map { sample in
            columns.map { column -> Double in
                switch column {
                case .seconds: return sample.seconds
                case .phase: return Double(sample.phase)
                case .figure(.ledgerLive): return Double(sample.reading[.ledgerLive] ?? 0)
                case .figure(let figure): return Double((sample.reading[figure] ?? 0) - (baseline[figure] ?? 0))
                }
            }
        }
    }
}

/// A reading of a rank's process at a moment shared with the other ranks.
package struct HeldReading: Codable, Sendable, Equatable {
    /// `CLOCK_MONOTONIC` seconds of the reading.
    package var seconds: Double
    /// VmRSS, RssAnon, RssFile, VmHWM and `smaps_rollup`'s Pss, Pss_Anon, Pss_File.
    package var reading: MemoryReading

    package init(seconds: Double, reading: MemoryReading) {
        self.seconds = seconds
        self.reading = reading
    }
}

package struct OutOfMemoryInfo: Codable, Sendable, Equatable {
    /// The cap the run was under (ledger budget).
    package var capBytes: Int
    /// Ledger bytes live when the allocation failed, and the size of the failed allocation.
    package var reachedBytes: Int
    package var requestedBytes: Int
    package var message: String

    package init(
        capBytes: Int,
        reachedBytes: Int,
        requestedBytes: Int,
        message: String
    ) {
        self.capBytes = capBytes
        self.reachedBytes = reachedBytes
        self.requestedBytes = requestedBytes
        self.message = message
    }
}

extension RunMeasurement {
    /// The peaks the claims read: VmHWM less the loader's own code pages (its libraries paged in as the load
    /// first runs them: not the load's memory; both figures are in the results).
    package var judgedPeaks: PeakDeltas {
        var peaks = self.peaks
        if let code = outside?.codePagesBytes, let hwm = peaks[.vmhwm] { peaks[.vmhwm] = hwm - code }
        return peaks
    }
}
