import Foundation
import Synchronization
import TestSupport
import Testing

@testable import OSLayer
@testable import Probes
@testable import ResultsFormat

#if canImport(Glibc)
import Glibc
#endif

extension MemoryMeasuringTests {
    /// The sampler: short spikes, marks, its sample cap, downsampling, the reading type. Serialized with every other suite that reads this process's memory (see `MemoryMeasuringTests`).
    @Suite(.serialized)
    struct SamplerTests: ProbeTestHelpers {
        // MARK: Sampler

        /// At 1 ms over ≥ 200 ms: ≥ 100 samples, and a 64 MiB spike lasting 50 ms shows in the RssAnon peak.
        @Test func samplerSeesShortSpike() throws {
            #expect(throws: RSSSampler.ConfigurationError.self) { try RSSSampler(interval: .milliseconds(51)) }
            #expect(throws: RSSSampler.ConfigurationError.self) { try RSSSampler(interval: .zero) }

            let phase = Atomic<Int>(0)
            var last: RSSSamplerResult?
            let ok = try withRetries {
                phase.store(0, ordering: .relaxed)
                let sampler = try RSSSampler(interval: .milliseconds(1)) {
                    (ledgerLiveBytes: 12345, phase: phase.load(ordering: .relaxed))
                }
                let beforeStart = RSSSampler.monotonicSeconds()
                try sampler.start()
                #expect(sampler.startSeconds >= beforeStart && sampler.startSeconds <= RSSSampler.monotonicSeconds())
                MonotonicClock.sleep(seconds: 0.05)
                phase.store(1, ordering: .relaxed)
                let block = try allocateTouched(64 * mebibyte)
                sampler.mark()  // jemalloc is refreshed every 250 ms by the thread: its peak comes from the mark
                MonotonicClock.sleep(seconds: 0.05)
                free(block, 64 * mebibyte)
                phase.store(2, ordering: .relaxed)
                MonotonicClock.sleep(seconds: 0.11)
                let result = sampler.stop()
                last = result
                let baseline = result.samples.prefix(20).compactMap { $0.reading[.rssAnon] }.min() ?? 0
                let peaks = result.peaks
                return result.samples.count >= 100
                    && (peaks[.rssAnon] ?? 0) - baseline >= 64 * mebibyte - 4 * mebibyte
                    && (peaks[.jemallocAllocated] ?? 0) >= 64 * mebibyte
                    && peaks[.ledgerLive] == 12345
                    && peaks[.pss] == nil  // not sampled: absent, never 0
                    && Set(result.samples.map(\.phase)) == [0, 1, 2]
                    // Scheduling-dependent on 2 busy cores, so retried with the rest: the first sample is taken
                    // at start, not a period later, and the period holds on average.
                    && result.samples.first.map { $0.seconds >= 0 && $0.seconds < 0.01 } == true
                    && result.overhead.meanIntervalSeconds > 0.0009 && result.overhead.meanIntervalSeconds < 0.002
            }
            let result = try #require(last)
            #expect(ok, "samples \(result.samples.count), peaks \(result.peaks)")
            #expect(result.jemallocAvailable)
            #expect(result.statusReadFailures == 0)
            #expect(result.droppedSamples == 0)
            #expect(result.samples.first.map { $0.seconds >= 0 } == true)
            let overhead = result.overhead
            #expect(overhead.meanSecondsPerSample > 0 && overhead.meanSecondsPerSample < 0.0005)
            #expect(overhead.maxSecondsPerSample >= overhead.meanSecondsPerSample)
            #expect(overhead.threadCPUSeconds > 0 && overhead.threadCPUSeconds < overhead.wallSeconds)
            #expect(overhead.markCount == 1 && overhead.markSeconds > 0 && overhead.markSeconds < 0.01)
            #expect(overhead.sampleCount + overhead.markCount == result.samples.count + result.droppedSamples)
            #expect(zip(result.samples, result.samples.dropFirst()).allSatisfy { $0.seconds <= $1.seconds })
            print("[probes] sampler at 1 ms: \(overhead)")
        }

        /// At 50 ms a 64 MiB block held for 2 ms falls between samples; a mark while it is held puts it in the peaks
        /// (RssAnon and a fresh jemalloc reading), with the caller's ledger bytes and phase. A mark before start
        /// stores nothing.
        @Test func markCatchesWhatThePeriodMisses() throws {
            let phase = Atomic<Int>(0)
            let sampler = try RSSSampler(interval: .milliseconds(50)) {
                (ledgerLiveBytes: 777, phase: phase.load(ordering: .relaxed))
            }
            sampler.mark()
            try sampler.start()
            MonotonicClock.sleep(seconds: 0.06)
            let block = try allocateTouched(64 * mebibyte)
            phase.store(3, ordering: .relaxed)
            sampler.mark()
            MonotonicClock.sleep(seconds: 0.002)
            free(block, 64 * mebibyte)
            phase.store(4, ordering: .relaxed)
            MonotonicClock.sleep(seconds: 0.06)
            let result = sampler.stop()
            sampler.mark()
            #expect(result.overhead.markCount == 1)
            #expect(result.samples.count == result.overhead.sampleCount + 1)
            let marked = try #require(result.samples.first { $0.phase == 3 })
            let baseline = try #require(result.samples.first?.reading[.rssAnon])
            #expect(try #require(marked.reading[.rssAnon]) - baseline >= 64 * mebibyte - 4 * mebibyte)
            #expect(try #require(marked.reading[.jemallocAllocated]) >= 64 * mebibyte)
            #expect(marked.reading[.ledgerLive] == 777)
        }

        @Test func samplerCapsStoredSamples() throws {
            let sampler = try RSSSampler(interval: .milliseconds(1), capacity: 10)
            try sampler.start()
            MonotonicClock.sleep(seconds: 0.05)
            let result = sampler.stop()
            #expect(result.samples.count == 10)
            #expect(result.droppedSamples == result.overhead.sampleCount - 10)
            #expect(result.droppedSamples > 10)
            #expect(sampler.stop().samples.count == 10)  // stop is idempotent
        }

        @Test func downsamplingKeepsEveryColumnMaximum() {
            var generator = SystemRandomNumberGenerator()
            var samples: [MemorySample] = []
            let sampled: [MemoryFigure] = [
                .rss, .rssAnon, .rssFile, .jemallocAllocated, .jemallocActive, .jemallocResident, .ledgerLive,
            ]
            for index in 0..<10_000 {
                let values = Dictionary(
                    uniqueKeysWithValues: sampled.map { ($0, Int.random(in: 0..<1_000_000, using: &generator)) })
                samples.append(
                    MemorySample(seconds: Double(index) * 0.001, reading: MemoryReading(values), phase: index / 1000))
            }
            let spike = Int.random(in: 0..<10_000, using: &generator)
            samples[spike].reading[.rssAnon] = 5_000_000
            let reduced = RSSSampler.downsample(samples, toAtMost: 2000)
            #expect(reduced.count == 2000)
            #expect(RSSSampler.peaks(reduced) == RSSSampler.peaks(samples))
            #expect(RSSSampler.peaks(reduced)[.rssAnon] == 5_000_000)
            #expect(RSSSampler.peaks(reduced)[.pss] == nil)
            #expect(reduced.first?.seconds == 0)
            #expect(reduced.map(\.phase).max() == 9)
            // Uneven counts: 10,001 → buckets of 6 → 1,667 points, still ≤ 2,000, still the same maxima.
            samples.append(samples[0])
            let uneven = RSSSampler.downsample(samples, toAtMost: 2000)
            #expect(uneven.count <= 2000)
            #expect(RSSSampler.peaks(uneven)[.rssAnon] == 5_000_000)
            #expect(RSSSampler.downsample(Array(samples.prefix(50)), toAtMost: 2000).count == 50)
        }

        /// A reading codes each present figure as `<name>_bytes` and leaves absent ones out; deltas and maxima
        /// keep absent figures absent.
        @Test func memoryReadingCodingAndArithmetic() throws {
            let reading = MemoryReading([.rss: 3 << 20, .rssAnon: 2 << 20, .ledgerLive: 7])
            let json = String(decoding: try ResultsCodec.encoder.encode(reading), as: UTF8.self)
            #expect(
                json == "{\n  \"ledger_live_bytes\" : 7,\n  \"rss_anon_bytes\" : 2097152,\n  \"rss_bytes\" : 3145728\n}"
            )
            #expect(try ResultsCodec.decoder.decode(MemoryReading.self, from: Data(json.utf8)) == reading)
            let baseline = MemoryReading([.rss: 1 << 20, .rssAnon: 1 << 20, .jemallocAllocated: 5])
            let delta = reading.delta(over: baseline)
            #expect(delta.figures == [.rss, .rssAnon])
            #expect(delta[.rss] == 2 << 20)
            #expect(reading.maximum(baseline)[.jemallocAllocated] == 5)
            #expect(reading.maximum(baseline)[.rss] == 3 << 20)
            #expect(PeakDeltas(delta).reading[.rssAnon] == 1 << 20)
            let peaks = String(
                decoding: try ResultsCodec.encoder.encode(PeakDeltas(MemoryReading([.ledgerLive: 1, .rssAnon: 2]))),
                as: UTF8.self)
            #expect(peaks == "{\n  \"ledger_delta_bytes\" : 1,\n  \"rss_anon_delta_bytes\" : 2\n}")
        }
    }
}
