import Foundation
import OSLayer
import ResultsFormat
import Synchronization

/// JSON lines as the child protocol writes them: compact, sorted snake_case keys, one object per line.
package enum JSONLines {
    package static func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return [UInt8](try encoder.encode(value)) + [0x0A]
    }

    package static func decode<T: Decodable>(_ type: T.Type, from line: [UInt8]) throws -> T {
        try ResultsCodec.decoder.decode(type, from: Data(line))
    }
}

/// The child's end of the event stream: each event one `write` of one line, serialised across threads (the
/// loading thread's phase events and the heartbeat thread interleave whole lines, never bytes).
package final class ChildEventWriter: Sendable {
    private let descriptor: Int32
    private let lock = Mutex(())

    package init(descriptor: Int32) {
        self.descriptor = descriptor
    }

    /// The writer the protocol's environment names, or nil when the child was started without one.
    package static func fromEnvironment() -> ChildEventWriter? {
        guard let text = ProcessInfo.processInfo.environment[ChildProtocol.eventsVariable], let fd = Int32(text),
            fd >= 0
        else { return nil }
        return ChildEventWriter(descriptor: fd)
    }

    /// Sends `event`; a parent that is gone is not an error (the child dies with it anyway).
    package func send(_ event: ChildEvent) {
        guard let line = try? JSONLines.encode(event) else { return }
        lock.withLock { _ in _ = Descriptor.writeAll(descriptor, line) }
    }

    /// The line the fatal-signal handler writes for `signal`.
    package static func signalLine(_ signal: Int32, name: String) -> [UInt8] {
        let failure = ChildFailure(
            kind: .signal, message: "the child received \(name)", signal: signal, signalName: name)
        return (try? JSONLines.encode(ChildEvent.failure(failure))) ?? []
    }

    package var fileDescriptor: Int32 { descriptor }
}

/// Splits what arrives on a pipe into lines and decodes each as a ``ChildEvent``. A line that is not an event
/// is kept as text for the log; a line longer than ``maximumLineBytes`` (a loader gone wrong) is dropped, so a
/// child cannot make its parent allocate without bound.
package struct EventLineReader: Sendable {
    package static let maximumLineBytes = 64 << 20

    private var pending: [UInt8] = []
    private var discarding = false
    /// Lines that did not decode, for the run's record (at most the last 20).
    package private(set) var undecodable: [String] = []

    package init() {}

    /// Appends `bytes` and returns the events of every complete line.
    package mutating func feed(_ bytes: [UInt8]) -> [ChildEvent] {
        pending += bytes
        var events: [ChildEvent] = []
        while let newline = pending.firstIndex(of: 0x0A) {
            let line = Array(pending[..<newline])
            pending.removeSubrange(...newline)
            if discarding {
                discarding = false
                continue
            }
            if let event = try? JSONLines.decode(ChildEvent.self, from: line) {
                events.append(event)
            } else {
                undecodable = Array((undecodable + [String(decoding: line.prefix(200), as: UTF8.self)]).suffix(20))
            }
        }
        if pending.count > Self.maximumLineBytes {
            pending.removeAll()
            discarding = true
            undecodable = Array((undecodable + ["(a line over \(Self.maximumLineBytes) bytes, dropped)"]).suffix(20))
        }
        return events
    }
}
