import Synchronization
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// A file written under a temporary name in its destination folder and renamed into place on `commit`.
///
/// Readers therefore see either the old file or the complete new one, never a torn write; a writer that is
/// abandoned (error, interrupt) removes its temporary file.
package final class AtomicFile {
    package let path: String
    package let temporaryPath: String
    private var descriptor: FileDescriptor?
    package private(set) var bytesWritten = 0

    /// Creates `path`'s temporary sibling `.NAME.tmp-PID-N`.
    package init(path: String) throws {
        self.path = path
        let folder = AtomicFile.folder(of: path)
        let name = path.split(separator: "/").last.map(String.init) ?? path
        temporaryPath = (folder.isEmpty ? "" : folder + "/") + ".\(name).tmp-\(getpid())-\(AtomicFile.nextSerial())"
        do {
            descriptor = try FileDescriptor.open(
                FilePath(temporaryPath), .writeOnly, options: [.create, .exclusiveCreate, .closeOnExec],
                permissions: [.ownerReadWrite, .groupRead, .otherRead])
        } catch {
            throw FileIOError(
                path: path, operation: "create", reason: "\(error)",
                isMissing: (error as? Errno) == .noSuchFileOrDirectory)
        }
    }

    deinit {
        abort()
    }

    /// Appends bytes.
    package func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard let descriptor else { preconditionFailure("write after commit or abort") }
        do {
            var done = 0
            while done < bytes.count {
                let chunk = UnsafeRawBufferPointer(rebasing: bytes[done..<min(bytes.count, done + (1 << 30))])
                done += try descriptor.write(chunk, retryOnInterrupt: true)
            }
            bytesWritten += bytes.count
        } catch {
            throw FileIOError(path: path, operation: "write", reason: "\(error)")
        }
    }

    package func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    /// Flushes (`fsync` when `sync`), closes and renames the temporary file onto `path` (`rename(2)`).
    package func commit(sync: Bool = true) throws {
        guard let descriptor else { preconditionFailure("commit after commit or abort") }
        self.descriptor = nil
        do {
            if sync, fsync(descriptor.rawValue) != 0 { throw Errno(rawValue: errno) }
            try descriptor.close()
            guard rename(temporaryPath, path) == 0 else { throw Errno(rawValue: errno) }
        } catch {
            unlink(temporaryPath)
            throw FileIOError(path: path, operation: "commit", reason: "\(error)")
        }
    }

    /// Discards the temporary file. Safe to call more than once, and after commit (then it does nothing).
    package func abort() {
        guard let descriptor else { return }
        self.descriptor = nil
        try? descriptor.close()
        unlink(temporaryPath)
    }

    /// Writes a whole file atomically.
    package static func write(_ bytes: [UInt8], to path: String, sync: Bool = true) throws {
        let file = try AtomicFile(path: path)
        try file.write(bytes)
        try file.commit(sync: sync)
    }

    package static func write(_ text: String, to path: String, sync: Bool = true) throws {
        try write(Array(text.utf8), to: path, sync: sync)
    }

    package static func folder(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "" }
        if slash == path.startIndex { return "/" }
        return String(path[..<slash])
    }

    private static let serial = SerialCounter()
    private static func nextSerial() -> Int { serial.next() }
}

private final class SerialCounter: Sendable {
    private let value = Atomic<Int>(0)
    func next() -> Int { value.add(1, ordering: .relaxed).newValue }
}
