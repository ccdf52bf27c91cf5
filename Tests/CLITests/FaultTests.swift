import Foundation
import TestSupport
import Testing

@testable import Harness
@testable import Reports
@testable import ResultsFormat

#if canImport(Glibc)
import Glibc
#endif

/// Hostile inputs through the executable: each is refused at once with its exit status and one line naming
/// the file and the rule, and nothing is left behind. (Issue 14's classes: FIFOs and directories where files
/// belong, oversized JSON, configs whose sizes overflow, run ids that are not file names.)
@Suite struct FaultTests {
    /// Runs the tool and checks the status, that stderr is exactly one line, and that it contains `message`.
    static func refused(_ arguments: [String], status: Int32, message: String) throws {
        let result = try Executable.run(arguments)
        #expect(result.status == status, "\(arguments): \(result.stderr)")
        #expect(result.stderrLines.count == 1, "\(arguments): \(result.stderr)")
        #expect(result.stderr.contains(message), "\(arguments): \(result.stderr)")
    }

    static func fifo(_ folder: TemporaryFolder, _ name: String) throws -> String {
        let path = folder.file(name)
        #expect(mkfifo(path, 0o600) == 0)
        return path
    }

    /// A FIFO opened for reading would wait for a writer forever; every input is refused as not a regular file.
    @Test func fifosAreRefusedNotWaitedOn() throws {
        let folder = try TemporaryFolder("fifo")
        defer { folder.remove() }
        let weights = try Self.fifo(folder, "model.safetensors")
        try Self.refused(["inspect", weights], status: 65, message: "\(weights): NotARegularFile: it is a FIFO")
        try Self.refused(["verify", weights], status: 65, message: "\(weights): NotARegularFile: it is a FIFO")
        let scenario = try Self.fifo(folder, "scenario.json")
        try Self.refused(
            ["run", scenario, "--out", folder.file("out"), "--work-dir", folder.file("work")], status: 65,
            message: "\(scenario): NotARegularFile: it is a FIFO")
        let config = try Self.fifo(folder, "config.json")
        try Self.refused(
            ["generate", "--config", config, "--dry-run"], status: 65,
            message: "\(config): NotARegularFile: it is a FIFO")
        let sharded = folder.file("sharded")
        try FileManager.default.createDirectory(atPath: sharded, withIntermediateDirectories: false)
        let index = try Self.fifo(folder, "sharded/model.safetensors.index.json")
        try Self.refused(["inspect", sharded], status: 65, message: "\(index): NotARegularFile: it is a FIFO")
        #expect(!FileManager.default.fileExists(atPath: folder.file("out/scenario.json")))
    }

    @Test func aDirectoryIsNotAScenario() throws {
        let folder = try TemporaryFolder("dirscenario")
        defer { folder.remove() }
        try Self.refused(
            ["run", folder.path, "--out", folder.file("out")], status: 65,
            message: "\(folder.path): NotARegularFile: it is a directory")
    }

    /// An index over the 16 MiB cap is refused from fstat, before a byte is parsed.
    @Test func oversizedIndexIsRefusedBeforeItIsRead() throws {
        let folder = try TemporaryFolder("bigindex")
        defer { folder.remove() }
        let index = folder.file("model.safetensors.index.json")
        #expect(FileManager.default.createFile(atPath: index, contents: nil))
        #expect(truncate(index, 200_000_000) == 0)
        let start = ContinuousClock.now
        try Self.refused(
            ["inspect", folder.path], status: 65,
            message: "\(index): TooLarge: 200000000 bytes, more than the 16777216-byte limit")
        #expect(ContinuousClock.now - start < .seconds(10))
    }

    /// A dimension of 2^32 is refused at the field (the cap is 2^31); dimensions under it whose product
    /// overflows are refused once the model is built — never an arithmetic trap.
    @Test func configsWhoseSizesOverflowAreRefused() throws {
        let folder = try TemporaryFolder("hugeconfig")
        defer { folder.remove() }
        let big = try folder.write(
            "big.json",
            text: tinyModelConfig.replacingOccurrences(of: #""hidden_size": 256"#, with: #""hidden_size": 4294967296"#))
        try Self.refused(
            ["generate", "--config", big, "--dry-run"], status: 65,
            message:
                "field 'hidden_size': is 4294967296, larger than any model dimension this tool accepts (2147483648 = 2^31)"
        )
        let wide = try folder.write(
            "wide.json",
            text: tinyModelConfig.replacingOccurrences(of: #""hidden_size": 256"#, with: #""hidden_size": 2147483648"#)
                .replacingOccurrences(of: #""vocab_size": 8000"#, with: #""vocab_size": 2147483648"#))
        try Self.refused(
            ["generate", "--config", wide, "--dry-run"], status: 65, message: "(the config's dimensions are too large)")
    }

    /// A config whose dtype is not floating is refused, not generated as float32 with its config rewritten.
    @Test func anIntegerConfigDTypeIsRefused() throws {
        let folder = try TemporaryFolder("int8config")
        defer { folder.remove() }
        let config = try folder.write(
            "int8.json",
            text: tinyModelConfig.replacingOccurrences(
                of: #""torch_dtype": "bfloat16""#, with: #""torch_dtype": "int8""#))
        try Self.refused(
            ["generate", "--config", config, "--out", folder.file("out")], status: 65,
            message: "field 'torch_dtype': is int8, not a floating dtype")
        #expect(!FileManager.default.fileExists(atPath: folder.file("out")))
    }

    /// Foundation's file errors are one plain line with the path and the cause, never an NSError dump.
    @Test func reportOutOnAFileIsOnePlainLine() throws {
        let folder = try TemporaryFolder("reportout")
        defer { folder.remove() }
        let file = try folder.write("file.txt", text: "x")
        let results = ReportFixtures.path(ReportFixtures.smoke)
        try Self.refused(
            ["report", results, "--out", file + "/sub"], status: 74,
            message: "\(file)/sub/smoke-peaks.svg: cannot write: \(file) is a file, not a folder")
        try Self.refused(
            ["report", results, "--out", file], status: 74, message: "\(file)/smoke-peaks.svg: cannot write: ")
        let dump = try Executable.run(["report", results, "--out", file])
        #expect(!dump.stderr.contains("NSCocoaErrorDomain") && !dump.stderr.contains("UserInfo"))
    }

    /// --out and --work-dir naming a file are usage errors, said before anything is prepared (the argument
    /// parser's usage error: the message, the usage line and where help is).
    @Test func runFoldersThatAreFilesAreUsageErrors() throws {
        let folder = try TemporaryFolder("runfolders")
        defer { folder.remove() }
        let file = try folder.write("file.txt", text: "x")
        let scenario = try folder.write("tiny.json", text: tinyScenario())
        let work = try Executable.run(["run", scenario, "--work-dir", file, "--out", folder.file("out")])
        #expect(work.status == 64)
        #expect(work.stderrLines.first == "Error: --work-dir \(file) is a file, not a folder", "\(work.stderr)")
        let out = try Executable.run(["run", scenario, "--out", file, "--work-dir", folder.file("work")])
        #expect(out.status == 64)
        #expect(out.stderrLines.first == "Error: --out \(file) is a file, not a folder", "\(out.stderr)")
        #expect(try folder.contents() == ["file.txt", "tiny.json"])
    }

    /// A results file with a negative byte count where none can be (a ledger peak) is refused, as is a FIFO.
    @Test func resultsFilesAreValidatedAndOpenedSafely() throws {
        let folder = try TemporaryFolder("negresults")
        defer { folder.remove() }
        var results = try ReportFixtures.load(ReportFixtures.smoke)
        results.runs[0].measurement?.engine?.ledgerPeakBytes = -5
        let negative = try ReportFixtures.write(results, to: folder, as: "negative.json")
        let baseline = ReportFixtures.path(ReportFixtures.smoke)
        try Self.refused(
            ["compare", baseline, negative], status: 65,
            message:
                "\(negative): not a valid results file: $.runs[0].measurement.ledger_peak_bytes is -5; a byte count is never negative"
        )
        let fifo = try Self.fifo(folder, "fifo.json")
        try Self.refused(["compare", baseline, fifo], status: 65, message: "\(fifo): NotARegularFile: it is a FIFO")
        // A byte count that is not a whole number, or beyond 64 bits: Foundation says only "not valid JSON";
        // the message names the field.
        let text = try String(contentsOfFile: negative, encoding: .utf8)
        for (literal, rule) in [
            ("1.5", "a byte count is a whole number of bytes that fits in 64 bits"),
            ("18446744073709551616", "a byte count is a whole number of bytes that fits in 64 bits"),
        ] {
            let bad = try folder.write(
                "bad.json",
                text: text.replacingOccurrences(
                    of: "\"ledger_peak_bytes\" : -5", with: "\"ledger_peak_bytes\" : \(literal)"))
            try Self.refused(
                ["report", bad, "--out", "-"], status: 65,
                message:
                    "\(bad): not a valid results file: $.runs[0].measurement.ledger_peak_bytes is \(literal); \(rule)")
        }
    }

    /// weight_map entries that are not shard files: a folder is bad data (65), the folder itself is said to be so.
    @Test func weightMapEntriesThatAreNotFiles() throws {
        let folder = try TemporaryFolder("weightmap")
        defer { folder.remove() }
        let source = FixturePaths.path("gemma-tiny-bf16-sharded")
        for name in try FileManager.default.contentsOfDirectory(atPath: source) {
            try FileManager.default.copyItem(atPath: source + "/" + name, toPath: folder.file(name))
        }
        let index = folder.file("model.safetensors.index.json")
        let original = try String(contentsOfFile: index, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: folder.file("sub"), withIntermediateDirectories: false)
        try original.replacingOccurrences(of: "model-00001-of-00004.safetensors", with: "sub").write(
            toFile: index, atomically: true, encoding: .utf8)
        try Self.refused(
            ["inspect", folder.path], status: 65, message: "\(folder.file("sub")): NotARegularFile: it is a directory")
        try original.replacingOccurrences(of: "model-00001-of-00004.safetensors", with: ".").write(
            toFile: index, atomically: true, encoding: .utf8)
        try Self.refused(
            ["inspect", folder.path], status: 65,
            message: "ShardOutsideFolder: shard '.' names the checkpoint folder itself, not a file in it")
    }

    /// 600,000-token vocabulary, untied: 617 MB of bfloat16 in 5 shards of ≤ 8 MB (the embeddings alone): seconds
    /// of writing in a debug build, so a signal lands mid-write.
    static var bigConfig: String {
        tinyModelConfig.replacingOccurrences(of: #""vocab_size": 8000"#, with: #""vocab_size": 600000"#)
    }

    /// Starts the tool, sends `signal` after `delay` seconds, and returns its status and stderr lines (progress
    /// lines left out).
    static func interrupted(_ arguments: [String], _ signal: Int32, after delay: Double) throws -> (Int32, [Substring])
    {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try #require(Executable.path))
        process.arguments = arguments
        let stderr = Pipe()
        process.standardError = stderr
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        Thread.sleep(forTimeInterval: delay)
        kill(process.processIdentifier, signal)
        let text = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (
            process.terminationStatus,
            text.split(separator: "\n").filter { !$0.hasPrefix("generate: ") && !$0.hasPrefix("reshard: ") }
        )
    }

    /// SIGINT or SIGTERM while `generate` writes a many-shard checkpoint (soon after it starts, and mid-write):
    /// exit 130, one line saying the partial checkpoint was removed, and no `.NAME.partial-PID` folder left.
    @Test(arguments: [(SIGINT, 0.05), (SIGTERM, 0.05), (SIGINT, 0.8), (SIGTERM, 0.8)])
    func signalsDuringGenerateLeaveNothing(_ signal: Int32, _ delay: Double) throws {
        let folder = try TemporaryFolder("gensignal")
        defer { folder.remove() }
        let config = try folder.write("config.json", text: Self.bigConfig)
        let (status, lines) = try Self.interrupted(
            ["generate", "--config", config, "--out", folder.file("out"), "--max-shard-size", "8MB"], signal,
            after: delay)
        #expect(status == 130, "\(lines)")
        #expect(
            lines == ["bigmodel-bench: error: \(folder.file("out")): interrupted; the partial checkpoint was removed"])
        #expect(try folder.contents() == ["config.json"])
    }

    /// The same for `reshard` converting that checkpoint to float32.
    @Test(arguments: [SIGINT, SIGTERM])
    func signalsDuringReshardLeaveNothing(_ signal: Int32) throws {
        let folder = try TemporaryFolder("reshardsignal")
        defer { folder.remove() }
        let config = try folder.write("config.json", text: Self.bigConfig)
        #expect(
            try Executable.run(["generate", "--config", config, "--out", folder.file("src"), "--max-shard-size", "8MB"])
                .status == 0)
        let (status, lines) = try Self.interrupted(
            ["reshard", folder.file("src"), "--out", folder.file("dst"), "--dtype", "float32"], signal, after: 0.5)
        #expect(status == 130, "\(lines)")
        #expect(
            lines == ["bigmodel-bench: error: \(folder.file("dst")): interrupted; the partial checkpoint was removed"])
        #expect(try folder.contents() == ["config.json", "src"])
    }

    /// Run ids become file names: a slash, a NUL, 300 characters or an empty id are refused at the JSON path.
    @Test(arguments: [
        #""a/b""#, #""a\u0000b""#, "\"" + String(repeating: "x", count: 300) + "\"", #""""#, #"".hidden""#,
    ])
    func runIdsMustBeFileNames(_ id: String) throws {
        let folder = try TemporaryFolder("runid")
        defer { folder.remove() }
        let scenario = try folder.write(
            "tiny.json", text: tinyScenario(runs: #"[{"id": \#(id), "strategy": "naive"}]"#))
        try Self.refused(
            ["run", scenario, "--out", folder.file("out"), "--work-dir", folder.file("work")], status: 65,
            message: "$.runs[0].id: must be 1–100 ASCII letters, digits, '-', '_', '.' or '@'")
        #expect(!FileManager.default.fileExists(atPath: folder.file("work")))
    }

    /// Control characters spelled as JSON escapes in a key or value are quoted escaped, on one line: a newline
    /// in a strategy name, a NUL in a weight_map value (found by the JSON input fuzzer).
    @Test func controlCharactersInInputsArePrintedEscaped() throws {
        let folder = try TemporaryFolder("control")
        defer { folder.remove() }
        let scenario = try folder.write("tiny.json", text: tinyScenario(runs: #"[{"strategy": "naive\nmore"}]"#))
        try Self.refused(
            ["run", scenario, "--out", folder.file("out"), "--work-dir", folder.file("work")], status: 65,
            message: "$.runs[0].strategy: unknown strategy 'naive\\nmore'")
        let sharded = folder.file("sharded")
        try FileManager.default.createDirectory(atPath: sharded, withIntermediateDirectories: false)
        _ = try folder.write(
            "sharded/model.safetensors.index.json",
            text: #"{"metadata": {}, "weight_map": {"w": "a\u0000\u001b[31mb.safetensors"}}"#)
        let result = try Executable.run(["inspect", sharded])
        #expect(result.status == 65 || result.status == 66, "\(result.stderr)")
        #expect(result.stderrLines.count == 1, "\(result.stderr)")
        #expect(result.stderr.contains("a\\u{0}\\u{1B}[31mb.safetensors"), "\(result.stderr)")
        #expect(!result.stderr.unicodeScalars.contains { $0.value < 0x20 && $0 != "\n" })
    }

    /// A second `run` of a scenario on the same --out (or --work-dir) while the first is measuring is refused
    /// at once (74), naming the first's pid; the first finishes undisturbed and no lock file is left.
    @Test func concurrentRunsOnOneFolderAreRefused() throws {
        let folder = try TemporaryFolder("concurrent")
        defer { folder.remove() }
        let scenario = try folder.write("tiny.json", text: tinyScenario(extra: #", "repeat": 40"#))
        let first = try Executable.start([
            "run", scenario, "--out", folder.file("out"), "--work-dir", folder.file("work"),
        ])
        defer { if first.isRunning { kill(first.processIdentifier, SIGKILL) } }
        let deadline = ContinuousClock.now + .seconds(120)
        while ContinuousClock.now < deadline, !FileManager.default.fileExists(atPath: folder.file("out/tiny.json")) {
            Thread.sleep(forTimeInterval: 0.05)
        }
        let lock = folder.file("out/.tiny.lock")
        try Self.refused(
            ["run", scenario, "--out", folder.file("out"), "--work-dir", folder.file("work2")], status: 74,
            message:
                "\(lock): another run (pid \(first.processIdentifier)) of scenario 'tiny' is using \(folder.file("out")); wait for it to finish or give another --out"
        )
        let workLock = folder.file("work/runs/.tiny.lock")
        try Self.refused(
            ["run", scenario, "--out", folder.file("out2"), "--work-dir", folder.file("work")], status: 74,
            message:
                "\(workLock): another run (pid \(first.processIdentifier)) of scenario 'tiny' is using \(folder.file("work/runs")); wait for it to finish or give another --work-dir"
        )
        // The refused run took the --out lock first and gave it back: out2 holds nothing.
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.file("out2")).isEmpty)
        kill(first.processIdentifier, SIGINT)
        first.waitUntilExit()
        #expect(first.terminationStatus == 130)
        #expect(!FileManager.default.fileExists(atPath: lock))
        #expect(!FileManager.default.fileExists(atPath: workLock))
    }

    /// A `run` killed with SIGKILL leaves its lock files behind (no handler runs), but not its locks: the next run
    /// of the scenario on the same folders takes them and finishes (0), and then removes the files.
    @Test func locksLeftBySIGKILLDoNotBlockTheNextRun() throws {
        let folder = try TemporaryFolder("killedlock")
        defer { folder.remove() }
        let scenario = try folder.write("tiny.json", text: tinyScenario(extra: #", "repeat": 40"#))
        let arguments = ["run", scenario, "--out", folder.file("out"), "--work-dir", folder.file("work")]
        let first = try Executable.start(arguments)
        defer { if first.isRunning { kill(first.processIdentifier, SIGKILL) } }
        let deadline = ContinuousClock.now + .seconds(120)
        while ContinuousClock.now < deadline, !FileManager.default.fileExists(atPath: folder.file("out/tiny.json")) {
            Thread.sleep(forTimeInterval: 0.05)
        }
        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()
        let locks = [folder.file("out/.tiny.lock"), folder.file("work/runs/.tiny.lock")]
        #expect(locks.allSatisfy { FileManager.default.fileExists(atPath: $0) })
        // The same scenario (its name is the lock's), once, on the same --out and --work-dir.
        let again = try folder.write("again.json", text: tinyScenario())
        let next = try Executable.run(["run", again] + Array(arguments.dropFirst(2)))
        #expect(next.status == 0, "\(next.stderr)")
        #expect(try ResultsFile.load(path: folder.file("out/tiny.json")).complete)
        #expect(!locks.contains { FileManager.default.fileExists(atPath: $0) })
    }

    /// Ctrl-C while `run` generates its checkpoint: 130, and neither a partial checkpoint nor a lock is left.
    @Test(arguments: [SIGINT, SIGTERM])
    func signalsWhileRunGeneratesLeaveNothing(_ signal: Int32) throws {
        let folder = try TemporaryFolder("rungen")
        defer { folder.remove() }
        let scenario = try folder.write(
            "tiny.json", text: tinyScenario().replacingOccurrences(of: tinyModelConfig, with: Self.bigConfig))
        let (status, lines) = try Self.interrupted(
            ["run", scenario, "--out", folder.file("out"), "--work-dir", folder.file("work")], signal, after: 0.5)
        #expect(status == 130, "\(lines)")
        let errors = lines.filter { $0.hasPrefix("bigmodel-bench: ") }
        #expect(
            errors.count == 1 && errors[0].hasSuffix(": interrupted; the partial checkpoint was removed"), "\(lines)")
        let checkpoints = try FileManager.default.contentsOfDirectory(atPath: folder.file("work/checkpoints"))
        #expect(checkpoints.filter { $0 != ".lock" }.isEmpty, "\(checkpoints)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.file("out")).isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.file("work/runs")).isEmpty)
    }

    /// A bad size option names the rule and shows the grammar (ArgumentParser's usage error, exit 64).
    @Test(arguments: [("0", "a size must be more than 0 bytes"), ("5XB", "not a size")])
    func badSizesSayWhy(_ value: String, _ reason: String) throws {
        for arguments in [
            ["generate", "--config", "config.json", "--max-shard-size", value],
            ["run", "smoke.json", "--memory-limit", value],
        ] {
            let result = try Executable.run(arguments)
            #expect(result.status == 64)
            let option = arguments[arguments.count - 2]
            #expect(
                result.stderrLines.first
                    == "Error: The value '\(value)' is invalid for '\(option) <\(option.dropFirst(2))>': \(reason); use a number of bytes or a size such as 5GB, 1.5GiB or 500MB",
                "\(result.stderr)")
        }
    }

    /// Text where a safetensors file belongs is called what it is, not only an impossible header length.
    @Test func textIsNotASafetensorsFile() throws {
        let folder = try TemporaryFolder("text")
        defer { folder.remove() }
        let readme = try folder.write("model.safetensors", text: "# A model\nSee the weights elsewhere.\n")
        try Self.refused(
            ["inspect", readme], status: 65,
            message:
                "\(readme): HeaderTooLarge: header length 7306087009985044515 exceeds the limit of 100000000 bytes; the file begins with the text \"# A mode\": not a safetensors file"
        )
        let pointer = try folder.write("lfs.safetensors", text: "version https://git-lfs.github.com/spec/v1\n")
        try Self.refused(
            ["inspect", pointer], status: 65,
            message: "the file begins with the text \"version \": not a safetensors file")
    }
}
