import ArgumentParser
import Harness
import ResultsFormat

/// The measured child of `run`: reads its request on standard input and speaks the child protocol
/// (docs/child-protocol.md) on the descriptors the environment names. Not for direct use.
struct MeasureRunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "measure-run",
        abstract: "(internal) The measured child of `run`: one request on stdin, events on the protocol's descriptor.",
        shouldDisplay: false)

    func run() throws {
        try reportingErrors {
            do { try MeasuredChild.run() } catch is MeasuredChild.ParentGone { return }
        }
    }
}
