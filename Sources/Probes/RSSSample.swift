/// One reading of the ``RSSSampler``: the memory figures it read, when, and the caller's phase.
package struct MemorySample: Sendable, Equatable {
    /// Seconds since ``RSSSampler/start()`` (`CLOCK_MONOTONIC`; see ``RSSSampler/startSeconds``).
    package var seconds: Double
    /// The figures read: `/proc/<pid>/status` VmRSS, RssAnon, RssFile; jemalloc's `stats.*` when this process
    /// links it; the ledger's live bytes when the context supplies them. A source that failed leaves its
    /// figures absent.
    package var reading: MemoryReading
    /// The caller's current phase index, from the sampler's context closure (−1: none).
    package var phase: Int

    package init(seconds: Double, reading: MemoryReading, phase: Int) {
        self.seconds = seconds
        self.reading = reading
        self.phase = phase
    }
}

extension RSSSampler {
    /// The maximum of each figure over `samples` (each figure's maximum may come from a different sample).
    package static func peaks(_ samples: some Sequence<MemorySample>) -> MemoryReading {
        samples.reduce(MemoryReading()) { $0.maximum($1.reading) }
    }

    /// Reduces `samples` to at most `maxPoints` by ``Downsampling/bucketMaxima(_:toAtMost:merge:)``: each bucket one
    /// sample whose every figure (and phase) is the bucket's maximum, at the time of its first sample.
    package static func downsample(_ samples: [MemorySample], toAtMost maxPoints: Int) -> [MemorySample] {
        Downsampling.bucketMaxima(samples, toAtMost: maxPoints) { bucket in
            MemorySample(
                seconds: bucket[bucket.startIndex].seconds, reading: peaks(bucket),
                phase: bucket.map(\.phase).max() ?? -1)
        }
    }
}
