/// Reading or writing a file failed at the operating-system level.
package struct FileIOError: ReportableError, Equatable {
    package let path: String
    package let operation: String
    package let reason: String
    /// True when the path does not exist (exit 66) rather than failing to read or write (exit 74).
    package let isMissing: Bool

    package init(path: String, operation: String, reason: String, isMissing: Bool = false) {
        self.path = path
        self.operation = operation
        self.reason = reason
        self.isMissing = isMissing
    }

    package var description: String { "\(path): \(operation) failed: \(reason)" }
    package var category: FailureCategory { isMissing ? .missingInput : .io }
}
