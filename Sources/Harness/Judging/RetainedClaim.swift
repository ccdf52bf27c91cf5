import Loading
import Probes
import ResultsFormat
import TensorEngine

/// Memory retained after the load: what the process still holds as its own (anonymous) memory at the end
/// reading — after the load, with the model alive (the engine's child; a Python driver's after its touch and
/// `gc.collect()`) — over its baseline. A loader command says nowhere when its load is done, and its last
/// reading before it exits falls in the interpreter's teardown, which frees everything: it has no retained figure
/// (absent, not zero) until it speaks the protocol's `loaded` and `result` (docs/loaders.md).
///
/// The claim: it holds the model's bytes and no more — the model at its target dtype (M_t), except mmap, whose
/// own bytes are only what it converted (its mapped pages are the page cache's), and device-map, whose RAM holds
/// only the cpu share its prediction is. With the run's tolerance; file-backed pages retained are reported, not
/// bounded (a mapped checkpoint's pages are the page cache's to drop). A loader that keeps its state dict alive
/// after building the model passes its peak claim and fails this one.
extension ClaimChecker {
    /// The bytes the loaded model owns in this process.
    static func retainedModelBytes(_ m: RunMeasurement) -> Int {
        switch m.strategy {
        case .mmap, .deviceMap: m.predictedPeakBytes
        default: m.figures.modelBytes
        }
    }

    /// The check, when the end and baseline readings both have RssAnon (absent figures are never zero).
    func retainedCheck(_ m: RunMeasurement) -> Check? {
        if case .command? = m.outside?.subject { return nil }
        guard let end = m.end[.rssAnon], let start = m.baseline[.rssAnon] else { return nil }
        let model = Self.retainedModelBytes(m)
        let bound = model + tolerance.bytes(for: model)
        let file = both(m.end[.rssFile], m.baseline[.rssFile]).map { " (RssFile Δ \(ByteSize.binary($0 - $1)))" } ?? ""
        return Check(
            .retainedWithinModel, measuredBytes: end - start, boundBytes: bound, relation: .atMost,
            detail:
                "RssAnon at the end minus baseline, model alive, vs the model's own \(ByteSize.binary(model))\(file)")
    }
}

private func both(_ a: Int?, _ b: Int?) -> (Int, Int)? {
    guard let a, let b else { return nil }
    return (a, b)
}
