import Loading
import ResultsFormat
import TensorEngine

/// The claims on a loader measured from outside (transformers, a command): the same formula from the same
/// headers, bounded on RssAnon and on VmHWM (anon + file) separately, so that "only the model", held as
/// mapped file pages rather than the loader's own memory, is a named outcome and not a silent pass.
///
/// - upper bounds: RssAnon Δ and VmHWM Δ each ≤ predicted + tolerance (mmap: VmHWM Δ may also hold the mapped
///   file's pages, M_map; what the loader owns is bounded by RssAnon);
/// - lower bound, where the claim is a high cost (naive, load-then-cast): VmHWM Δ ≥ predicted − tolerance
///   (the copies may be file pages: a state dict of mapped tensors is still in RAM);
/// - device-map: transformers' `hf_device_map` equals the one `plan` computes for the same budgets.
/// There is no ledger and no jemalloc here: no agreement checks.
extension ClaimChecker {
    func subjectOutcome(
        _ m: RunMeasurement, _ outside: RunMeasurement.Outside, upper: Int, lower: Int?, tolerance tol: Int
    ) -> Outcome {
        let peaks = m.judgedPeaks
        let hwmName: CheckKind.BoundFigure = outside.codePagesBytes == nil ? .vmhwm : .vmhwmLessCodePages
        let mapped = m.strategy == .mmap ? (m.figures.mappedBytes ?? 0) : 0
        var checks = boundChecks(peaks, upper: upper, lower: nil, vmhwm: hwmName, mapped: mapped)
        if let lower, let hwm = peaks[.vmhwm] {
            checks.append(
                Check(
                    .reachesLowerBound(hwmName), measuredBytes: hwm, boundBytes: lower, relation: .atLeast,
                    detail: "the claim is a high cost: anonymous copies and resident file pages both count"))
        }
        if let check = deviceMapCheck(outside) { checks.append(check) }
        if let retained = retainedCheck(m) { checks.append(retained) }
        let failed = checks.filter { !$0.passed }
        let outcome = { (verdict: Verdict, detail: String) in
            Outcome(
                verdict: verdict, detail: detail, checks: checks, upperBoundBytes: upper, lowerBoundBytes: lower,
                toleranceBytes: tol)
        }
        let held = Self.residencySentence(m, tolerance: tol)
        guard failed.isEmpty else {
            return outcome(.fail, failed.map(\.failureDescription).joined(separator: "; ") + "; " + held)
        }
        let code = outside.codePagesBytes.map { " less \(ByteSize.binary($0)) of code pages" } ?? ""
        return outcome(
            .pass,
            "every bound held: peak \(ByteSize.binary(peaks[.vmhwm] ?? 0)) (VmHWM Δ\(code)) vs predicted \(ByteSize.binary(m.predictedPeakBytes)) ± \(ByteSize.binary(tol)); "
                + held)
    }

    /// `hf_device_map` against the expected map (the modules that differ; 0 when equal).
    func deviceMapCheck(_ outside: RunMeasurement.Outside) -> Check? {
        guard let actual = outside.hfDeviceMap, let expected = outside.planDeviceMap else { return nil }
        let mine = Dictionary(expected.map { ($0.module, $0.device) }, uniquingKeysWith: { first, _ in first })
        let theirs = Dictionary(actual.map { ($0.module, $0.device) }, uniquingKeysWith: { first, _ in first })
        let differing = Set(mine.keys).union(theirs.keys).filter { mine[$0] != theirs[$0] }
        return Check(
            .deviceMapEqualsPlan, measuredBytes: differing.count, boundBytes: 0, relation: .equal,
            detail: differing.isEmpty
                ? "\(actual.count) modules, each on the device plan gives it"
                : "modules placed differently: \(differing.sorted().prefix(5).joined(separator: ", "))")
    }

    /// Where the loader held the claimed bytes.
    /// Judged against the bytes the claim says are held: the predicted peak, and for mmap its mapped pages too.
    static func residency(_ m: RunMeasurement, tolerance: Int) -> Residency {
        let held = m.predictedPeakBytes + (m.strategy == .mmap ? (m.figures.mappedBytes ?? 0) : 0)
        let floor = max(0, held - tolerance)
        let anon = m.peaks[.rssAnon] ?? 0
        let hwm = m.judgedPeaks[.vmhwm] ?? anon
        if anon >= floor && (anon > 0 || held == 0) { return .anonymous }
        if hwm < floor { return .notResident }
        return anon < held / 10 ? .filePages : .mixed
    }

    static func residencySentence(_ m: RunMeasurement, tolerance: Int) -> String {
        let anon = ByteSize.binary(m.peaks[.rssAnon] ?? 0)
        let mapped =
            m.end[.rssFileCheckpoint].map { " (\(ByteSize.binary($0)) of it the checkpoint's, by smaps)" } ?? ""
        let file = ByteSize.binary(m.peaks[.rssFile] ?? 0) + mapped
        switch residency(m, tolerance: tolerance) {
        case .anonymous: return "held as the loader's own memory (RssAnon Δ \(anon))"
        case .filePages:
            return "held only as file pages: RssAnon Δ \(anon), the mapped checkpoint's pages RssFile Δ \(file)"
        case .mixed: return "held partly as file pages: RssAnon Δ \(anon), RssFile Δ \(file)"
        case .notResident:
            return "never all resident at once (RssAnon Δ \(anon), RssFile Δ \(file)): the weights stayed lazily mapped"
        }
    }
}
