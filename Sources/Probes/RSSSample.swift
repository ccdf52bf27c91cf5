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
