import ResultsFormat

/// A value of one figure: bytes (exact integers) or seconds.
package enum Quantity: Sendable, Equatable {
    case bytes(Int)
    case seconds(Double)
    /// A sweep's slope: copies of the checkpoint (dimensionless).
    case copies(Double)

    package var doubleValue: Double {
        switch self {
        case .bytes(let b): return Double(b)
        case .seconds(let s): return s
        case .copies(let c): return c
        }
    }
}

/// One figure of a run that `compare` and the benchmark exports track, named as in the exports
/// (`smoke/naive/vmhwm_delta_bytes`) and in `compare --metrics`.
package struct Metric: Sendable {
    /// How a change of this figure is judged.
    package enum Kind: String, Sendable {
        /// The engine's exact count: any increase is a regression, any decrease an improvement.
        case exact
        /// A kernel or allocator figure: noisy by a few pages, judged against the relative and absolute thresholds.
        case memory
        /// Wall-clock seconds: reported, judged only with `--gate-times`.
        case time
    }

    package enum Unit: String, Sendable {
        case bytes
        case seconds
        case copies
    }

    /// The export and `--metrics` name.
    package let name: String
    /// What it is, for tables.
    package let title: String
    /// Where it comes from in the results file.
    package let source: String
    package let kind: Kind
    package let unit: Unit
    let extract: @Sendable (RunResult) -> Quantity?

    /// The figure for `run`, or nil when the run has none (it did not finish its load, or the probe was unavailable).
    package func value(_ run: RunResult) -> Quantity? {
        // Only loads that finished have comparable figures: an `oom` run stopped at its cap, an `error` run has none.
        guard run.verdict == .pass || run.verdict == .fail else { return nil }
        return extract(run)
    }

    /// Every tracked figure, in the order tables show them.
    package static let all: [Metric] = [
        Metric(
            name: "ledger_peak_bytes", title: "ledger peak", source: "runs[].measurement.ledger_peak_bytes",
            kind: .exact, unit: .bytes,
            extract: { $0.measurement?.engine?.ledgerPeakBytes.map { .bytes($0) } }),
        Metric(
            name: "vmhwm_delta_bytes", title: "VmHWM Δ", source: "runs[].measurement.peaks.vmhwm_delta_bytes",
            kind: .memory, unit: .bytes,
            extract: { $0.measurement?.peaks[.vmhwm].map { .bytes($0) } }),
        Metric(
            name: "rss_anon_peak_delta_bytes", title: "RSS anon peak Δ",
            source: "runs[].measurement.peaks.rss_anon_delta_bytes", kind: .memory,
            unit: .bytes, extract: { $0.measurement?.peaks[.rssAnon].map { .bytes($0) } }),
        Metric(
            name: "rss_file_peak_delta_bytes", title: "RSS file peak Δ",
            source: "runs[].measurement.peaks.rss_file_delta_bytes", kind: .memory,
            unit: .bytes, extract: { $0.measurement?.peaks[.rssFile].map { .bytes($0) } }),
        Metric(
            name: "jemalloc_allocated_peak_delta_bytes", title: "jemalloc allocated peak Δ",
            source: "runs[].measurement.peaks.jemalloc_allocated_delta_bytes", kind: .memory, unit: .bytes,
            extract: { $0.measurement?.peaks[.jemallocAllocated].map { .bytes($0) } }),
        Metric(
            name: "seconds", title: "load seconds", source: "runs[].seconds", kind: .time, unit: .seconds,
            extract: { $0.seconds.map { .seconds($0) } }),
    ]

    package static var names: [String] { all.map(\.name) }

    package static func named(_ name: String) -> Metric? { all.first { $0.name == name } }
}
