import OSLayer
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// Runs a swift-system call, turning the `Errno` it throws into a ``SystemCallError``.
@inline(__always)
func withSystemCall<T>(_ call: String, _ subject: String?, _ body: () throws -> T) throws(SystemCallError) -> T {
    do {
        return try body()
    } catch let errno as Errno {
        throw SystemCallError(call: call, subject: subject, errno: errno)
    } catch {
        throw SystemCallError(call: call, subject: subject, errno: .ioError)
    }
}

/// A `/proc` or `/sys` file read again and again: one descriptor kept open (`open(O_RDONLY|O_CLOEXEC)`), each
/// read a `pread` loop from offset 0 into a buffer reused across reads.
///
/// `pread` at offset 0 makes the kernel's `seq_file` regenerate the text, so every read is a fresh snapshot
/// without `open`/`close` and without allocating. Not thread-safe: one reader per thread.
final class ProcFileReader {
    /// The path opened.
    let path: String
    private let descriptor: FileDescriptor
    private var buffer: UnsafeMutableRawBufferPointer

    /// `open(path, O_RDONLY | O_CLOEXEC)`.
    init(path: String, initialCapacity: Int = 16 * 1024) throws(SystemCallError) {
        self.path = path
        descriptor = try withSystemCall("open", path) {
            try FileDescriptor.open(FilePath(path), .readOnly, options: .closeOnExec)
        }
        buffer = .allocate(byteCount: max(initialCapacity, 256), alignment: 16)
    }

    deinit {
        try? descriptor.close()
        buffer.deallocate()
    }

    /// Reads the whole file (`pread` from offset 0 until it returns 0, growing the buffer when full) and passes
    /// its bytes to `body`. The bytes are valid only inside `body`. With `shortReadIsEnd`, a read that returns
    /// less than the room left ends it: a `/proc` file generated whole (`statm`) hands out all it has at once, so
    /// this saves the second `pread` that would return 0 — half the cost of a sample.
    func read<R>(shortReadIsEnd: Bool = false, _ body: (UnsafeRawBufferPointer) -> R) throws(SystemCallError) -> R {
        var total = 0
        while true {
            if total == buffer.count {
                let bigger = UnsafeMutableRawBufferPointer.allocate(byteCount: buffer.count * 2, alignment: 16)
                bigger.copyMemory(from: UnsafeRawBufferPointer(buffer))
                buffer.deallocate()
                buffer = bigger
            }
            let window = UnsafeMutableRawBufferPointer(rebasing: buffer[total...])
            let count = try withSystemCall("pread", path) {
                try descriptor.read(fromAbsoluteOffset: Int64(total), into: window)
            }
            if count == 0 { break }
            total += count
            if shortReadIsEnd && count < window.count { break }
        }
        return body(UnsafeRawBufferPointer(rebasing: buffer[..<total]))
    }
}

/// Reads a whole small file (`open`, `read` until end of file, `close`), at most `limit` bytes.
func readWholeFile(_ path: String, limit: Int = 16 * 1024 * 1024) throws(SystemCallError) -> [UInt8] {
    let descriptor = try withSystemCall("open", path) {
        try FileDescriptor.open(FilePath(path), .readOnly, options: .closeOnExec)
    }
    defer { try? descriptor.close() }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 8192)
    while bytes.count < limit {
        let count = try withSystemCall("read", path) {
            try chunk.withUnsafeMutableBytes { try descriptor.read(into: $0) }
        }
        if count == 0 { break }
        bytes.append(contentsOf: chunk[..<count])
    }
    return bytes
}

/// Reads a whole small text file as a `String` (invalid UTF-8 repaired), or nil when it cannot be read.
func readTextFile(_ path: String) -> String? {
    guard let bytes = try? readWholeFile(path) else { return nil }
    return String(decoding: bytes, as: UTF8.self)
}

/// Byte-level parsing of `/proc` text ("Key:<blanks>value[ kB]" lines), allocation-free.
enum ProcParse {
    private static let newline = UInt8(ascii: "\n")
    private static let colon = UInt8(ascii: ":")
    private static let space = UInt8(ascii: " ")
    private static let tab = UInt8(ascii: "\t")

    /// Calls `body(key, rest)` for each line containing a colon; `rest` is everything after the first colon.
    /// Lines without a colon are skipped. Lines are found with `memchr`, so the scan is cheap even unoptimised.
    static func forEachField(
        in bytes: UnsafeRawBufferPointer,
        _ body: (_ key: UnsafeRawBufferPointer, _ rest: UnsafeRawBufferPointer) -> Void
    ) {
        scanFields(in: bytes) { key, rest in
            body(key, rest)
            return true
        }
    }

    /// Like ``forEachField(in:_:)``, stopping as soon as `body` returns false.
    static func scanFields(
        in bytes: UnsafeRawBufferPointer,
        _ body: (_ key: UnsafeRawBufferPointer, _ rest: UnsafeRawBufferPointer) -> Bool
    ) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        let end = base + bytes.count
        var lineStart = base
        while lineStart < end {
            let remaining = end - lineStart
            let lineEnd = memchr(lineStart, Int32(newline), remaining).map { UnsafeRawPointer($0) } ?? end
            if let colonPointer = memchr(lineStart, Int32(colon), lineEnd - lineStart) {
                let colonAt = UnsafeRawPointer(colonPointer)
                let key = UnsafeRawBufferPointer(start: lineStart, count: colonAt - lineStart)
                let rest = UnsafeRawBufferPointer(start: colonAt + 1, count: lineEnd - colonAt - 1)
                if !body(key, rest) { return }
            }
            lineStart = lineEnd + 1
        }
    }

    /// Whether `bytes` spell exactly `literal`.
    @inline(__always)
    static func equals(_ bytes: UnsafeRawBufferPointer, _ literal: StaticString) -> Bool {
        guard bytes.count == literal.utf8CodeUnitCount else { return false }
        guard let base = bytes.baseAddress else { return bytes.isEmpty }
        return memcmp(base, literal.utf8Start, bytes.count) == 0
    }

    /// Parses "<blanks>digits[<blanks>kB]<blanks>" into bytes: a `kB` suffix (which in `/proc` means KiB) is
    /// multiplied by 1024, a bare number is returned as is. Nil for anything else (no digits, another unit,
    /// trailing text, overflow).
    static func sizeValue(_ bytes: UnsafeRawBufferPointer) -> Int? {
        var index = 0
        let end = bytes.count
        while index < end && (bytes[index] == space || bytes[index] == tab) { index += 1 }
        var value = 0
        var digits = 0
        while index < end, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") {
            let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(Int(bytes[index] - UInt8(ascii: "0")))
            if overflow1 || overflow2 { return nil }
            value = sum
            digits += 1
            index += 1
        }
        guard digits > 0 else { return nil }
        while index < end && (bytes[index] == space || bytes[index] == tab) { index += 1 }
        if index + 1 < end && bytes[index] == UInt8(ascii: "k") && bytes[index + 1] == UInt8(ascii: "B") {
            let (scaled, overflow) = value.multipliedReportingOverflow(by: 1024)
            if overflow { return nil }
            value = scaled
            index += 2
            while index < end && (bytes[index] == space || bytes[index] == tab) { index += 1 }
        }
        return index == end ? value : nil
    }

    /// Parses a plain decimal integer surrounded by blanks/newlines (a `/sys` or cgroup file); nil otherwise.
    static func integer(_ text: String) -> Int? {
        Int(text.trimmingBlanks())
    }
}

extension String {
    /// The string without leading and trailing spaces, tabs and newlines.
    func trimmingBlanks() -> String {
        let isBlank: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        guard let first = firstIndex(where: { !isBlank($0) }), let last = lastIndex(where: { !isBlank($0) }) else {
            return ""
        }
        return String(self[first...last])
    }
}
