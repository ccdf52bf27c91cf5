import Foundation
import TestSupport
import Testing

@testable import Harness
@testable import Loading
@testable import OSLayer
@testable import Placement
@testable import Probes
@testable import ResultsFormat
@testable import TensorEngine

#if canImport(Glibc)
import Glibc
#endif

/// The typed contract between `run` and its children: every value survives a round trip through its JSON
/// lines, and the reader copes with what a pipe delivers (partial lines, several at once, junk, huge lines).
@Suite struct ChildProtocolTests {
    @Test func requestRoundTrip() throws {
        let placement = PlacementRequest(
            deviceMap: .mode(.auto), maxMemory: DeviceBudgets([.accelerator(0): 1 << 30, .cpu: 2 << 30]),
            acceleratorMemory: DeviceBudgets([.accelerator(0): 1 << 30]), noSplit: ["LlamaDecoderLayer"],
            hostAvailableBytes: 123)
        let request = ChildRequest(
            task: .load, checkpoint: "/models/x", files: ["/models/x/model.safetensors"], strategy: .deviceMap,
            dtype: .f16,
            sampleIntervalMilliseconds: 0.5, ledgerBudgetBytes: 42, placement: placement, offloadFolder: "/tmp/off")
        let bytes = try ResultsCodec.encode(request)
        #expect(try ResultsCodec.decode(ChildRequest.self, from: bytes) == request)
        let text = String(decoding: bytes, as: UTF8.self)
        // accelerate's vocabulary, readable by a loader in any language.
        #expect(text.contains(#""max_memory" : {"#))
        #expect(text.contains(#""0" : 1073741824"#))
        #expect(text.contains(#""device_map" : "auto""#))
        #expect(text.contains(#""dtype" : "float16""#))
        #expect(text.contains(#""protocol_version" : 1"#))
        let userMap = PlacementRequest(
            deviceMap: .user(UserDeviceMap(["model.embed_tokens": .accelerator(0), "": .cpu])))
        let mapped = try ResultsCodec.decode(PlacementRequest.self, from: try ResultsCodec.encode(userMap))
        #expect(
            mapped.deviceMap
                == .user(UserDeviceMap(["": .cpu, "model.embed_tokens": .accelerator(0)], source: "device_map")))
    }

    @Test func everyEventRoundTrips() throws {
        let events: [ChildEvent] = [
            .hello(.init(pid: 7, subject: "engine", versions: ["bigmodel-bench": "0.1.0"])), .ready,
            .phaseBegan(.init(name: "init", seconds: 0.25, ledgerLiveBytes: 0)),
            .phaseEnded(.init(name: "init", seconds: 1.5, ledgerLiveBytes: nil)),
            .heartbeat, .floor(FloorInfo(bytes: 10, seconds: 1, gigabytesPerSecond: 1e-8, method: "m")),
            .failure(
                ChildFailure(kind: .signal, message: "the child received SIGSEGV", signal: 11, signalName: "SIGSEGV")),
            .measurement(MemoryMeasuringTests.ClaimTests.measurement(predicted: 100, ledger: 100)),
        ]
        for event in events {
            let line = try JSONLines.encode(event)
            #expect(line.last == 0x0A)
            #expect(!line.dropLast().contains(0x0A), "one event, one line")
            #expect(try JSONLines.decode(ChildEvent.self, from: Array(line.dropLast())) == event)
        }
        #expect(String(decoding: try JSONLines.encode(ChildEvent.ready), as: UTF8.self) == "{\"event\":\"ready\"}\n")
        #expect(
            String(
                decoding: try JSONLines.encode(ChildEvent.phaseBegan(.init(name: "a", seconds: 1, ledgerLiveBytes: 2))),
                as: UTF8.self)
                == "{\"event\":\"phase_began\",\"ledger_live_bytes\":2,\"name\":\"a\",\"seconds\":1}\n")
        // The line the fatal-signal handler writes is an error event naming the signal.
        let line = ChildEventWriter.signalLine(SIGBUS, name: "SIGBUS")
        #expect(
            try JSONLines.decode(ChildEvent.self, from: Array(line.dropLast()))
                == .failure(
                    ChildFailure(
                        kind: .signal, message: "the child received SIGBUS", signal: SIGBUS, signalName: "SIGBUS")))
    }

    @Test func lineReaderHandlesPartialJunkAndHugeLines() throws {
        var reader = EventLineReader()
        let ready = try JSONLines.encode(ChildEvent.ready)
        let beat = try JSONLines.encode(ChildEvent.heartbeat)
        #expect(reader.feed(Array(ready.prefix(5))) == [])
        #expect(reader.feed(Array(ready.dropFirst(5)) + beat + Array("not json\n".utf8)) == [.ready, .heartbeat])
        #expect(reader.undecodable == ["not json"])
        // A line past the cap is dropped whole, and the reader recovers at the next line.
        #expect(reader.feed([UInt8](repeating: 0x61, count: EventLineReader.maximumLineBytes + 1)) == [])
        #expect(reader.feed(Array("tail of the huge line\n".utf8) + ready) == [.ready])
        #expect(reader.undecodable.last == "(a line over \(EventLineReader.maximumLineBytes) bytes, dropped)")
    }

    /// The judge: only a delivered measurement from a child that exited 0 by itself is judged on its claims.
    @Test func judgeNamesEveryWayAChildCanFail() {
        let judge = Judge(tolerance: .default)
        let run = Scenario.Run(id: "naive", strategy: .naive, dtype: nil, placement: nil)
        let ok = ChildExit(
            termination: .exited(code: 0),
            resourceUsage: ChildResourceUsage(maxRSSBytes: 0, userCPUSeconds: 0, systemCPUSeconds: 0))
        func verdict(_ change: (inout ChildRunner.Outcome) -> Void) -> (Verdict, String) {
            var outcome = ChildRunner.Outcome()
            outcome.exit = ok
            outcome.measurement = MemoryMeasuringTests.ClaimTests.measurement(predicted: 1 << 30, ledger: 1 << 30)
            change(&outcome)
            let result = judge.judge(run: run, repeatIndex: 0, outcome: outcome, floor: nil)
            return (result.verdict, result.verdictDetail)
        }
        #expect(verdict { _ in }.0 == .pass)
        #expect(
            verdict { $0.stop = .stalled(seconds: 60, state: "stopped (SIGSTOP?)") }
                == (.error, "watchdog: the child sent nothing for 60 s (it was stopped (SIGSTOP?)) and was killed"))
        #expect(
            verdict { $0.stop = .timedOut(seconds: 600) } == (
                .error, "watchdog: the child ran past its 600 s limit and was killed"
            ))
        #expect(verdict { $0.stop = .interrupted } == (.error, "interrupted by the user"))
        // Died by a signal even after sending its measurement: error.
        #expect(
            verdict { $0.exit?.termination = .signaled(signal: SIGSEGV, coreDumped: false) }.1
                == "the child died of SIGSEGV")
        #expect(
            verdict { $0.failure = ChildFailure(kind: .signal, message: "m", signal: 11, signalName: "SIGSEGV") }
                == (.error, "the child received SIGSEGV and did not survive it cleanly"))
        #expect(
            verdict { $0.failure = ChildFailure(kind: .badData, message: "x.safetensors: HeaderTooSmall: …") }
                == (.error, "the child reported bad_data: x.safetensors: HeaderTooSmall: …"))
        #expect(verdict { $0.failure = ChildFailure(kind: .outOfMemory, message: "out of memory") }.0 == .oom)
        #expect(
            verdict { $0.exit?.termination = .exited(code: 1) } == (
                .error, "the child exited with status 1 after its measurement"
            ))
        #expect(verdict { $0.measurement = nil } == (.error, "the child exited without sending its measurement"))
        #expect(verdict { $0.spawnError = "posix" } == (.error, "the child could not be started: posix"))
    }
}

/// Children never outlive or hang `run`, and a child that crashes is never `pass` — through the executable,
/// on a scenario whose runs each last long enough (a 100 MB model, repeated) to catch a child mid-load.
@Suite(.serialized) struct ChildFaultTests {
    static let slowScenario = tinyScenario(
        runs: #"[{"strategy": "naive"}]"#, extra: #", "repeat": 30, "stall_timeout_s": 1"#
    )
    .replacingOccurrences(of: #""vocab_size": 8000"#, with: #""vocab_size": 40000"#)
    .replacingOccurrences(of: #""hidden_size": 256"#, with: #""hidden_size": 1024"#)
    .replacingOccurrences(of: #""num_attention_heads": 4"#, with: #""num_attention_heads": 8"#)

    /// Starts `run` on the slow scenario; returns the process and the results path.
    static func startRun(_ folder: TemporaryFolder) throws -> (Process, String) {
        let scenario = try folder.write("tiny.json", text: slowScenario)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try #require(Executable.path))
        process.arguments = ["run", scenario, "--out", folder.file("out"), "--work-dir", folder.file("work")]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return (process, folder.file("out/tiny.json"))
    }

    /// The pid of a child of `parent` measuring a load (not the floor), waiting up to `seconds`.
    static func loadChild(of parent: pid_t, seconds: Double = 120) -> pid_t? {
        child(of: parent, marked: "-naive-", seconds: seconds)
    }

    /// The pid of a child of `parent` whose request file names `marker` (`-naive-`, `-floor.`).
    static func child(of parent: pid_t, marked marker: String, seconds: Double = 120) -> pid_t? {
        let deadline = MonotonicClock.monotonicSeconds() + seconds
        while MonotonicClock.monotonicSeconds() < deadline {
            for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
                guard let pid = pid_t(entry), parentPid(of: pid) == parent,
                    let environment = try? String(contentsOfFile: "/proc/\(pid)/environ", encoding: .utf8),
                    environment.contains(marker)
                else { continue }
                return pid
            }
            MonotonicClock.sleep(seconds: 0.002)
        }
        return nil
    }

    static func parentPid(of pid: pid_t) -> pid_t? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 1 ? pid_t(fields[1]) : nil
    }

    /// Gone: no such process, or a zombie waiting for a reaper (it holds no memory).
    static func isGone(_ pid: pid_t) -> Bool {
        guard let state = ProcessState.read(pid: pid) else { return true }
        return state.code == "Z" || state.code == "X"
    }

    static func results(_ path: String, where condition: (ScenarioResults) -> Bool, seconds: Double = 120)
        -> ScenarioResults?
    {
        let deadline = MonotonicClock.monotonicSeconds() + seconds
        while MonotonicClock.monotonicSeconds() < deadline {
            if let data = FileManager.default.contents(atPath: path),
                let results = try? ResultsCodec.decoder.decode(ScenarioResults.self, from: data),
                condition(results)
            {
                return results
            }
            MonotonicClock.sleep(seconds: 0.02)
        }
        return nil
    }

    @Test func killingRunKillsItsChild() throws {
        let folder = try TemporaryFolder("pdeath")
        defer { folder.remove() }
        let (process, _) = try Self.startRun(folder)
        let child = try #require(Self.loadChild(of: process.processIdentifier))
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        let deadline = MonotonicClock.monotonicSeconds() + 2
        while !Self.isGone(child) && MonotonicClock.monotonicSeconds() < deadline {
            MonotonicClock.sleep(seconds: 0.01)
        }
        #expect(
            Self.isGone(child),
            "child \(child) still \(ProcessState.read(pid: child)?.description ?? "?") 2 s after its parent was killed")
    }

    @Test func stoppedChildIsAnErrorByTheWatchdog() throws {
        let folder = try TemporaryFolder("sigstop")
        defer { folder.remove() }
        let (process, resultsPath) = try Self.startRun(folder)
        defer { kill(process.processIdentifier, SIGKILL) }
        let child = try #require(Self.loadChild(of: process.processIdentifier))
        kill(child, SIGSTOP)
        let results = try #require(Self.results(resultsPath) { $0.runs.contains { $0.verdict == .error } })
        kill(process.processIdentifier, SIGINT)
        process.waitUntilExit()
        let failed = try #require(results.runs.first { $0.verdict == .error })
        #expect(
            failed.verdictDetail
                == "watchdog: the child sent nothing for 1 s (it was stopped (SIGSTOP?)) and was killed")
        #expect(failed.exit.signalName == "SIGKILL")
        #expect(Self.isGone(child))
        #expect(process.terminationStatus == 130)
    }

    /// The floor's child stopped (SIGSTOP) while it reads a cold checkpoint: the watchdog kills it, the results
    /// say why there is no floor, the report says so where the floor is described, and no run has a × floor.
    @Test func stoppedFloorChildIsRecorded() throws {
        let folder = try TemporaryFolder("floorstop")
        defer { folder.remove() }
        let scenario = try folder.write(
            "tiny.json",
            text: Self.slowScenario.replacingOccurrences(of: #""repeat": 30"#, with: #""repeat": 1, "cache": "cold""#))
        let process = try Executable.start([
            "run", scenario, "--out", folder.file("out"), "--work-dir", folder.file("work"),
        ])
        defer { kill(process.processIdentifier, SIGKILL) }
        let child = try #require(Self.child(of: process.processIdentifier, marked: "-floor."))
        kill(child, SIGSTOP)
        process.waitUntilExit()
        let results = try ResultsFile.load(path: folder.file("out/tiny.json"))
        #expect(results.floor == nil)
        #expect(
            results.floorFailure
                == "watchdog: the child sent nothing for 1 s (it was stopped (SIGSTOP?)) and was killed")
        #expect(results.runs.count == 1 && results.runs.allSatisfy { $0.floorMultiple == nil && $0.verdict == .pass })
        #expect(Self.isGone(child))
        #expect(process.terminationStatus == 0)
        let report = try String(contentsOfFile: folder.file("out/tiny.md"), encoding: .utf8)
        let floorRow = markdownTableRows(report).first { $0.first == "floor" }
        #expect(
            floorRow == [
                "floor",
                "not measured: watchdog: the child sent nothing for 1 s (it was stopped (SIGSTOP?)) and was killed; the runs have no × floor",
            ])
    }

    @Test func crashedChildIsAnError() throws {
        let folder = try TemporaryFolder("sigsegv")
        defer { folder.remove() }
        let (process, resultsPath) = try Self.startRun(folder)
        defer { kill(process.processIdentifier, SIGKILL) }
        let child = try #require(Self.loadChild(of: process.processIdentifier))
        kill(child, SIGSEGV)
        let results = try #require(Self.results(resultsPath) { $0.runs.contains { $0.verdict == .error } })
        kill(process.processIdentifier, SIGINT)
        process.waitUntilExit()
        let failed = try #require(results.runs.first { $0.verdict == .error })
        #expect(failed.verdictDetail == "the child died of SIGSEGV")
        #expect(failed.exit.signalName == "SIGSEGV")
        #expect(failed.measurement == nil)
    }
}
