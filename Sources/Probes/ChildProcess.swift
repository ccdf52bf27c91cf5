import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A child process started with an explicit argv and a complete, explicit environment, waited for with
/// `wait4`.
///
/// Spawning: `posix_spawn` (glibc: `clone(CLONE_VM | CLONE_VFORK)` + `execve`, so no page-table copy of a big
/// parent). The child gets its own process group (`POSIX_SPAWN_SETPGROUP`, pgid = its pid), so a Ctrl-C at the
/// terminal reaches only the parent, which decides whether to ``terminate(grace:)`` the child; the child's
/// signal mask is emptied and SIGHUP/SIGINT/SIGQUIT/SIGPIPE/SIGTERM/SIGCHLD are reset to their defaults.
///
/// Resource limits: `posix_spawn` cannot set rlimits, and setting them on the parent around the spawn would
/// starve the parent's other threads. So when ``Options/addressSpaceLimit`` or ``Options/dataLimit`` is set,
/// the child is created with `fork` instead, and the child applies `setrlimit` to itself between `fork` and
/// `execve`, touching only memory prepared before the fork (no allocation, only async-signal-safe calls).
/// The limit is then in force from the program's first instruction. A failure there (`dup2`, `setrlimit`,
/// `execve`) is reported to the parent over a close-on-exec socket and thrown from ``spawn(executable:arguments:environment:options:)``.
/// `fork` copies the parent's page tables: with a parent of many GB that costs some milliseconds.
///
/// The executable is a path (no `PATH` search). File descriptors the parent opened without `O_CLOEXEC` are
/// inherited.
public final class ChildProcess: Sendable {
    /// Where the child's standard input comes from.
    public enum Input: Sendable, Equatable {
        /// The parent's standard input.
        case inherit
        /// `/dev/null`.
        case null
    }

    /// Where the child's standard output or error goes.
    public enum Output: Sendable, Equatable {
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
    public struct Options: Sendable, Equatable {
        /// Standard input (default: inherited).
        public var standardInput: Input
        /// Standard output (default: inherited).
        public var standardOutput: Output
        /// Standard error (default: inherited). The same `.file` path as standard output shares one open file.
        public var standardError: Output
        /// Put the child in its own process group (default true).
        public var ownProcessGroup: Bool
        /// `RLIMIT_AS` soft and hard limit applied in the child before `exec`, bytes (nil: inherit the parent's).
        public var addressSpaceLimit: Int?
        /// `RLIMIT_DATA` soft and hard limit applied in the child before `exec`, bytes (nil: inherit).
        public var dataLimit: Int?

        public init(
            standardInput: Input = .inherit, standardOutput: Output = .inherit, standardError: Output = .inherit,
            ownProcessGroup: Bool = true, addressSpaceLimit: Int? = nil, dataLimit: Int? = nil
        ) {
            self.standardInput = standardInput
            self.standardOutput = standardOutput
            self.standardError = standardError
            self.ownProcessGroup = ownProcessGroup
            self.addressSpaceLimit = addressSpaceLimit
            self.dataLimit = dataLimit
        }
    }

    /// The child's process id (and, with ``Options/ownProcessGroup``, its process group id).
    public let pid: pid_t
    /// The program path.
    public let executable: String
    /// The options it was started with.
    public let options: Options

    private struct State {
        var exit: ChildExit?
        var observedPeakRSS: Int?
    }
    private let state = Mutex(State())

    private init(pid: pid_t, executable: String, options: Options) {
        self.pid = pid
        self.executable = executable
        self.options = options
    }

    /// Starts `executable` with argv `[executable] + arguments` and exactly `environment` (nothing inherited;
    /// written as `KEY=value` sorted by key).
    public static func spawn(
        executable: String,
        arguments: [String] = [],
        environment: [String: String],
        options: Options = Options()
    ) throws(SystemCallError) -> ChildProcess {
        for (key, value) in environment where key.isEmpty || key.contains("=") || key.contains("\0") || value.contains("\0") {
            throw SystemCallError(call: "spawn", subject: "environment variable \(key)", errno: .invalidArgument)
        }
        for argument in arguments where argument.contains("\0") {
            throw SystemCallError(call: "spawn", subject: "argument \(argument)", errno: .invalidArgument)
        }
        let argv = CStringArray([executable] + arguments)
        let envp = CStringArray(environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" })
        let pid: pid_t
        if options.addressSpaceLimit != nil || options.dataLimit != nil {
            pid = try forkAndExec(executable: executable, argv: argv, envp: envp, options: options)
        } else {
            pid = try posixSpawn(executable: executable, argv: argv, envp: envp, options: options)
        }
        return ChildProcess(pid: pid, executable: executable, options: options)
    }

    // MARK: Waiting

    /// Blocks until the child exits and reaps it: `waitid(P_PID, WEXITED | WNOWAIT)` (waits without reaping, so
    /// ``terminate(grace:)`` from another thread can still signal it safely), then `wait4` for its status and
    /// `rusage`. Later calls return the same result.
    public func wait() throws(SystemCallError) -> ChildExit {
        if let exit = state.withLock({ $0.exit }) { return exit }
        var info = siginfo_t()
        while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) != 0 {
            let error = Glibc.errno
            if error == EINTR { continue }
            if error == ECHILD, let exit = state.withLock({ $0.exit }) { return exit }
            throw SystemCallError(call: "waitid", subject: "pid \(pid)", errno: .init(rawValue: error))
        }
        guard let exit = try reap(blocking: true) else {
            throw SystemCallError(call: "wait4", subject: "pid \(pid)", errno: .noChildProcess)
        }
        return exit
    }

    /// Reaps the child if it has exited (`wait4(WNOHANG)`); nil while it runs.
    public func poll() throws(SystemCallError) -> ChildExit? {
        try reap(blocking: false)
    }

    /// Waits like ``wait()``, but every `pollInterval` (default 5 ms) reads the child's `VmHWM` while it lives,
    /// so that ``ChildExit/observedPeakRSSBytes`` holds its peak RSS — to within what it grew after the last
    /// read. (A zombie has no memory figures, so the peak cannot be read after exit; for an exact figure the
    /// child must report its own `VmHWM`.)
    public func waitTrackingPeakRSS(pollInterval: Duration = .milliseconds(5)) throws(SystemCallError) -> ChildExit {
        let seconds = pollInterval.probesSeconds
        while true {
            _ = readPeakRSS()
            if let exit = try poll() { return exit }
            MonotonicClock.sleep(seconds: seconds)
        }
    }

    private func reap(blocking: Bool) throws(SystemCallError) -> ChildExit? {
        let pid = self.pid
        let result: Result<ChildExit?, SystemCallError> = state.withLock { state in
            if let exit = state.exit { return .success(exit) }
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
                let exit = ChildExit(
                    termination: termination, resourceUsage: ChildResourceUsage(usage),
                    observedPeakRSSBytes: state.observedPeakRSS
                )
                state.exit = exit
                return .success(exit)
            }
        }
        return try result.get()
    }

    // MARK: Signals

    /// Sends `signal` to the child (`kill`; to its whole process group when it has its own). Does nothing once
    /// the child has been reaped (its pid may belong to another process by then).
    public func signal(_ signal: Int32) throws(SystemCallError) {
        let pid = self.pid
        let group = options.ownProcessGroup
        let failure: SystemCallError? = state.withLock { state in
            if state.exit != nil { return nil }
            if group && kill(-pid, signal) == 0 { return nil }
            if kill(pid, signal) == 0 || Glibc.errno == ESRCH { return nil }
            return .current("kill", "pid \(pid), \(ChildTermination.signalName(signal))")
        }
        if let failure { throw failure }
    }

    /// Asks the child to stop: SIGTERM, then SIGKILL if it has not exited after `grace` (default 5 s); reaps it
    /// and returns how it ended.
    @discardableResult
    public func terminate(grace: Duration = .seconds(5)) throws(SystemCallError) -> ChildExit {
        if let exit = try poll() { return exit }
        try signal(SIGTERM)
        let deadline = MonotonicClock.monotonicSeconds() + grace.probesSeconds
        while MonotonicClock.monotonicSeconds() < deadline {
            if let exit = try poll() { return exit }
            MonotonicClock.sleep(seconds: 0.002)
        }
        try signal(SIGKILL)
        return try wait()
    }

    // MARK: Memory

    /// Reads the child's `VmHWM` (peak RSS, bytes) from `/proc/<pid>/status` now, and remembers the largest value
    /// read for ``ChildExit/observedPeakRSSBytes``. Nil once it has exited (a zombie has no memory figures) or
    /// been reaped. Call it before reaping — ideally right before the child ends.
    @discardableResult
    public func readPeakRSS() -> Int? {
        let pid = self.pid
        return state.withLock { state -> Int? in
            if state.exit != nil { return nil }
            guard let peak = (try? ProcessMemory.read(pid: pid))?.vmHWMBytes else { return nil }
            state.observedPeakRSS = max(state.observedPeakRSS ?? 0, peak)
            return peak
        }
    }

    /// The child's `/proc/<pid>/status` figures now; nil once reaped or unreadable.
    public func readMemory() -> ProcessMemory? {
        let pid = self.pid
        return state.withLock { state -> ProcessMemory? in
            if state.exit != nil { return nil }
            return try? ProcessMemory.read(pid: pid)
        }
    }

    // MARK: Helpers

    /// `readlink("/proc/self/exe")`: the absolute path of the running executable.
    public static func currentExecutablePath() throws(SystemCallError) -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard length > 0 else { throw .current("readlink", "/proc/self/exe") }
        return String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// This process's environment (`environ`) as a dictionary, to extend and pass to ``spawn(executable:arguments:environment:options:)``.
    public static func currentEnvironment() -> [String: String] {
        var result: [String: String] = [:]
        var entry = environ
        while let pointer = entry.pointee {
            let text = String(cString: pointer)
            if let equals = text.firstIndex(of: "=") {
                result[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            entry += 1
        }
        return result
    }

    // MARK: posix_spawn

    private static func posixSpawn(
        executable: String, argv: CStringArray, envp: CStringArray, options: Options
    ) throws(SystemCallError) -> pid_t {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }

        var flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF
        if options.ownProcessGroup {
            flags |= POSIX_SPAWN_SETPGROUP
            posix_spawnattr_setpgroup(&attributes, 0)
        }
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        posix_spawnattr_setsigmask(&attributes, &emptyMask)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in resetSignals { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(flags))

        if options.standardInput == .null {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        addOutput(&actions, options.standardOutput, fd: 1)
        if options.standardError != .inherit && options.standardError == options.standardOutput,
            options.standardError != .null
        {
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        } else {
            addOutput(&actions, options.standardError, fd: 2)
        }

        var pid = pid_t()
        let status = posix_spawn(&pid, executable, &actions, &attributes, argv.pointers, envp.pointers)
        guard status == 0 else {
            throw SystemCallError(call: "posix_spawn", subject: executable, errno: .init(rawValue: status))
        }
        return pid
    }

    private static func addOutput(_ actions: inout posix_spawn_file_actions_t, _ output: Output, fd: Int32) {
        switch output {
        case .inherit: break
        case .null: posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", O_WRONLY, 0)
        case .file(let path): posix_spawn_file_actions_addopen(&actions, fd, path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        case .appendingToFile(let path):
            posix_spawn_file_actions_addopen(&actions, fd, path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        }
    }

    /// Signals whose disposition the child gets reset to the default.
    private static let resetSignals: [Int32] = [SIGHUP, SIGINT, SIGQUIT, SIGPIPE, SIGTERM, SIGCHLD]

    // MARK: fork + setrlimit + execve

    /// Everything the child needs after `fork`, prepared beforehand so the child allocates nothing.
    private struct ForkPlan {
        var path: UnsafeMutablePointer<CChar>
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>
        var envp: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>
        var standardInput: Int32 = -1
        var standardOutput: Int32 = -1
        var standardError: Int32 = -1
        var reportSocket: Int32 = -1
        var ownProcessGroup = true
        var setAddressSpace = false
        var addressSpace = rlimit()
        var setData = false
        var data = rlimit()
    }

    /// What failed in the child before `execve` succeeded.
    private enum ForkStage: Int32 {
        case dup2 = 1, rlimitAS, rlimitData, execve

        var call: String {
            switch self {
            case .dup2: "dup2"
            case .rlimitAS: "setrlimit(RLIMIT_AS)"
            case .rlimitData: "setrlimit(RLIMIT_DATA)"
            case .execve: "execve"
            }
        }
    }

    private static func forkAndExec(
        executable: String, argv: CStringArray, envp: CStringArray, options: Options
    ) throws(SystemCallError) -> pid_t {
        var opened: [Int32] = []
        defer { for fd in opened { close(fd) } }
        func open(_ path: String, _ flags: Int32) throws(SystemCallError) -> Int32 {
            let fd = Glibc.open(path, flags | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw .current("open", path) }
            opened.append(fd)
            return fd
        }
        func output(_ output: Output) throws(SystemCallError) -> Int32 {
            switch output {
            case .inherit: return -1
            case .null: return try open("/dev/null", O_WRONLY)
            case .file(let path): return try open(path, O_WRONLY | O_CREAT | O_TRUNC)
            case .appendingToFile(let path): return try open(path, O_WRONLY | O_CREAT | O_APPEND)
            }
        }
        let path = strdup(executable)
        defer { free(path) }
        guard let path else { throw SystemCallError(call: "strdup", subject: executable, errno: .noMemory) }
        var plan = ForkPlan(path: path, argv: argv.pointers, envp: envp.pointers)
        plan.ownProcessGroup = options.ownProcessGroup
        if options.standardInput == .null { plan.standardInput = try open("/dev/null", O_RDONLY) }
        plan.standardOutput = try output(options.standardOutput)
        if options.standardError != .inherit && options.standardError == options.standardOutput {
            plan.standardError = plan.standardOutput
        } else {
            plan.standardError = try output(options.standardError)
        }
        if let limit = options.addressSpaceLimit {
            plan.setAddressSpace = true
            plan.addressSpace = rlimit(rlim_cur: ResourceLimits.toRlim(limit), rlim_max: ResourceLimits.toRlim(limit))
        }
        if let limit = options.dataLimit {
            plan.setData = true
            plan.data = rlimit(rlim_cur: ResourceLimits.toRlim(limit), rlim_max: ResourceLimits.toRlim(limit))
        }
        var sockets: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &sockets) == 0 else {
            throw .current("socketpair", executable)
        }
        opened.append(sockets[0])
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
        if plan.ownProcessGroup { _ = setpgid(0, 0) }
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        sigprocmask(SIG_SETMASK, &emptyMask, nil)
        _ = Glibc.signal(SIGHUP, SIG_DFL)
        _ = Glibc.signal(SIGINT, SIG_DFL)
        _ = Glibc.signal(SIGQUIT, SIG_DFL)
        _ = Glibc.signal(SIGPIPE, SIG_DFL)
        _ = Glibc.signal(SIGTERM, SIG_DFL)
        _ = Glibc.signal(SIGCHLD, SIG_DFL)
        if plan.standardInput >= 0 && dup2(plan.standardInput, 0) < 0 { fail(.dup2, &plan) }
        if plan.standardOutput >= 0 && dup2(plan.standardOutput, 1) < 0 { fail(.dup2, &plan) }
        if plan.standardError >= 0 && dup2(plan.standardError, 2) < 0 { fail(.dup2, &plan) }
        if plan.setAddressSpace && setrlimit(__rlimit_resource_t(RLIMIT_AS.rawValue), &plan.addressSpace) != 0 {
            fail(.rlimitAS, &plan)
        }
        if plan.setData && setrlimit(__rlimit_resource_t(RLIMIT_DATA.rawValue), &plan.data) != 0 {
            fail(.rlimitData, &plan)
        }
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
