import CJemalloc
import Foundation
import TestSupport
import Testing

@testable import OSLayer
@testable import Probes
@testable import ResultsFormat

#if canImport(Glibc)
import Glibc
#endif

let mebibyte = 1024 * 1024
/// `MALLOCX_TCACHE_NONE` (= `MALLOCX_TCACHE(-1)` = 1 << 8; the macro does not import into Swift).
let tcacheNone: Int32 = 1 << 8

/// What the memory-measuring suites share. Several measure process-wide memory deltas (RssAnon, VmHWM,
/// stats.allocated), so they are serialized under `MemoryMeasuringTests`; tests from other suites may still run in
/// parallel in a full `swift test`, so the RSS-delta checks allow a few MiB and retry a disturbed measurement (at
/// most 3 attempts, each with the same exact expectation).
protocol ProbeTestHelpers {}

extension ProbeTestHelpers {
    /// `mallocx` + write every byte, through jemalloc's automatic arenas (no tcache).
    func allocateTouched(_ bytes: Int) throws -> UnsafeMutableRawPointer {
        let pointer = try #require(mallocx(bytes, tcacheNone))
        memset(pointer, 0x11, bytes)
        return pointer
    }

    func free(_ pointer: UnsafeMutableRawPointer, _ bytes: Int) {
        sdallocx(pointer, bytes, tcacheNone)
        JemallocStats.purgeAll()
    }

    func status() throws -> ProcessMemory { try ProcessMemory.read() }

    /// Runs `attempt` up to 3 times until it returns true (a measurement disturbed by another suite's
    /// allocation is retried); returns whether one attempt succeeded.
    /// Up to five attempts, a third of a second apart, so that a busy stretch of 2 shared cores (a parallel suite
    /// building a checkpoint) passes before the last one.
    func withRetries(_ attempt: () throws -> Bool) rethrows -> Bool {
        for index in 0..<5 {
            if try attempt() { return true }
            if index < 4 { Thread.sleep(forTimeInterval: 0.3) }
        }
        return false
    }

    func temporaryFile(_ name: String) -> String {
        FileManager.default.temporaryDirectory
            .appendingPathComponent("probes-\(getpid())-\(UInt32.random(in: 0...UInt32.max))-\(name)").path
    }
}
