import Foundation
import TestSupport
import Testing

@testable import Checkpoint
@testable import Loading
@testable import OSLayer
@testable import TensorEngine

#if canImport(Glibc)
import Glibc
#endif

/// A mapped file that shrinks while it is read: the read survives (zeros where pages fell past the end), the
/// window says it faulted, and every strategy that reads mappings reports the shrunk file (exit 74) instead
/// of dying of SIGBUS.
@Suite(.serialized) struct FileWindowGuardTests {
    @Test func aPagePastTheEndReadsZerosAndMarksOnlyItsWindow() throws {
        let folder = try TemporaryFolder("window")
        defer { folder.remove() }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let path = try folder.write("data.bin", [UInt8](repeating: 0xAB, count: 3 * page))
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        #expect(descriptor >= 0)
        defer { close(descriptor) }
        let whole = try TensorStorage.mapFile(descriptor: descriptor, offset: 0, length: 3 * page)
        let first = try TensorStorage.mapFile(descriptor: descriptor, offset: 0, length: page)
        #expect(truncate(path, off_t(page)) == 0)
        var sum = 0
        for byte in whole.bytes { sum += Int(byte) }
        #expect(sum == 0xAB * page)  // page 0 as written; pages 1 and 2 (past the end) read as zeros
        #expect(whole.windowFaulted)
        var firstSum = 0
        for byte in first.bytes { firstSum += Int(byte) }
        #expect(firstSum == 0xAB * page)
        #expect(!first.windowFaulted)
    }

    @Test func aFreedWindowsSlotIsReusedClean() throws {
        let folder = try TemporaryFolder("window")
        defer { folder.remove() }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let path = try folder.write("data.bin", [UInt8](repeating: 1, count: 2 * page))
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        defer { close(descriptor) }
        do {
            let window = try TensorStorage.mapFile(descriptor: descriptor, offset: 0, length: 2 * page)
            #expect(truncate(path, off_t(page)) == 0)
            #expect(window.bytes[page] == 0)
            #expect(window.windowFaulted)
        }
        let again = try TensorStorage.mapFile(descriptor: descriptor, offset: 0, length: page)
        #expect(again.bytes[0] == 1)
        #expect(!again.windowFaulted)
    }

    static let cases: [(StrategyName, DType?)] = [(.loadThenCast, .f16), (.mmap, nil)]

    /// The gemma fixture's shards cut to their headers after the plan read them: the converting read of
    /// load-then-cast and mmap's touch both fault past the end, and the load throws the shrunk-file error.
    @Test(arguments: 0..<2)
    func strategiesReadingMappingsReportAShrunkShard(caseIndex: Int) throws {
        let (strategy, target) = Self.cases[caseIndex]
        let folder = try TemporaryFolder("shrunk")
        defer { folder.remove() }
        let source = FixturePaths.path("gemma-tiny-bf16-sharded")
        for name in try FileManager.default.contentsOfDirectory(atPath: source) {
            try FileManager.default.copyItem(atPath: source + "/" + name, toPath: folder.file(name))
        }
        let plan = try LoadPlan(checkpoint: try Checkpoint(path: folder.path), requested: target)
        let file = plan.checkpoint.files[0]
        #expect(truncate(file.path, off_t(file.header.dataStart)) == 0)
        let ledger = MemoryLedger()
        do {
            _ = try strategy.strategy.load(plan, ledger: ledger, phases: PhaseLog(ledger: ledger))
            Issue.record("\(strategy.rawValue) loaded a shrunk file")
        } catch let error as FileIOError {
            let first = try #require(plan.parameters.compactMap(\.source).first { $0.fileIndex == 0 }?.tensor)
            #expect(error.category == .io)
            #expect(error.path == file.path)
            #expect(error.operation == "read of the mapped tensor '\(first.name)'")
            #expect(
                error.reason
                    == "unexpected end of file (the file shrank after it was opened: \(file.header.dataStart) bytes, the tensor ends at \(file.header.dataStart + first.end))"
            )
        }
    }
}
