import Foundation
import OSLayer
import ResultsFormat

/// Reads the memray capture a Python driver wrote under `--attribute`, after the measured process has exited
/// (reading it there would cost the measured process memory): `python/bigmodel_bench_attribution.py` gets a
/// typed request on standard input and answers an ``Attribution`` on standard output. The capture and the
/// exchange's files are removed whatever happens.
package enum AttributionReader {
    /// How many stacks the results keep.
    static let topStacks = 8
    /// A capture of a big load reads in seconds; past this the reader is killed.
    static let timeoutSeconds = 300.0

    struct Request: Codable {
        var captureFile: String
        var top: Int
    }

    /// The attribution, or why there is none (one line).
    package static func read(capture: String, python: String, script: String) -> Result<Attribution, ReaderFailure> {
        let stem = capture + ".reader"
        defer {
            for path in [capture, stem + ".request.json", stem + ".reply.json", stem + ".stderr"] {
                try? FileManager.default.removeItem(atPath: path)
            }
        }
        guard FileManager.default.fileExists(atPath: capture) else {
            return .failure(ReaderFailure("the driver wrote no memray capture (\(capture))"))
        }
        do {
            let request = try ResultsCodec.encoder.encode(Request(captureFile: capture, top: topStacks))
            try request.write(to: URL(fileURLWithPath: stem + ".request.json"))
            let child = try ChildProcess.spawn(
                executable: python, arguments: [script], environment: ScenarioRunner.pythonEnvironment,
                options: .init(
                    standardInput: .file(stem + ".request.json"), standardOutput: .file(stem + ".reply.json"),
                    standardError: .file(stem + ".stderr")))
            let exit = try waitBounded(child)
            guard exit.termination == .exited(code: 0) else {
                let said = (try? String(contentsOfFile: stem + ".stderr", encoding: .utf8)) ?? ""
                return .failure(
                    ReaderFailure(
                        "memray's capture could not be read (\(exit.termination)): "
                            + said.trimmingCharacters(in: .whitespacesAndNewlines)))
            }
            let reply = try Data(contentsOf: URL(fileURLWithPath: stem + ".reply.json"))
            return .success(try ResultsCodec.decoder.decode(Attribution.self, from: reply))
        } catch let failure as ReaderFailure {
            return .failure(failure)
        } catch {
            return .failure(ReaderFailure("memray's capture could not be read: \(FoundationErrorText.cause(error))"))
        }
    }

    /// Waits for the reader, killing it past ``timeoutSeconds`` or when the run is interrupted.
    static func waitBounded(_ child: ChildProcess) throws -> ChildExit {
        let deadline = MonotonicClock.monotonicSeconds() + timeoutSeconds
        while true {
            if let exit = try child.poll() { return exit }
            if SignalTrap.interrupted || MonotonicClock.monotonicSeconds() > deadline {
                _ = try child.kill()
                throw ReaderFailure(
                    SignalTrap.interrupted
                        ? "interrupted while memray's capture was read"
                        : "reading memray's capture took over \(Int(timeoutSeconds)) s")
            }
            usleep(20_000)
        }
    }

    package struct ReaderFailure: Error, CustomStringConvertible {
        package let description: String
        init(_ description: String) { self.description = description }
    }
}
