import CLinux

#if canImport(Glibc)
import Glibc
#endif

/// A pipe between a parent and a child process: one direction, two descriptors, both close-on-exec
/// (`pipe2(O_CLOEXEC)`), so only the end handed to a child with ``ChildProcess/Options/descriptors`` crosses
/// the `exec`.
package struct ProcessPipe: Sendable {
    package let readEnd: Int32
    package let writeEnd: Int32

    /// `pipe2(O_CLOEXEC)`.
    package static func make() throws(SystemCallError) -> ProcessPipe {
        var fds: [Int32] = [-1, -1]
        guard clinux_pipe_cloexec(&fds) == 0 else { throw .current("pipe2") }
        return ProcessPipe(readEnd: fds[0], writeEnd: fds[1])
    }
}

/// Typed wrappers over the descriptor calls the parent and child use to speak over pipes.
package enum Descriptor {
    /// What a non-blocking `read` gave.
    package enum ReadResult: Sendable, Equatable {
        /// This many bytes were appended.
        case data(Int)
        /// Nothing to read now (`EAGAIN`).
        case wouldBlock
        /// The other end is closed and everything was read.
        case endOfFile
        /// `read` failed with this errno.
        case failed(Int32)
    }

    /// `close`, ignoring errors (the descriptor is gone either way).
    package static func close(_ fd: Int32) {
        if fd >= 0 { _ = Glibc.close(fd) }
    }

    /// `fcntl(F_SETFL, O_NONBLOCK)`.
    package static func setNonBlocking(_ fd: Int32) throws(SystemCallError) {
        let flags = fcntl(fd, F_GETFL)
        guard flags >= 0, fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0 else {
            throw .current("fcntl(O_NONBLOCK)", "descriptor \(fd)")
        }
    }

    /// `write` until every byte is written, retrying `EINTR` and short writes. False when the descriptor
    /// fails (`EPIPE`: the reader is gone).
    @discardableResult
    package static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = retryingOnInterrupt { write(fd, buffer.baseAddress! + offset, buffer.count - offset) }
                guard written > 0 else { return false }
                offset += written
            }
            return true
        }
    }

    /// One `read` of up to `limit` bytes, appended to `buffer`.
    package static func read(_ fd: Int32, appendingTo buffer: inout [UInt8], limit: Int = 1 << 16) -> ReadResult {
        var chunk = [UInt8](repeating: 0, count: limit)
        let count = chunk.withUnsafeMutableBytes { raw in retryingOnInterrupt { Glibc.read(fd, raw.baseAddress, limit) }
        }
        if count > 0 {
            buffer.append(contentsOf: chunk[0..<count])
            return .data(count)
        }
        if count == 0 { return .endOfFile }
        let error = Glibc.errno
        return error == EAGAIN || error == EWOULDBLOCK ? .wouldBlock : .failed(error)
    }

    /// `poll(POLLIN)` on `fds` for up to `seconds`: the descriptors that are readable (or hung up).
    package static func waitReadable(_ fds: [Int32], seconds: Double) -> Set<Int32> {
        var entries = fds.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        let ready = retryingOnInterrupt { Glibc.poll(&entries, nfds_t(entries.count), Int32(max(0, seconds * 1000))) }
        guard ready > 0 else { return [] }
        return Set(entries.filter { $0.revents != 0 }.map(\.fd))
    }

    /// Reads one line (up to `\n`, not included) from a blocking descriptor, a byte at a time so nothing past
    /// the line is consumed. Nil at end of file or on error before any byte; lines longer than `limit` are cut.
    package static func readLine(_ fd: Int32, limit: Int = 1 << 16) -> [UInt8]? {
        var line: [UInt8] = []
        var byte: UInt8 = 0
        while line.count < limit {
            let count = retryingOnInterrupt { Glibc.read(fd, &byte, 1) }
            guard count == 1 else { return line.isEmpty ? nil : line }
            if byte == 0x0A { return line }
            line.append(byte)
        }
        return line
    }

    /// Ignores SIGPIPE in this process, so writing to a pipe whose reader is gone fails with `EPIPE` instead of
    /// killing the writer.
    package static func ignoreBrokenPipes() {
        _ = Glibc.signal(SIGPIPE, SIG_IGN)
    }
}
