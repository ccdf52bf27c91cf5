import ResultsFormat

extension Comparison {
    /// A sweep's lines side by side: each fit's slope (gated: it may grow by at most the slope threshold in
    /// copies) and its fixed cost (shown), matched by run and figure. Lines are scale-free, so two sweeps of
    /// different sizes still compare here.
    static func fitRows(
        baseline: ScenarioResults, current: ScenarioResults, options: Options, comparable: Bool, memoryGated: Bool
    ) -> [Row] {
        let currentFits = current.fits ?? []
        var rows: [Row] = []
        for b in baseline.fits ?? [] {
            guard let bs = b.slope else { continue }
            let c = currentFits.first { $0.run == b.run && $0.figure == b.figure }
            let (gated, note) = gating(.memory, comparable: comparable, memoryGated: memoryGated, gateTimes: false)
            let status = slopeStatus(bs, c?.slope, threshold: options.slopeThreshold, comparable: comparable)
            let judged = b.figure.isJudged(for: b.strategy)
            rows.append(
                Row(
                    run: b.run, figure: "slope:\(b.figure.rawValue)", title: "\(b.figure.label) slope", unit: .copies,
                    baseline: .quantity(.copies(bs)), current: c?.slope.map { .quantity(.copies($0)) },
                    status: status, gated: gated && judged,
                    note: judged ? note : "not gated: the run's claim is on another figure"))
            if let bi = b.interceptBytes {
                rows.append(
                    Row(
                        run: b.run, figure: "intercept:\(b.figure.rawValue)", title: "\(b.figure.label) fixed cost",
                        unit: .bytes, baseline: .quantity(.bytes(bi)),
                        current: c?.interceptBytes.map { .quantity(.bytes($0)) },
                        status: c?.interceptBytes == nil ? .missing : comparable ? .unchanged : .notCompared,
                        gated: false, note: "shown, not gated: a loader's fixed cost moves with its interpreter"))
            }
        }
        return rows
    }

    static func slopeStatus(_ baseline: Double, _ current: Double?, threshold: Double, comparable: Bool) -> Status {
        guard comparable else { return .notCompared }
        guard let current else { return .missing }
        if current - baseline > threshold { return .regression }
        if baseline - current > threshold { return .improvement }
        return .unchanged
    }
}
