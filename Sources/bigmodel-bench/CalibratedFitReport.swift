import Harness
import OrderedCollections
import ResultsFormat
import StrictJSON
import TensorEngine

/// `fit --calibration`'s table and JSON.
enum CalibratedFitReport {
    static func text(_ fit: CalibratedFit, rows: [CalibratedFit.Row], answer: FitPlanner.Answer) -> String {
        var out =
            "\(answer.model): \(ByteSize.decimal(answer.checkpointBytes)) of checkpoint; memory \(ByteSize.binary(fit.memoryBytes))\n"
        out +=
            "predicted by the lines measured in \(fit.calibrationPath) (\(fit.calibration.scenario.name), \(fit.calibration.environment.hostname), \(fit.calibration.sweep?.points.count ?? 0) sizes up to \(ByteSize.decimal(fit.calibration.sweep?.points.last?.checkpoint.totalSizeBytes ?? 0)))\n\n"
        var table = [
            [
                "loader", "path", "copies", "fixed", "VmHWM Δ", "± error", "RssAnon Δ", "formula", "needs", "headroom",
                "verdict",
            ]
        ]
        for row in rows {
            let e = row.estimate
            table.append([
                row.subject.name, row.run, SweepFitting.copies(row.copies), FitReport.signed(row.fixedBytes),
                ByteSize.binary(row.predictedVMHWMBytes), row.uncertaintyBytes.map { ByteSize.binary($0) } ?? "-",
                row.predictedAnonBytes.map(FitReport.signed) ?? "-", row.formulaBytes.map(FitReport.signed) ?? "-",
                ByteSize.binary(e.needBytes), FitReport.signed(e.headroomBytes),
                e.statusText + (row.caveat.map { " (\($0))" } ?? ""),
            ])
        }
        out += TextTable.render(table, rightAligned: [2, 3, 4, 5, 6, 7, 8, 9])
        out += "\n"
        for (loader, pick) in CalibratedFit.picks(rows) {
            out +=
                pick.map {
                    "pick for \(loader.name): \($0.run), \(ByteSize.binary($0.estimate.needBytes)) predicted, \(ByteSize.binary($0.estimate.headroomBytes)) to spare\($0.estimate.status == .tight ? " (tight)" : "")\n"
                } ?? "no path of \(loader.name) fits in \(ByteSize.binary(fit.memoryBytes))\n"
        }
        out +=
            "VmHWM Δ: copies × checkpoint bytes + fixed, the sweep's least-squares line; ± error: its standard error of a new point at this size; "
        out +=
            "formula: the engine's formula as a line; needs: × ranks (mmap's mapped pages once); fits: needs + the run's tolerance + 2 × error ≤ memory; tight: only needs ≤ memory\n"
        return out
    }

    static func json(_ fit: CalibratedFit, rows: [CalibratedFit.Row], answer: FitPlanner.Answer) -> JSONValue {
        var o = OrderedDictionary<String, JSONValue>()
        o["model"] = .string(answer.model)
        o["checkpoint_bytes"] = JSONValue(answer.checkpointBytes)
        o["memory_bytes"] = JSONValue(fit.memoryBytes)
        o["source"] = .string("calibration")
        o["calibration"] = .string(fit.calibrationPath)
        o["paths"] = .array(rows.map(row))
        var picks = OrderedDictionary<String, JSONValue>()
        for (loader, pick) in CalibratedFit.picks(rows) { picks[loader.name] = pick.map { .string($0.run) } ?? .null }
        o["picks"] = .object(picks)
        return .object(o)
    }

    static func row(_ row: CalibratedFit.Row) -> JSONValue {
        let e = row.estimate
        var o = OrderedDictionary<String, JSONValue>()
        o["subject"] = .string(row.subject.name)
        o["path"] = .string(row.run)
        o["strategy"] = .string(row.strategy.rawValue)
        o["ranks"] = JSONValue(e.ranks)
        o["copies"] = .number(JSONNumber(row.copies))
        o["fixed_bytes"] = JSONValue(row.fixedBytes)
        o["predicted_vmhwm_bytes"] = JSONValue(row.predictedVMHWMBytes)
        if let value = row.predictedAnonBytes { o["predicted_anon_bytes"] = JSONValue(value) }
        if let value = row.uncertaintyBytes { o["uncertainty_bytes"] = JSONValue(value) }
        if let value = row.formulaBytes { o["formula_peak_bytes"] = JSONValue(value) }
        o["need_bytes"] = JSONValue(e.needBytes)
        o["tolerance_bytes"] = JSONValue(e.toleranceBytes)
        o["headroom_bytes"] = JSONValue(e.headroomBytes)
        o["status"] = .string(e.status.rawValue)
        o["sweep_verdict"] = .string(row.sweepVerdict.rawValue)
        if let caveat = row.caveat { o["caveat"] = .string(caveat) }
        return .object(o)
    }
}
