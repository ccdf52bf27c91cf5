import ArgumentParser
import Checkpoint
import Foundation
import Loading
import OSLayer
import OrderedCollections
import Placement
import Probes
import StrictJSON
import TensorEngine

struct LoadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract:
            "Load a checkpoint into its model with one strategy, in this process, and report the ledger's exact peak.",
        discussion: """
            Strategies and the ledger peak each must reach exactly (M_t model bytes at the target dtype, M_ck checkpoint \
            tensor bytes, M_32 model bytes in float32, S largest shard, T_t largest parameter at the target dtype):
              naive           M_t + M_ck     random-init model, whole state dict read, copied in, freed
              sharded         M_t + S        random-init model, then one shard at a time
              low-memory      M_t + staging  meta skeleton, each tensor read straight into place
              dtype-direct    M_t + staging  low-memory with an explicit --dtype, converting through staging
              load-then-cast  M_32 + T_t     float32 model, loaded, then cast tensor by tensor
              device-map      Σ P_i + P_cpu + staging   placed across simulated accelerators, cpu and disk \
            (--device-map, --max-memory, …; see `plan`); each accelerator's peak is exactly its placed bytes P_i, \
            disk tensors stay in files (--offload-folder)
            For repeatable measurements with RSS sampling, use `run` with a scenario.

            Examples:
              bigmodel-bench load /tmp/model --strategy low-memory
              bigmodel-bench load /tmp/model --strategy dtype-direct --dtype float16 --json
            """)

    @Argument(help: "A checkpoint folder or .safetensors file.", completion: .file())
    var path: String

    @Option(
        help: "How to load it: one of \(StrategyName.names).", completion: .list(StrategyName.allCases.map(\.rawValue)),
        transform: StrategyName.parseNamed)
    var strategy: StrategyName

    @Option(
        help:
            "Target dtype (float16, bfloat16, float32, float64); default auto (config dtype, else the first floating tensor)."
    )
    var dtype: DTypeArgument?

    @Flag(help: "Fail (exit 65) when the checkpoint lacks model keys or has unexpected ones, before loading anything.")
    var strict = false

    @Flag(help: "Print one JSON object.")
    var json = false

    @Flag(help: "Include the SHA-256 of every loaded tensor.")
    var digests = false

    @OptionGroup(title: "device-map strategy")
    var placement: DeviceMapOptions

    @Option(
        help:
            "device-map: the folder for weights placed on disk that must be written (<name>.dat + index.json), as accelerate's offload_folder."
    )
    var offloadFolder: String?

    func run() throws {
        try reportingErrors {
            let name = strategy
            if name != .deviceMap && (placement.isGiven || offloadFolder != nil) {
                throw UsageError(
                    "--device-map, --max-memory, --accelerator-memory, --no-split and --offload-folder apply only to --strategy device-map"
                )
            }
            let target = try dtype?.castTarget()
            let checkpoint = try Checkpoint(path: path)
            for warning in checkpoint.warnings { printWarning(warning) }
            // device-map: placed and predicted before anything is loaded.
            let strategy: any LoadStrategy =
                name == .deviceMap
                ? DeviceMapLoad(request: try placement.request(), offloadFolder: offloadFolder) : name.strategy
            let load = try InProcessLoad(checkpoint: checkpoint, dtype: target, strategy: strategy) { plan in
                if strict { try plan.checkStrict() }
            }
            for warning in load.prepared?.placement.warnings ?? [] { printWarning(warning) }
            let (plan, figures, ledger, phases) = (load.plan, load.plan.figures, load.ledger, load.phases)
            ProcessMemory.resetPeakRSS()
            let before = try? ProcessMemory.read()
            let start = ContinuousClock.now
            let loaded = try load.run()
            let (model, placementReport) = (loaded.model, loaded.placement)
            let seconds = (ContinuousClock.now - start).inSeconds
            let after = try? ProcessMemory.read()
            let tensorDigests = digests ? model.digests() : []
            let predicted = load.predictedPeakBytes
            var report = Self.report(
                strategy: name, plan: plan, figures: figures, predicted: predicted, ledger: ledger,
                phases: phases.phases, seconds: seconds,
                before: before, after: after, digests: digests ? tensorDigests : nil)
            if let placementReport, case .object(var object) = report {
                object["device_placement"] = placementReport.json
                report = .object(object)
            }
            withExtendedLifetime(model) {}
            if json {
                print(JSONWriter.pretty.string(report))
            } else {
                print(
                    Self.text(
                        name, plan: plan, figures: figures, predicted: predicted, ledger: ledger, phases: phases.phases,
                        seconds: seconds, after: after, digests: digests ? tensorDigests : nil), terminator: "")
                if let placementReport { print(Self.text(placementReport), terminator: "") }
            }
        }
    }

    static func report(
        strategy: StrategyName, plan: LoadPlan, figures: MemoryFigures, predicted: Int, ledger: MemoryLedger,
        phases: [PhaseLog.Phase], seconds: Double,
        before: ProcessMemory?, after: ProcessMemory?,
        digests: [(name: String, dtype: DType, shape: [Int], sha256: String)]?
    ) -> JSONValue {
        var object: OrderedDictionary<String, JSONValue> = [
            "strategy": .string(strategy.rawValue),
            "dtype": .string(plan.dtype.torchName),
            "dtype_source": .string(plan.dtypeSource.rawValue),
            "formula": .string(strategy.strategy.formula),
            "model_bytes": JSONValue(figures.modelBytes),
            "checkpoint_bytes": JSONValue(figures.checkpointBytes),
            "model_float32_bytes": JSONValue(figures.model32Bytes),
            "largest_shard_bytes": JSONValue(figures.largestShardBytes),
            "largest_tensor_bytes": JSONValue(figures.largestTensorBytes),
            "staging_bytes": JSONValue(figures.stagingBytes),
            "predicted_peak_bytes": JSONValue(predicted),
            "ledger_peak_bytes": JSONValue(ledger.peakBytes),
            "phases": .array(
                phases.map { phase in
                    .object([
                        "name": .string(phase.name),
                        "seconds": JSONValue(phase.endSeconds - phase.startSeconds),
                        "ledger_live_bytes": JSONValue(phase.ledgerLiveBytesAtEnd),
                    ])
                }),
            "seconds": JSONValue(seconds),
            "missing_keys": .array(plan.missingKeys.map { .string($0) }),
            "unexpected_keys": .array(plan.unexpectedKeys.map { .string($0) }),
            "rss": .object([
                "vmhwm_bytes": after?.vmHWMBytes.map { JSONValue($0) } ?? .null,
                "vmrss_before_bytes": before?.vmRSSBytes.map { JSONValue($0) } ?? .null,
                "rss_anon_end_bytes": after?.rssAnonBytes.map { JSONValue($0) } ?? .null,
                "rss_file_end_bytes": after?.rssFileBytes.map { JSONValue($0) } ?? .null,
                "note": .string(
                    "VmHWM after a reset via /proc/self/clear_refs at start; in-process, not isolated: use `run` for verdicts"
                ),
            ]),
        ]
        if let digests {
            object["tensors"] = .array(
                digests.map { d in
                    .object([
                        "name": .string(d.name), "dtype": .string(d.dtype.safetensorsName),
                        "shape": .array(d.shape.map { JSONValue($0) }),
                        "sha256": .string(d.sha256),
                    ])
                })
        }
        return .object(object)
    }

    /// The per-device table of a device-map load.
    static func text(_ report: DevicePlacementReport) -> String {
        var rows = [
            [
                "device", "budget", "capacity", "placed", "predicted peak", "ledger peak", "arena allocated",
                "within budget",
            ]
        ]
        for d in report.devices {
            rows.append([
                d.device.description, d.budgetBytes.map(String.init) ?? "-", d.capacityBytes.map(String.init) ?? "-",
                String(d.placedBytes),
                String(d.predictedPeakBytes), String(d.ledgerPeakBytes), d.arenaAllocatedBytes.map(String.init) ?? "-",
                d.withinBudget ? "yes" : "NO",
            ])
        }
        var out =
            "\ndevice map (\(report.mode)): \(report.deviceMap.count) entries; staging \(report.stagingBytes) bytes on cpu\n"
        out += TextTable.render(rows, rightAligned: [1, 2, 3, 4, 5, 6])
        let offload = report.offload
        if offload.writtenBytes > 0 || offload.referencedBytes > 0 {
            out += "disk: \(offload.writtenFiles.count) .dat files (\(offload.writtenBytes) bytes) written"
            out += offload.folder.map { " to \($0)" } ?? ""
            out += ", \(offload.referencedBytes) bytes referenced in place in the checkpoint\n"
        }
        return out
    }

    static func text(
        _ strategy: StrategyName, plan: LoadPlan, figures: MemoryFigures, predicted: Int, ledger: MemoryLedger,
        phases: [PhaseLog.Phase], seconds: Double,
        after: ProcessMemory?, digests: [(name: String, dtype: DType, shape: [Int], sha256: String)]?
    ) -> String {
        var out =
            "\(strategy.rawValue) → \(plan.dtype.torchName) (\(plan.dtypeSource)) in \(ByteSize.fixed(seconds, digits: 3)) s\n"
        out +=
            "predicted ledger peak  \(predicted) bytes (\(ByteSize.binary(predicted))) = \(strategy.strategy.formula)\n"
        out +=
            "measured ledger peak   \(ledger.peakBytes) bytes (\(ByteSize.binary(ledger.peakBytes))) \(ledger.peakBytes == predicted ? "= predicted" : "≠ predicted")\n"
        out +=
            "  M_t \(figures.modelBytes)  M_ck \(figures.checkpointBytes)  M_32 \(figures.model32Bytes)  S \(figures.largestShardBytes)  T_t \(figures.largestTensorBytes)  staging \(figures.stagingBytes)\n"
        if let after {
            out +=
                "process VmHWM \(ByteSize.binary(after.vmHWMBytes ?? 0)), at end RssAnon \(ByteSize.binary(after.rssAnonBytes ?? 0)), RssFile \(ByteSize.binary(after.rssFileBytes ?? 0))\n"
        }
        if !plan.missingKeys.isEmpty {
            out += "missing keys (initialised): \(plan.missingKeys.joined(separator: ", "))\n"
        }
        if !plan.unexpectedKeys.isEmpty {
            out += "unexpected keys (ignored): \(plan.unexpectedKeys.joined(separator: ", "))\n"
        }
        var rows = [["phase", "seconds", "ledger live at end"]]
        for phase in phases {
            rows.append([
                phase.name, ByteSize.fixed(phase.endSeconds - phase.startSeconds, digits: 3),
                ByteSize.binary(phase.ledgerLiveBytesAtEnd),
            ])
        }
        out += TextTable.render(rows, rightAligned: [1, 2])
        if let digests {
            out +=
                "\n"
                + TextTable.render(
                    [["tensor", "dtype", "sha256"]] + digests.map { [$0.name, $0.dtype.safetensorsName, $0.sha256] })
        }
        return out
    }
}
