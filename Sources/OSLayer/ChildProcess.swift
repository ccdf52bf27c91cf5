import CLinux
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A child process started with an explicit argv and a complete, explicit environment, that cannot outlive
/// the parent, waited for with `wait4`.
///
/// Spawning is `fork` + `execve` (not `posix_spawn`, which cannot run code in the child before `exec`): between
/// the two the child, touching only memory prepared before the fork and calling only async-signal-safe
/// functions,
/// - asks the kernel to kill it when the parent dies (`prctl(PR_SET_PDEATHSIG, SIGKILL)`), then checks
///   `getppid()` and exits if the parent already died in between — so a `kill -9` of the parent never leaves
///   a measured child holding gigabytes. (The death signal fires when the *thread* that forked exits: spawn
///   from a thread that lives as long as the child, as `run`'s main thread does.)
/// - gets its own process group (`setpgid(0, 0)`; the parent sets it too, so no `kill(-pid)` races it), so a
///   Ctrl-C at the terminal reaches only the parent, which decides whether to ``terminate(grace:)`` it;
/// - empties its signal mask and resets SIGHUP/SIGINT/SIGQUIT/SIGPIPE/SIGTERM/SIGCHLD to their defaults;
/// - gets its standard streams and any extra descriptors (``Options/descriptors``) with `dup2`.
/// A failure there (`prctl`, `dup2`, `execve`) is reported to the parent over a close-on-exec socket and
/// thrown from ``spawn(executable:arguments:environment:options:)``. The parent of this tool holds no tensor
/// data, so the page-table copy of `fork` costs microseconds.
///
/// The executable is a path (no `PATH` search). File descriptors the parent opened without `O_CLOEXEC` are
/// inherited.
package final class ChildProcess: Sendable {
    /// Where the child's standard input comes from.
    package enum Input: Sendable, Equatable {
        /// The parent's standard input.
        case inherit
        /// `/dev/null`.
        case null
        /// A file, read from its start.
        case file(String)
    }

    /// Where the child's standard output or error goes.
    package enum Output: Sendable, Equatable {
        /// The parent's stream.
        case inherit
        /// `/dev/null`.
        case null
        /// A file, created (mode 0644) or truncated.
        case file(String)
        /// A file, created or appended to.
        case appendingToFile(String)
    }

    /// How to start the child.
    package struct Options: Sendable, Equatable {
        /// Standard input (default: inherited).
        package var standardInput: Input
        /// Standard output (default: inherited).
        package var standardOutput: Output
        /// Standard error (default: inherited). The same `.file` path as standard output shares one open file.
        package var standardError: Output
        /// Put the child in its own process group (default true).
        package var ownProcessGroup: Bool
        /// Parent descriptors the child gets as the given numbers (≥ 3): `[3: pipeWriteEnd]`.
        package var descriptors: [Int32: Int32]
        /// The signal the kernel sends the child when the parent dies (`PR_SET_PDEATHSIG`); nil: none.
        package var parentDeathSignal: Int32?

        package init(
            standardInput: Input = .inherit, standardOutput: Output = .inherit, standardError: Output = .inherit,
            ownProcessGroup: Bool = true, descriptors: [Int32: Int32] = [:], parentDeathSignal: Int32? = SIGKILL
        ) {
            self.standardInput = standardInput
            self.standardOutput = standardOutput
            self.standardError = standardError
            self.ownProcessGroup = ownProcessGroup
            self.descriptors = descriptors
            self.parentDeathSignal = parentDeathSignal
        }
    }

    /// The child's process id (and, with ``Options/ownProcessGroup``, its process group id).
    package let pid: pid_t
    /// The program path.
    package let executable: String
    /// The options it was started with.
    package let options: Options

    private let exit = Mutex<ChildExit?>(nil)
    /// Extra descriptors are staged at this number and above before the fork.
    static let firstStagingDescriptor: Int32 = 64

    private init(pid: pid_t, executable: String, options: Options) {
        self.pid = pid
        self.executable = executable
        self.options = options
    }

    /// Starts `executable` with argv `[executable] + arguments` and exactly `environment` (nothing inherited;
    /// written as `KEY=value` sorted by key).
    package static func spawn(
        executable: String,
        arguments: [String] = [],
        environment: [String: String],
        options: Options = Options()
    ) throws(SystemCallError) -> ChildProcess {
        for (key, value) in environment
        where key.isEmpty || key.contains("=") || key.contains("\0") || value.contains("\0") {
            throw SystemCallError(call: "spawn", subject: "environment variable \(key)", errno: .invalidArgument)
        }
        for argument in arguments where argument.contains("\0") {
            throw SystemCallError(call: "spawn", subject: "argument \(argument)", errno: .invalidArgument)
        }
        for (target, _) in options.descriptors where target < 3 || target >= ChildProcess.firstStagingDescriptor {
            throw SystemCallError(
                call: "spawn", subject: "descriptor \(target) (the child's extra descriptors are 3…63)",
                errno: .invalidArgument)
        }
        let argv = CStringArray([executable] + arguments)
        let envp = CStringArray(environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" })
        let pid = try forkAndExec(executable: executable, argv: argv, envp: envp, options: options)
        return ChildProcess(pid: pid, executable: executable, options: options)
    }

    // MARK: Waiting

    /// Blocks until the child exits and reaps it: `waitid(P_PID, WEXITED | WNOWAIT)` (waits without reaping, so
    /// ``terminate(grace:)`` from another thread can still signal it safely), then `wait4` for its status and
    /// `rusage`. Later calls return the same result.
    package func wait() throws(SystemCallError) -> ChildExit {
        if let exit = exit.withLock({ $0 }) { return exit }
        var info = siginfo_t()
        while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) != 0 {
            let error = Glibc.errno
            if error == EINTR { continue }
            if error == ECHILD, let exit = exit.withLock({ $0 }) { return exit }
            throw SystemCallError(call: "waitid", subject: "pid \(pid)", errno: .init(rawValue: error))
        }
        guard let exit = try reap(blocking: true) else {
            throw SystemCallError(call: "wait4", subject: "pid \(pid)", errno: .noChildProcess)
        }
        return exit
    }

    /// Reaps the child if it has exited (`wait4(WNOHANG)`); nil while it runs.
    package func poll() throws(SystemCallError) -> ChildExit? {
        try reap(blocking: false)
    }

    private func reap(blocking: Bool) throws(SystemCallError) -> ChildExit? {
        let pid = self.pid
        let result: Result<ChildExit?, SystemCallError> = exit.withLock { exit in
            if let exit { return .success(exit) }
            var status: Int32 = 0
            var usage = rusage()
            while true {
                let reaped = wait4(pid, &status, blocking ? 0 : WNOHANG, &usage)
                if reaped == 0 { return .success(nil) }
                if reaped == -1 {
                    if Glibc.errno == EINTR { continue }
                    return .failure(.current("wait4", "pid \(pid)"))
                }
                guard let termination = ChildTermination(waitStatus: status) else { return .success(nil) }
                exit = ChildExit(termination: termination, resourceUsage: ChildResourceUsage(usage))
                return .success(exit)
            }
        }
        return try result.get()
    }

    /// True once the child has been reaped.
    package var hasExited: Bool { exit.withLock { $0 != nil } }

    // MARK: Signals

    /// Sends `signal` to the child (`kill`; to its whole process group when it has its own). Does nothing once
    /// the child has been reaped (its pid may belong to another process by then).
    package func signal(_ signal: Int32) throws(SystemCallError) {
        let pid = self.pid
        let group = options.ownProcessGroup
        let failure: SystemCallError? = exit.withLock { exit in
            if exit != nil { return nil }
            if group && Glibc.kill(-pid, signal) == 0 { return nil }
            if Glibc.kill(pid, signal) == 0 || Glibc.errno == ESRCH { return nil }
            return .current("kill", "pid \(pid), \(ChildTermination.signalName(signal))")
        }
        if let failure { throw failure }
    }

    /// Asks the child to stop: SIGTERM, then SIGKILL if it has not exited after `grace` (default 5 s); reaps it
    /// and returns how it ended. A stopped child (SIGSTOP) cannot act on SIGTERM: it gets SIGKILL at the end
    /// of the grace period like any other.
    @discardableResult
    package func terminate(grace: Duration = .seconds(5)) throws(SystemCallError) -> ChildExit {
        if let exit = try poll() { return exit }
        try signal(SIGTERM)
        let deadline = MonotonicClock.monotonicSeconds() + grace.inSeconds
        while MonotonicClock.monotonicSeconds() < deadline {
            if let exit = try poll() { return exit }
            MonotonicClock.sleep(seconds: 0.002)
        }
        return try kill()
    }

    /// SIGKILL to the child's process group, then reaps it.
    @discardableResult
    package func kill() throws(SystemCallError) -> ChildExit {
        try signal(SIGKILL)
        return try wait()
    }

    // MARK: Helpers

    /// `readlink("/proc/self/exe")`: the absolute path of the running executable.
    package static func currentExecutablePath() throws(SystemCallError) -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard length > 0 else { throw .current("readlink", "/proc/self/exe") }
        return String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// This process's environment (`environ`) as a dictionary, to extend and pass to ``spawn(executable:arguments:environment:options:)``.
    package static func currentEnvironment() -> [String: String] {
        var result: [String: String] = [:]
        var entry = Glibc.environ
        while let pointer = entry.pointee {
            let text = String(cString: pointer)
            if let equals = text.firstIndex(of: "=") {
                result[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            entry += 1
        }
        return result
    }

    // MARK: fork + execve

    /// Everything the child needs after `fork`, prepared beforehand so the child allocates nothing.
    private struct ForkPlan {
        var path: UnsafeMutablePointer<CChar>
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>
        var envp: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>
        var standardInput: Int32 = -1
        var standardOutput: Int32 = -1
        var standardError: Int32 = -1
        /// (source, target) pairs, at most ``maximumDescriptors``.
        var descriptors: [(Int32, Int32)] = []
        var reportSocket: Int32 = -1
        var ownProcessGroup = true
        var deathSignal: Int32 = 0
        var parentPid: pid_t = 0
    }

    /// What failed in the child before `execve` succeeded.
    private enum ForkStage: Int32 {
        case dup2 = 1
        case deathSignal, parentGone, execve

        var call: String {
            switch self {
            case .dup2: "dup2"
            case .deathSignal: "prctl(PR_SET_PDEATHSIG)"
            case .parentGone: "getppid (the parent died before exec)"
            case .execve: "execve"
            }
        }
    }

    /// Opens the standard-stream files in the parent (close-on-exec; the child `dup2`s them into place).
    private struct OpenedFiles {
        var descriptors: [Int32] = []

        mutating func open(_ path: String, _ flags: Int32) throws(SystemCallError) -> Int32 {
            let fd = Glibc.open(path, flags | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw .current("open", path) }
            descriptors.append(fd)
            return fd
        }

        mutating func input(_ input: Input) throws(SystemCallError) -> Int32 {
            switch input {
            case .inherit: return -1
            case .null: return try open("/dev/null", O_RDONLY)
            case .file(let path): return try open(path, O_RDONLY)
            }
        }

        mutating func output(_ output: Output) throws(SystemCallError) -> Int32 {
            switch output {
            case .inherit: return -1
            case .null: return try open("/dev/null", O_WRONLY)
            case .file(let path): return try open(path, O_WRONLY | O_CREAT | O_TRUNC)
            case .appendingToFile(let path): return try open(path, O_WRONLY | O_CREAT | O_APPEND)
            }
        }

        func closeAll() { for fd in descriptors { close(fd) } }
    }

    private static func makePlan(
        path: UnsafeMutablePointer<CChar>, argv: CStringArray, envp: CStringArray, options: Options,
        files: inout OpenedFiles
    )
        throws(SystemCallError) -> ForkPlan
    {
        var plan = ForkPlan(path: path, argv: argv.pointers, envp: envp.pointers)
        plan.ownProcessGroup = options.ownProcessGroup
        plan.deathSignal = options.parentDeathSignal ?? 0
        plan.parentPid = getpid()
        plan.standardInput = try files.input(options.standardInput)
        plan.standardOutput = try files.output(options.standardOutput)
        if options.standardError != .inherit && options.standardError == options.standardOutput {
            plan.standardError = plan.standardOutput
        } else {
            plan.standardError = try files.output(options.standardError)
        }
        // Each source is first duplicated above every target, so that no dup2 in the child overwrites a source
        // another target still needs.
        for (target, source) in options.descriptors.sorted(by: { $0.key < $1.key }) {
            let staged = fcntl(source, F_DUPFD_CLOEXEC, ChildProcess.firstStagingDescriptor)
            guard staged >= 0 else { throw .current("fcntl(F_DUPFD_CLOEXEC)", "descriptor \(source)") }
            files.descriptors.append(staged)
            plan.descriptors.append((staged, target))
        }
        return plan
    }

    private static func forkAndExec(
        executable: String, argv: CStringArray, envp: CStringArray, options: Options
    ) throws(SystemCallError) -> pid_t {
        var files = OpenedFiles()
        defer { files.closeAll() }
        let path = strdup(executable)
        defer { free(path) }
        guard let path else { throw SystemCallError(call: "strdup", subject: executable, errno: .noMemory) }
        var plan = try makePlan(path: path, argv: argv, envp: envp, options: options, files: &files)
        var sockets: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &sockets) == 0 else {
            throw .current("socketpair", executable)
        }
        files.descriptors.append(sockets[0])
        plan.reportSocket = sockets[1]

        let pid = fork()
        if pid == 0 { runChild(&plan) }
        close(sockets[1])
        guard pid > 0 else { throw .current("fork", executable) }
        if options.ownProcessGroup { _ = setpgid(pid, pid) }  // also from the parent: no race with a kill(-pid)

        // EOF on the socket: execve succeeded (close-on-exec closed the child's end). 8 bytes: it failed.
        var report: (Int32, Int32) = (0, 0)
        let received = withUnsafeMutableBytes(of: &report) { buffer in
            retryingOnInterrupt { read(sockets[0], buffer.baseAddress, buffer.count) }
        }
        if received == MemoryLayout<(Int32, Int32)>.size {
            var status: Int32 = 0
            _ = retryingOnInterrupt { waitpid(pid, &status, 0) }
            let stage = ForkStage(rawValue: report.0) ?? .execve
            throw SystemCallError(call: stage.call, subject: executable, errno: .init(rawValue: report.1))
        }
        return pid
    }

    /// The child side of `fork`: only async-signal-safe calls on memory prepared before the fork.
    private static func runChild(_ plan: inout ForkPlan) -> Never {
        func fail(_ stage: ForkStage, _ plan: inout ForkPlan) -> Never {
            var report: (Int32, Int32) = (stage.rawValue, Glibc.errno)
            _ = withUnsafeBytes(of: &report) { write(plan.reportSocket, $0.baseAddress, $0.count) }
            _exit(127)
        }
        if plan.deathSignal != 0 {
            if clinux_set_parent_death_signal(plan.deathSignal) != 0 { fail(.deathSignal, &plan) }
            // The parent may have died between fork and prctl: then no signal will ever come.
            if getppid() != plan.parentPid { fail(.parentGone, &plan) }
        }
        if plan.ownProcessGroup { _ = setpgid(0, 0) }
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        sigprocmask(SIG_SETMASK, &emptyMask, nil)
        // One call each: no array literal, which would allocate after the fork.
        _ = Glibc.signal(SIGHUP, SIG_DFL)
        _ = Glibc.signal(SIGINT, SIG_DFL)
        _ = Glibc.signal(SIGQUIT, SIG_DFL)
        _ = Glibc.signal(SIGPIPE, SIG_DFL)
        _ = Glibc.signal(SIGTERM, SIG_DFL)
        _ = Glibc.signal(SIGCHLD, SIG_DFL)
        if plan.standardInput >= 0 && dup2(plan.standardInput, 0) < 0 { fail(.dup2, &plan) }
        if plan.standardOutput >= 0 && dup2(plan.standardOutput, 1) < 0 { fail(.dup2, &plan) }
        if plan.standardError >= 0 && dup2(plan.standardError, 2) < 0 { fail(.dup2, &plan) }
        // dup2 clears close-on-exec on the target, so each extra descriptor survives the exec.
        for (source, target) in plan.descriptors where dup2(source, target) < 0 { fail(.dup2, &plan) }
        execve(plan.path, plan.argv, plan.envp)
        fail(.execve, &plan)
    }
}

/// A NULL-terminated `char *[]` (argv, envp) built with `strdup`, freed on deinit.
final class CStringArray {
    let pointers: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>
    let count: Int

    init(_ strings: [String]) {
        count = strings.count
        pointers = .allocate(capacity: strings.count + 1)
        for (index, string) in strings.enumerated() { pointers[index] = strdup(string) }
        pointers[strings.count] = nil
    }

    deinit {
        for index in 0..<count { free(pointers[index]) }
        pointers.deallocate()
    }
}
