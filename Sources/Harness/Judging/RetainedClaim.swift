import Loading
import Probes
import ResultsFormat
import TensorEngine

/// Memory retained after the load (``RetainedMemory``): what the process still holds as its own (anonymous)
/// memory once the load is done, with the model alive — the engine's child after its load; a protocol speaker's
/// while it waits to exit after its result (a Python driver's after its touch and `gc.collect()`); a loader
/// command's at its `loaded` event. A command that sends neither has no retained figure (absent, not zero): its
/// last reading falls in its interpreter's teardown, which frees everything (docs/loaders.md).
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

    /// The check, when the run has a retained figure (absent figures are never zero).
    func retainedCheck(_ m: RunMeasurement) -> Check? {
        guard let retained = m.retained else { return nil }
        let model = Self.retainedModelBytes(m)
        let bound = model + tolerance.bytes(for: model)
        let file = retained.rssFileDeltaBytes.map { " (RssFile Δ \(ByteSize.binaryWithMinus($0)))" } ?? ""
        let moment = retained.at == .end ? "at the end" : "at its loaded event"
        return Check(
            .retainedWithinModel, measuredBytes: retained.rssAnonDeltaBytes, boundBytes: bound, relation: .atMost,
            detail: "RssAnon \(moment) minus baseline, model alive, vs the model's own \(ByteSize.binary(model))\(file)"
        )
    }
}
