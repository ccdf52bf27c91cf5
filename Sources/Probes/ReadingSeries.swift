/// A measured series of one kind of figure: the baseline, the timed samples (each with what its kind carries
/// beside the reading: a process's phase, a machine's per-rank VmRSS), and the readings taken at marks (the
/// moments a load knows memory peaks, and the end). It gives the peaks once, for a process and for a machine.
package struct ReadingSeries<Figure: ReadingFigure, Extra: Sendable>: Sendable {
    /// One timed reading.
    package struct Sample: Sendable {
        /// Seconds on the series' clock (a process's sampler start; a machine's start barrier).
        package var seconds: Double
        package var reading: Reading<Figure>
        /// What this kind of series carries beside the reading.
        package var extra: Extra

        package init(seconds: Double, reading: Reading<Figure>, extra: Extra) {
            self.seconds = seconds
            self.reading = reading
            self.extra = extra
        }
    }

    package var baseline: Reading<Figure>
    package var samples: [Sample]
    package var marks: [Reading<Figure>]

    package init(baseline: Reading<Figure>, samples: [Sample], marks: [Reading<Figure>] = []) {
        self.baseline = baseline
        self.samples = samples
        self.marks = marks
    }

    /// Every figure's peak over the samples and the marks as a cost over the baseline
    /// (``Reading/peakDeltas(_:over:)``).
    package var peakDeltas: Reading<Figure> { Reading.peakDeltas(extremes, over: baseline) }

    /// Each figure's extremes over the samples and the marks.
    package var extremes: Reading<Figure>.Extremes {
        var extremes = Reading<Figure>.Extremes(samples.lazy.map(\.reading))
        extremes.add(marks)
        return extremes
    }
}

/// A process's series: each sample carries the caller's phase.
package typealias MemorySeries = ReadingSeries<MemoryFigure, Int>

/// A process's sample: the reading and the caller's phase.
package typealias MemorySample = MemorySeries.Sample

extension ReadingSeries.Sample where Extra == Int {
    package init(seconds: Double, reading: Reading<Figure>, phase: Int) {
        self.init(seconds: seconds, reading: reading, extra: phase)
    }

    /// The caller's current phase index, from the sampler's context closure (−1: none).
    package var phase: Int {
        get { extra }
        set { extra = newValue }
    }
}
