import Foundation
import TestSupport
import Testing

@testable import OSLayer
@testable import Probes

#if canImport(Glibc)
import Glibc
#endif

extension MemoryMeasuringTests {
    /// Child processes (OSLayer): exit statuses, descriptors, environment, termination; the signal trap. Serialized with every other suite that reads this process's memory (see `MemoryMeasuringTests`).
    @Suite(.serialized)
    struct ChildProcessTests: ProbeTestHelpers {
        // MARK: Children

        private let plainEnvironment = ["PATH": "/usr/bin:/bin", "LC_ALL": "C"]

        @Test func childKilledBySIGKILL() throws {
            let child = try ChildProcess.spawn(
                executable: "/bin/sh", arguments: ["-c", "kill -9 $$"], environment: plainEnvironment)
            let exit = try child.wait()
            #expect(exit.termination == .signaled(signal: SIGKILL, coreDumped: false))
            #expect(exit.termination.signalName == "SIGKILL")
            #expect(exit.termination.isKill)
            #expect(try child.wait() == exit)  // reaped once, remembered
            #expect(child.hasExited)
        }

        @Test func childExitStatus() throws {
            let child = try ChildProcess.spawn(
                executable: "/bin/sh", arguments: ["-c", "exit 3"], environment: plainEnvironment)
            let exit = try child.wait()
            #expect(exit.termination == .exited(code: 3))
            #expect(exit.termination.signalName == nil)
            #expect(exit.resourceUsage.userCPUSeconds >= 0)
            // A failed exec is reported by the fork path, not silently exit 127.
            #expect(throws: SystemCallError.self) {
                try ChildProcess.spawn(executable: "/nonexistent/program", environment: [:])
            }
        }

        /// The child's parent-death signal is set before exec (`/proc/self/status` has no field for it, so a child
        /// shell reads its own `PDeathSig`-free view: the test is the end-to-end SIGKILL test in RunCommandTests);
        /// here: extra descriptors arrive at the numbers asked, standard input comes from a file.
        @Test func childGetsDescriptorsAndInputFile() throws {
            let input = temporaryFile("stdin.txt")
            defer { try? FileManager.default.removeItem(atPath: input) }
            #expect(FileManager.default.createFile(atPath: input, contents: Data("from the file\n".utf8)))
            let pipe = try ProcessPipe.make()
            defer { Descriptor.close(pipe.readEnd) }
            let child = try ChildProcess.spawn(
                executable: "/bin/sh", arguments: ["-c", "read line; echo \"$line via 5\" >&5"],
                environment: plainEnvironment,
                options: .init(standardInput: .file(input), descriptors: [5: pipe.writeEnd]))
            Descriptor.close(pipe.writeEnd)
            #expect(try child.wait().termination == .exited(code: 0))
            var bytes: [UInt8] = []
            while case .data = Descriptor.read(pipe.readEnd, appendingTo: &bytes) {}
            #expect(String(decoding: bytes, as: UTF8.self) == "from the file via 5\n")
            #expect(throws: SystemCallError.self) {
                try ChildProcess.spawn(
                    executable: "/bin/true", environment: [:], options: .init(descriptors: [1: pipe.readEnd]))
            }
        }

        /// A stopped child reads as stopped; SIGKILL ends it anyway.
        @Test func stoppedChildState() throws {
            let child = try ChildProcess.spawn(
                executable: "/bin/sleep", arguments: ["30"], environment: plainEnvironment)
            try child.signal(SIGSTOP)
            var state = ProcessState.read(pid: child.pid)
            let deadline = MonotonicClock.monotonicSeconds() + 2
            while state?.isStopped != true && MonotonicClock.monotonicSeconds() < deadline {
                MonotonicClock.sleep(seconds: 0.01)
                state = ProcessState.read(pid: child.pid)
            }
            #expect(state?.isStopped == true)
            #expect(state?.description == "stopped (SIGSTOP?)")
            #expect(try child.kill().termination == .signaled(signal: SIGKILL, coreDumped: false))
            #expect(ProcessState.parse(stat: "123 (a) b) c) S 1 2 3") == ProcessState(code: "S"))
            #expect(ProcessState.parse(stat: "9 (x) R 1 9 9 0 -1 4194304 100 0 0 0 250 17 0 0")?.cpuTicks == 267)
        }

        @Test func childEnvironmentIsExactlyWhatWasPassed() throws {
            let output = temporaryFile("env.txt")
            defer { try? FileManager.default.removeItem(atPath: output) }
            let environment = ["ZED": "last", "A": "1", "WITH_SPACES": "two words", "EMPTY": "", "EQUALS": "a=b"]
            let child = try ChildProcess.spawn(
                executable: "/usr/bin/env", environment: environment,
                options: .init(standardInput: .null, standardOutput: .file(output), standardError: .file(output)))
            #expect(try child.wait().termination == .exited(code: 0))
            let lines = try String(contentsOfFile: output, encoding: .utf8).split(separator: "\n").map(String.init)
            #expect(lines == ["A=1", "EMPTY=", "EQUALS=a=b", "WITH_SPACES=two words", "ZED=last"])
            #expect(throws: SystemCallError.self) {
                try ChildProcess.spawn(executable: "/usr/bin/env", environment: ["BAD=KEY": "x"])
            }
        }

        /// The exec pitfall, measured: a forked /bin/true reports in ru_maxrss the parent's anonymous pages it
        /// mapped (copy-on-write) until exec — far above the 2 MiB or so /bin/true itself touches.
        @Test func childMaxRSSCarriesParentPages() throws {
            let block = try allocateTouched(64 * mebibyte)
            defer { free(block, 64 * mebibyte) }
            let parentAnon = try #require(try status().rssAnonBytes)
            let child = try ChildProcess.spawn(executable: "/bin/true", environment: [:])
            let exit = try child.wait()
            #expect(exit.termination == .exited(code: 0))
            #expect(
                exit.resourceUsage.maxRSSBytes >= 64 * mebibyte,
                "ru_maxrss \(exit.resourceUsage.maxRSSBytes), parent RssAnon \(parentAnon)")
            print("[probes] /bin/true ru_maxrss \(exit.resourceUsage.maxRSSBytes) B; parent RssAnon \(parentAnon) B")
        }

        @Test func childTerminate() throws {
            let polite = try ChildProcess.spawn(
                executable: "/bin/sleep", arguments: ["30"], environment: plainEnvironment)
            #expect(try polite.poll() == nil)
            let politeExit = try polite.terminate(grace: .seconds(2))
            #expect(politeExit.termination == .signaled(signal: SIGTERM, coreDumped: false))

            // Ignores SIGTERM (the ignore is inherited by sleep): killed after the grace period.
            let stubborn = try ChildProcess.spawn(
                executable: "/bin/sh", arguments: ["-c", "trap '' TERM; sleep 30"], environment: plainEnvironment)
            MonotonicClock.sleep(seconds: 0.1)
            let start = MonotonicClock.monotonicSeconds()
            let stubbornExit = try stubborn.terminate(grace: .milliseconds(300))
            #expect(stubbornExit.termination == .signaled(signal: SIGKILL, coreDumped: false))
            #expect(MonotonicClock.monotonicSeconds() - start >= 0.3)
            #expect(ChildTermination.signalName(__libc_current_sigrtmin() + 2) == "SIGRTMIN+2")
        }

        @Test func childOwnProcessGroupAndExecutablePath() throws {
            let output = temporaryFile("pgid.txt")
            defer { try? FileManager.default.removeItem(atPath: output) }
            // $$ is the shell's pid; `ps` may be absent, so read the pgid (field 5) from /proc/self/stat.
            let child = try ChildProcess.spawn(
                executable: "/bin/sh", arguments: ["-c", "read -r line < /proc/$$/stat; echo $line"],
                environment: plainEnvironment, options: .init(standardOutput: .file(output)))
            #expect(try child.wait().termination == .exited(code: 0))
            let stat = try String(contentsOfFile: output, encoding: .utf8)
            let fields = stat.split(separator: ")").last?.split(separator: " ") ?? []
            // After "comm)": state ppid pgrp …
            #expect(fields.count > 3 && fields[2] == "\(child.pid)")

            let path = try ChildProcess.currentExecutablePath()
            #expect(path.hasPrefix("/"))
            #expect(FileManager.default.isExecutableFile(atPath: path))
            #expect(ChildProcess.currentEnvironment()["PATH"] == ProcessInfo.processInfo.environment["PATH"])
        }

        // MARK: Signals

        @Test func signalTrapSetsFlag() throws {
            try SignalTrap.install(signals: [SIGUSR2, SIGTERM])
            defer { SignalTrap.uninstall(signals: [SIGUSR2, SIGTERM]) }
            SignalTrap.reset()
            #expect(!SignalTrap.interrupted)
            #expect(SignalTrap.lastSignal == nil)
            // Process-directed (kill, not raise): test threads are pool threads that block signals, so the kernel
            // delivers it to a thread that does not (the main thread), asynchronously: poll up to 2 s.
            func waitForCount(_ count: Int) -> Bool {
                let deadline = MonotonicClock.monotonicSeconds() + 2
                while SignalTrap.signalCount < count && MonotonicClock.monotonicSeconds() < deadline {
                    MonotonicClock.sleep(seconds: 0.001)
                }
                return SignalTrap.signalCount == count
            }
            kill(getpid(), SIGUSR2)
            #expect(waitForCount(1))
            #expect(SignalTrap.interrupted)
            #expect(SignalTrap.lastSignal == SIGUSR2)
            kill(getpid(), SIGTERM)
            #expect(waitForCount(2))
            #expect(SignalTrap.lastSignal == SIGTERM)
            SignalTrap.reset()
            #expect(!SignalTrap.interrupted)
        }
    }
}
