import Foundation
import OSLayer
import SystemPackage
import TensorEngine

#if canImport(Glibc)
import Glibc
#endif

/// The one way this tool opens a file it did not write (a checkpoint, an index, a config, a scenario, a results
/// file), so that no input can hang it or make it allocate without bound:
/// - `open(O_RDONLY | O_NONBLOCK | O_CLOEXEC)`: a FIFO or a device opens at once instead of waiting for a writer;
/// - `fstat` on the descriptor: anything but a regular file is refused (exit 65), naming what it is;
/// - the size from `fstat` against the caller's limit before a byte is read (exit 65), and reads that stop at
///   the limit whatever the file grows to meanwhile.
/// O_NONBLOCK changes nothing for a regular file's reads, so the descriptor is used as it is.
package enum UntrustedFile {
    /// `open` + `fstat`: the descriptor of a regular file and its size. The caller closes it.
    package static func open(_ path: String) throws -> (descriptor: FileDescriptor, size: Int) {
        let descriptor: FileDescriptor
        do {
            descriptor = try FileDescriptor.open(FilePath(path), .readOnly, options: [.closeOnExec, .nonBlocking])
        } catch let errno as Errno {
            throw FileIOError(
                path: path, operation: "open", reason: Self.reason(errno), isMissing: errno == .noSuchFileOrDirectory)
        } catch {
            throw FileIOError(path: path, operation: "open", reason: "\(error)")
        }
        var status = stat()
        guard fstat(descriptor.rawValue, &status) == 0 else {
            let errno = Errno(rawValue: Glibc.errno)
            try? descriptor.close()
            throw FileIOError(path: path, operation: "fstat", reason: Self.reason(errno))
        }
        guard status.st_mode & S_IFMT == S_IFREG else {
            try? descriptor.close()
            throw UntrustedInputError(path: path, rule: .notARegularFile(kind(status.st_mode)))
        }
        return (descriptor, Int(status.st_size))
    }

    /// The whole of a small file (a JSON input): refused when `fstat` says it is larger than `limit` bytes, and
    /// read at most `limit + 1` bytes (a file that grows while read is refused too).
    package static func readSmall(_ path: String, limit: Int) throws -> [UInt8] {
        let (descriptor, size) = try open(path)
        defer { try? descriptor.close() }
        guard size <= limit else { throw UntrustedInputError(path: path, rule: .tooLarge(bytes: size, limit: limit)) }
        var bytes = [UInt8](repeating: 0, count: size + 1)
        var total = 0
        while true {
            if total == bytes.count {
                // The file grew after fstat: more room, but never past limit + 1.
                guard total <= limit else { break }
                bytes += [UInt8](repeating: 0, count: min(max(total, 4096), limit + 1 - total))
            }
            let count: Int
            do {
                count = try bytes.withUnsafeMutableBytes { buffer in
                    try descriptor.read(
                        fromAbsoluteOffset: Int64(total),
                        into: UnsafeMutableRawBufferPointer(rebasing: buffer[total...]), retryOnInterrupt: true)
                }
            } catch let errno as Errno {
                throw FileIOError(path: path, operation: "read", reason: Self.reason(errno))
            }
            if count == 0 { break }
            total += count
        }
        guard total <= limit else { throw UntrustedInputError(path: path, rule: .tooLarge(bytes: total, limit: limit)) }
        return Array(bytes[..<total])
    }

    static func kind(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFDIR: "a directory"
        case S_IFIFO: "a FIFO"
        case S_IFCHR: "a character device"
        case S_IFBLK: "a block device"
        case S_IFSOCK: "a socket"
        default: "not a regular file"
        }
    }

    /// strerror's words, lower-cased, for one-line messages.
    static func reason(_ errno: Errno) -> String {
        String(cString: strerror(errno.rawValue)).lowercased()
    }
}

/// An input file refused before it is read.
package struct UntrustedInputError: ReportableError, Equatable {
    package enum Rule: Equatable, Sendable {
        case notARegularFile(String)
        case tooLarge(bytes: Int, limit: Int)
    }

    package let path: String
    package let rule: Rule

    package var description: String {
        switch rule {
        case .notARegularFile(let kind): "\(path): NotARegularFile: it is \(kind); give a regular file"
        case .tooLarge(let bytes, let limit):
            "\(path): TooLarge: \(bytes) bytes, more than the \(limit)-byte limit for this kind of file"
        }
    }

    package var category: FailureCategory { .badData }
}
