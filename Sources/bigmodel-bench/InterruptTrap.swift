import Foundation
import OSLayer
import TensorEngine

/// Ctrl-C for long writes: installs Probes' signal trap so SIGINT/SIGTERM set a flag that loops poll,
/// letting them stop cleanly and remove partial output instead of dying mid-file.
struct InterruptTrap {
    init() {
        try? SignalTrap.install()
    }

    func isInterrupted() -> Bool { SignalTrap.interrupted }
}

/// A progress line on stderr: redrawn in place on a terminal, a line per 10% otherwise.
final class ProgressLine {
    let total: Int
    let label: String
    private var lastDecile = -1
    private let start = ContinuousClock.now

    init(total: Int, label: String) {
        self.total = total
        self.label = label
    }

    func update(_ done: Int) {
        let fraction = total > 0 ? Double(done) / Double(total) : 1
        let decile = Int(fraction * 10)
        let seconds = (ContinuousClock.now - start).inSeconds
        if stderrIsTerminal {
            let eta = fraction > 0 ? seconds / fraction - seconds : 0
            printInPlace(
                "\(label): \(ByteSize.fixed(fraction * 100, digits: 1))% of \(ByteSize.binary(total)), ETA \(ByteSize.fixed(eta, digits: 0)) s"
            )
        } else if decile != lastDecile {
            lastDecile = decile
            printProgress("\(label): \(decile * 10)% of \(ByteSize.binary(total))")
        }
    }

    func finish() {
        if stderrIsTerminal { printInPlace("") }
    }

    private func printInPlace(_ text: String) {
        FileHandle.standardError.write(Data(("\r\u{1B}[K" + text).utf8))
    }
}
