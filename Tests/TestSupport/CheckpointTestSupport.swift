import Checkpoint
import Foundation
import StrictJSON
import TensorEngine
import Testing

/// Shared helpers for the safetensors / checkpoint tests: temporary folders, hand-built safetensors bytes,
/// fixture expectations, and running the built executable.

/// A fresh folder under the system temporary directory, removed by `remove()` (call it in a `defer`).
package struct TemporaryFolder: Sendable {
    package let path: String

    package init(_ label: String = "cptests") throws {
        let base = NSTemporaryDirectory()
        let name = "\(label)-\(getpid())-\(UUID().uuidString.prefix(8))"
        path = (base.hasSuffix("/") ? base : base + "/") + name
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    package func file(_ name: String) -> String { path + "/" + name }

    @discardableResult
    package func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        let target = file(name)
        try Data(bytes).write(to: URL(fileURLWithPath: target))
        return target
    }

    @discardableResult
    package func write(_ name: String, text: String) throws -> String {
        try write(name, Array(text.utf8))
    }

    /// Every entry of the folder, hidden ones included, sorted.
    package func contents() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: path).sorted()
    }

    package func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// The 8-byte little-endian length prefix.
package func lengthPrefix(_ n: UInt64) -> [UInt8] {
    (0..<8).map { UInt8(truncatingIfNeeded: n >> (8 * UInt64($0))) }
}

/// `[u64 N][header][data]` with N = the header's byte count unless `declaredLength` overrides it.
package func safetensorsBytes(header: [UInt8], data: [UInt8] = [], declaredLength: UInt64? = nil) -> [UInt8] {
    lengthPrefix(declaredLength ?? UInt64(header.count)) + header + data
}

package func safetensorsBytes(header: String, data: [UInt8] = [], declaredLength: UInt64? = nil) -> [UInt8] {
    safetensorsBytes(header: Array(header.utf8), data: data, declaredLength: declaredLength)
}

package func safetensorsBytes(header: String, dataCount: Int) -> [UInt8] {
    safetensorsBytes(header: header, data: [UInt8](repeating: 0, count: dataCount))
}

/// Validates whole-file bytes in memory exactly as `SafetensorsFile(path:)` does (steps 1–3 on the prefix,
/// then 4–10 on the N header bytes).
package func parseSafetensors(_ bytes: [UInt8], file: String = "mem.safetensors") throws(SafetensorsError)
    -> SafetensorsHeader
{
    let n = try SafetensorsHeader.headerByteCount(prefix: bytes.prefix(8), fileSize: bytes.count, file: file)
    return try SafetensorsHeader.parse(headerBytes: Array(bytes[8..<(8 + n)]), fileSize: bytes.count, file: file)
}

/// The rule `parseSafetensors` reports, or nil when the bytes are accepted.
package func inMemoryRule(_ bytes: [UInt8]) -> SafetensorsRule? {
    do {
        _ = try parseSafetensors(bytes)
        return nil
    } catch {
        return error.rule
    }
}

/// The rule `SafetensorsFile(path:)` reports for these bytes written to a file, or nil when it opens.
/// Any error other than `SafetensorsError` is recorded as an issue.
package func fileRule(_ bytes: [UInt8], in folder: TemporaryFolder, name: String = "case.safetensors") throws
    -> SafetensorsRule?
{
    let path = try folder.write(name, bytes)
    do {
        _ = try SafetensorsFile(path: path)
        return nil
    } catch let error as SafetensorsError {
        #expect(error.source == path, "the error names the file it was given")
        return error.rule
    } catch {
        Issue.record("SafetensorsFile threw \(type(of: error)) \(error), not a SafetensorsError")
        return nil
    }
}

/// Little-endian bytes of a sequence of Float32 values.
package func float32Bytes(_ values: [Float]) -> [UInt8] {
    values.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }
}

/// Reads a whole file.
package func fileBytes(_ path: String) throws -> [UInt8] {
    [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
}

/// All of a tensor's bytes, read with `SafetensorsFile.read`.
package func readAll(_ file: SafetensorsFile, _ tensor: StoredTensor) throws -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: tensor.byteCount)
    try bytes.withUnsafeMutableBytes { try file.read(tensor, into: $0) }
    return bytes
}

/// One entry of a fixture's `expected.json` `tensors`.
package struct ExpectedTensor: Equatable, CustomStringConvertible {
    package let name: String
    package let file: String
    package let dtype: String
    package let shape: [Int]
    package let nbytes: Int
    package let sha256: String
    package var description: String { "\(name) \(dtype) \(shape) \(nbytes) in \(file)" }
}

/// Loads `expected.json` of a fixture folder (relative to Tests/Fixtures) with the strict parser.
package func expectedTensors(_ folder: String) throws -> [ExpectedTensor] {
    let bytes = try fileBytes(FixturePaths.path(folder + "/expected.json"))
    let root = try JSONParser().parse(bytes)
    let tensors = try #require(root["tensors"]?.objectValue)
    return try tensors.map { name, value in
        ExpectedTensor(
            name: name,
            file: try #require(value["file"]?.stringValue),
            dtype: try #require(value["dtype"]?.stringValue),
            shape: try #require(value["shape"]?.arrayValue).map { try #require($0.numberValue?.intValue) },
            nbytes: try #require(value["nbytes"]?.numberValue?.intValue),
            sha256: try #require(value["sha256"]?.stringValue))
    }
}

// MARK: - Running the executable

package struct ProcessResult: Sendable {
    package let status: Int32
    package let stdout: String
    package let stderr: String
    package var stderrLines: [Substring] { stderr.split(separator: "\n", omittingEmptySubsequences: true) }
}

package enum Executable {
    /// The built `bigmodel-bench`, looked for beside the running test binary. On Linux the Swift Testing
    /// runner is `<scratch>/<triple>/debug/bigmodel-benchPackageTests.xctest` (an executable), so the tool is
    /// its sibling; on macOS the `.xctest` is a bundle and the tool sits beside the bundle.
    package static let path: String? = {
        var candidates: [URL] = []
        if let exe = Bundle.main.executableURL { candidates.append(exe.deletingLastPathComponent()) }
        candidates.append(Bundle.main.bundleURL)
        candidates.append(Bundle.main.bundleURL.deletingLastPathComponent())
        candidates.append(URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent())
        if let linked = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            candidates.append(URL(fileURLWithPath: linked).deletingLastPathComponent())
        }
        // Walk up from each candidate to the folder holding a `.xctest`, for bundle layouts.
        for start in candidates {
            var folder = start
            for _ in 0..<4 {
                let tool = folder.appendingPathComponent("bigmodel-bench").path
                var isDirectory: ObjCBool = false
                if FileManager.default.fileExists(atPath: tool, isDirectory: &isDirectory), !isDirectory.boolValue,
                    FileManager.default.isExecutableFile(atPath: tool)
                {
                    return tool
                }
                folder = folder.deletingLastPathComponent()
            }
        }
        return nil
    }()

    /// Starts the tool in the background, its output discarded: for a test that signals it or races it.
    package static func start(_ arguments: [String]) throws -> Process {
        let process = Process()
        process.executableURL = URL(
            fileURLWithPath: try #require(path, "bigmodel-bench was not found beside the test binary"))
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// Runs the tool with `arguments`, stdout and stderr captured through files (no pipe can fill up).
    package static func run(_ arguments: [String], in directory: String? = nil, environment: [String: String] = [:])
        throws
        -> ProcessResult
    {
        try runTogether([(arguments, environment)], in: directory)[0]
    }

    /// Starts one process of the tool per invocation (`environment` added to this process's), the next
    /// `stagger` seconds after the previous, and waits for all: the ranks of one job, as a launcher starts them.
    /// `launchers[i]`, when given, runs invocation `i` through a command (`unshare --uts sh -c …`): the tool and
    /// its arguments are appended to it.
    package static func runTogether(
        _ invocations: [(arguments: [String], environment: [String: String])], stagger: Double = 0,
        in directory: String? = nil, launchers: [[String]]? = nil
    ) throws -> [ProcessResult] {
        let tool = try #require(path, "bigmodel-bench was not found beside the test binary")
        let scratch = try TemporaryFolder("cli-io")
        defer { scratch.remove() }
        var started: [(Process, FileHandle, FileHandle, String, String)] = []
        for (index, invocation) in invocations.enumerated() {
            if index > 0, stagger > 0 { Thread.sleep(forTimeInterval: stagger) }
            let outPath = scratch.file("stdout-\(index)")
            let errPath = scratch.file("stderr-\(index)")
            _ = FileManager.default.createFile(atPath: outPath, contents: nil)
            _ = FileManager.default.createFile(atPath: errPath, contents: nil)
            let out = try #require(FileHandle(forWritingAtPath: outPath))
            let err = try #require(FileHandle(forWritingAtPath: errPath))
            let process = Process()
            let launcher = launchers?[index] ?? []
            process.executableURL = URL(fileURLWithPath: launcher.first ?? tool)
            process.arguments =
                launcher.isEmpty ? invocation.arguments : launcher.dropFirst() + [tool] + invocation.arguments
            if !invocation.environment.isEmpty {
                process.environment = ProcessInfo.processInfo.environment.merging(invocation.environment) { _, new in
                    new
                }
            }
            if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
            process.standardOutput = out
            process.standardError = err
            process.standardInput = FileHandle.nullDevice
            try process.run()
            started.append((process, out, err, outPath, errPath))
        }
        return try started.map { process, out, err, outPath, errPath in
            process.waitUntilExit()
            try out.close()
            try err.close()
            return ProcessResult(
                status: process.terminationStatus,
                stdout: String(decoding: try fileBytes(outPath), as: UTF8.self),
                stderr: String(decoding: try fileBytes(errPath), as: UTF8.self))
        }
    }
}

/// Runs a shell-less command (python3 …), capturing output; nil when it cannot be started.
package func runTool(_ executable: String, _ arguments: [String]) -> ProcessResult? {
    guard let scratch = try? TemporaryFolder("tool-io") else { return nil }
    defer { scratch.remove() }
    let outPath = scratch.file("stdout")
    let errPath = scratch.file("stderr")
    _ = FileManager.default.createFile(atPath: outPath, contents: nil)
    _ = FileManager.default.createFile(atPath: errPath, contents: nil)
    guard let out = FileHandle(forWritingAtPath: outPath), let err = FileHandle(forWritingAtPath: errPath) else {
        return nil
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = [executable] + arguments
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    do { try process.run() } catch { return nil }
    process.waitUntilExit()
    try? out.close()
    try? err.close()
    return ProcessResult(
        status: process.terminationStatus,
        stdout: String(decoding: (try? fileBytes(outPath)) ?? [], as: UTF8.self),
        stderr: String(decoding: (try? fileBytes(errPath)) ?? [], as: UTF8.self))
}
