import Foundation
import OSLayer

#if canImport(Glibc)
import Glibc
#endif

/// What ``FirstTouchFloor/measure(bytes:passes:chunk:threads:)`` measured.
package struct FirstTouchResult: Sendable, Equatable, Codable {
    /// Bytes written per pass.
    package var bytes: Int
    /// Wall seconds (`CLOCK_MONOTONIC`) of each pass, in order; unmapping is not counted.
    package var seconds: [Double]

    package init(bytes: Int, seconds: [Double]) {
        self.bytes = bytes
        self.seconds = seconds
    }

    /// bytes / seconds of pass `index` (nil when it is missing or took no time).
    package func bytesPerSecond(pass index: Int) -> Double? {
        guard seconds.indices.contains(index), seconds[index] > 0 else { return nil }
        return Double(bytes) / seconds[index]
    }
}

/// The machine's floor for memory a loader has not used before: how fast fresh anonymous memory can be
/// written. Every loader writes its destination once, so no strategy's phase that fills fresh memory can
/// beat this rate, whatever the read floor says.
///
/// It matters on virtual machines whose host backs guest memory lazily and takes freed memory back (free page
/// reporting, ``FreePageReporting``): there the first write of a page the host does not hold costs the host's
/// fault, several times the guest's own, and the same pages written again at once (before they are reported)
/// cost only the guest's.
package enum FirstTouchFloor {
    /// `passes` times: a fresh ``HugePageBuffer`` of `bytes`, written with `memset` in `chunk`-byte windows,
    /// `threads` at once (default: every core), then unmapped (not timed) before the next pass.
    package static func measure(
        bytes: Int, passes: Int = 2, chunk: Int = 8 << 20, threads: Int = ProcessInfo.processInfo.activeProcessorCount
    ) throws(SystemCallError) -> FirstTouchResult {
        let chunk = max(chunk, HugePageBuffer.hugePageSize)
        var seconds: [Double] = []
        for _ in 0..<max(passes, 0) {
            let start = MonotonicClock.monotonicSeconds()
            let buffer = try HugePageBuffer(byteCount: bytes)
            write(buffer, chunk: chunk, threads: threads)
            seconds.append(MonotonicClock.monotonicSeconds() - start)
            withExtendedLifetime(buffer) {}
        }
        return FirstTouchResult(bytes: max(bytes, 0), seconds: seconds)
    }

    /// Writes every byte of the buffer (a non-zero pattern, so no page can stay the shared zero page).
    static func write(_ buffer: HugePageBuffer, chunk: Int, threads: Int) {
        let size = buffer.byteCount
        let chunks = (size + chunk - 1) / chunk
        // The address travels as an integer: each chunk is its own disjoint window of the buffer.
        let base = UInt(bitPattern: buffer.baseAddress)
        let work: @Sendable (Int) -> Void = { index in
            let offset = index * chunk
            guard let window = UnsafeMutableRawPointer(bitPattern: base + UInt(offset)) else { return }
            memset(window, 0x5A, min(chunk, size - offset))
        }
        ReadFloor.eachChunk(chunks, threads: threads, work)
    }
}
