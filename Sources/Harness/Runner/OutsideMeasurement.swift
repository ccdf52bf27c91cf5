import Foundation
import Loading
import OSLayer
import Probes
import ResultsFormat
import TensorEngine

/// The measurement of a loader outside this tool, assembled by the runner from what its probe saw and what the
/// loader reported: the same figures and formula as the engine's run (from the headers), the kernel's figures as
/// deltas over the baseline, no ledger, no jemalloc. The judge then judges it as it judges the engine's.
package enum OutsideMeasurement {
    package static func assemble(
        run: Scenario.Run, outcome: ChildRunner.Outcome, prediction: ScalePlanner.RunPrediction
    ) -> RunMeasurement? {
        guard let seen = outcome.observation else { return nil }
        let result = outcome.subjectResult
        // Samples of the exited, unreaped process (no VmRSS) are not readings of a load.
        let samples = seen.sampled.samples.filter { $0.seconds >= seen.baselineSeconds && $0.reading[.rss] != nil }
        let loadSamples = samples.filter { $0.seconds <= (seen.endOfLoadSeconds ?? .infinity) }
        let final = seen.final ?? samples.last?.reading ?? seen.baseline
        let loadSeconds =
            result?.loadSeconds ?? (seen.endOfLoadSeconds ?? seen.finalSeconds ?? 0) - seen.baselineSeconds
        var m = RunMeasurement(
            strategy: run.strategy, dtype: result?.dtype.flatMap { DType(torchName: $0) } ?? prediction.dtype,
            dtypeSource: run.dtype == nil ? .config : .requested, figures: prediction.figures,
            formula: prediction.formula,
            predictedPeakBytes: prediction.predictedPeakBytes, seconds: loadSeconds,
            baseline: seen.baseline, end: final,
            peaks: Self.kernelPeaks(
                samples, marks: [seen.endOfLoad, final].compactMap { $0 }, baseline: seen.baseline),
            phases: seen.phases, sampler: SamplerStats(seen.sampled, loadSeconds: loadSeconds),
            timeline: ProcessTimeline(
                samples: samples, baseline: seen.baseline,
                columns: ProcessTimeline.kernelColumns
                    + (outcome.observation?.sampled.samples.first?.reading[.pss] != nil
                        ? ProcessTimeline.pssColumns : [])),
            missingKeys: result?.missingKeys ?? [], unexpectedKeys: result?.unexpectedKeys ?? [],
            timelineOriginSeconds: seen.originSeconds, loader: .outside(RunMeasurement.Outside(subject: run.subject)))
        var own = RunMeasurement.Outside(subject: run.subject)
        if let endOfLoad = seen.endOfLoad {
            own.endOfLoad = endOfLoad
            own.loadPeaks = Self.kernelPeaks(loadSamples, marks: [endOfLoad], baseline: seen.baseline)
        }
        own.touchSeconds = result?.touchSeconds
        own.subjectVersions = outcome.hello?.versions
        own.hfDeviceMap = result?.hfDeviceMap.map(Self.mapEntries)
        own.planDeviceMap = prediction.deviceMap
        own.notes = result?.notes.flatMap { $0.isEmpty ? nil : $0 }
        own.peakSource = Self.peakSource(seen, exit: outcome.exit)
        own.codePagesBytes = Self.codePages(baseline: seen.baseline, final: final)
        own.attribution = outcome.attribution
        own.attributionFailure = outcome.attributionFailure
        m.loader = .outside(own)
        m.retained = Self.retained(seen, spokeResult: result != nil)
        return m
    }

    /// A protocol speaker's end reading (taken while it waits to exit after its result); a command that sent
    /// only `loaded`, its reading then; nothing for a command that said neither: its last reading falls in its
    /// interpreter's teardown.
    static func retained(_ seen: ExternalProbe.Observation, spokeResult: Bool) -> RetainedMemory? {
        if spokeResult, let final = seen.final {
            return RetainedMemory(at: .end, reading: final, baseline: seen.baseline)
        }
        return seen.endOfLoad.flatMap { RetainedMemory(at: .loaded, reading: $0, baseline: seen.baseline) }
    }

    /// The kernel figures' peaks over the samples and the marked readings; VmHWM read at the last mark.
    static func kernelPeaks(_ samples: [MemorySample], marks: [MemoryReading], baseline: MemoryReading) -> PeakDeltas {
        PeakDeltas(
            ReadingSeries(baseline: baseline, samples: samples, marks: marks), figures: PeakDeltas.kernelFigures)
    }

    /// Growth of the file pages that are not the checkpoint's, from the baseline to the end (nil when smaps was
    /// not read at both).
    static func codePages(baseline: MemoryReading, final: MemoryReading) -> Int? {
        guard let fileBefore = baseline[.rssFile], let checkpointBefore = baseline[.rssFileCheckpoint],
            let fileAfter = final[.rssFile],
            let checkpointAfter = final[.rssFileCheckpoint]
        else { return nil }
        return max(0, (fileAfter - checkpointAfter) - (fileBefore - checkpointBefore))
    }

    /// transformers' map as entries in module order (its devices are `cpu`, `disk` or accelerator indices).
    static func mapEntries(_ map: [String: String]) -> [DeviceUsage.MapEntry] {
        map.sorted { $0.key.localizedStandardCompare($1.key) == .orderedAscending }
            .map { DeviceUsage.MapEntry(module: $0.key, device: Device(parsing: $0.value) ?? .cpu) }
    }

    static func peakSource(_ seen: ExternalProbe.Observation, exit: ChildExit?) -> String {
        if seen.marked && seen.final != nil {
            return
                "VmHWM read from /proc/PID/status while the loader waited to exit (reset with clear_refs at its baseline, after its imports)"
        }
        let rusage =
            exit.map {
                " wait4's ru_maxrss, \(ByteSize.binary($0.resourceUsage.maxRSSBytes)), also counts the parent's pages the child mapped until exec: an upper bound, not used."
            } ?? ""
        return
            "the last VmHWM sampled before the program exited (it does not speak the protocol: no baseline after its imports, and growth after the last sample, within one interval, is not seen);"
            + rusage
    }
}

extension ChildRunner.Outcome {
    /// The outcome with a loader's measurement assembled from what the probe saw (the engine's child sends its
    /// own, to which its retained memory is added); no measurement for a loader without a prediction.
    package func assembled(run: Scenario.Run, prediction: ScalePlanner.RunPrediction?) -> ChildRunner.Outcome {
        var outcome = self
        guard !run.subject.isEngine else {
            outcome.measurement?.retained = measurement.flatMap {
                RetainedMemory(at: .end, reading: $0.end, baseline: $0.baseline)
            }
            return outcome
        }
        outcome.measurement = prediction.flatMap {
            OutsideMeasurement.assemble(run: run, outcome: self, prediction: $0)
        }
        return outcome
    }
}
