import Foundation

/// One plain line for an error that is not one of the tool's own (`ReportableError`): a Foundation file error
/// becomes "PATH: cause" (the cause from the underlying POSIX error when there is one), never the
/// `NSCocoaErrorDomain Code=… UserInfo={…}` dump; and the category it deserves (missing input when the path is
/// missing, else I/O).
package enum FoundationErrorText {
    package static func line(_ error: any Error) -> String {
        let ns = error as NSError
        guard ns.domain == NSCocoaErrorDomain || ns.domain == NSPOSIXErrorDomain else { return "\(error)" }
        let path = ns.userInfo[NSFilePathErrorKey] as? String ?? (ns.userInfo[NSURLErrorKey] as? URL)?.path
        return (path.map { "\($0): " } ?? "") + cause(error)
    }

    package static func category(_ error: any Error) -> FailureCategory {
        let ns = error as NSError
        let missing: Set<Int> = [CocoaError.fileNoSuchFile.rawValue, CocoaError.fileReadNoSuchFile.rawValue]
        return ns.domain == NSCocoaErrorDomain && missing.contains(ns.code) ? .missingInput : .io
    }

    /// The cause alone, for callers that name the path themselves.
    package static func cause(_ error: any Error) -> String {
        let ns = error as NSError
        if ns.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(ns.code))).lowercased() }
        if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code))).lowercased()
        }
        switch CocoaError.Code(rawValue: ns.code) {
        case .fileNoSuchFile, .fileReadNoSuchFile: return "no such file or directory"
        case .fileWriteFileExists: return "a file is in the way (it already exists)"
        case .fileReadNoPermission, .fileWriteNoPermission: return "permission denied"
        case .fileWriteOutOfSpace: return "no space left on device"
        case .fileWriteVolumeReadOnly: return "read-only file system"
        default: return "file operation failed (Foundation error \(ns.code))"
        }
    }
}
