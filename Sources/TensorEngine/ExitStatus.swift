/// The process exit statuses bigmodel-bench documents (README, "Exit statuses"). The 64+ codes follow
/// BSD sysexits so shell scripts can tell bad usage from bad data from a broken disk.
public enum ExitStatus: Int32, Sendable, CaseIterable {
    /// Everything asked for was done and every claim held.
    case success = 0
    /// A run's verdict was `fail` or `oom`: a claimed bound did not hold.
    case claimFailed = 1
    /// `compare` found a regression.
    case regression = 2
    /// A measured run died unexpectedly (killed by a signal, crashed, or its results were unreadable).
    case runDied = 3
    /// `compare`: the baseline is missing or belongs to another scenario.
    case baselineMismatch = 5
    /// Bad command line (sysexits EX_USAGE).
    case usage = 64
    /// Bad input data: a malformed checkpoint, config or scenario (EX_DATAERR).
    case dataError = 65
    /// An input file does not exist or cannot be opened (EX_NOINPUT).
    case noInput = 66
    /// Reading or writing failed, or the disk is too small (EX_IOERR).
    case ioError = 74
}

/// An error the CLI reports as one line and maps to a documented exit status.
///
/// Every module's error type conforms, so the executable never needs to know which module failed.
public protocol ReportableError: Error, CustomStringConvertible {
    var exitStatus: ExitStatus { get }
}

/// A usage error raised below the CLI layer (a bad `--dtype`, a malformed size string).
public struct UsageError: ReportableError, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
    public var exitStatus: ExitStatus { .usage }
}
