import Checkpoint
import Foundation
import OSLayer
import Probes
import ResultsFormat
import TensorEngine

extension ScenarioRunner {
    /// A sweep's sizes, smallest first, each with its checkpoint (generated or from the cache) and predictions:
    /// the scenario's scale is chosen once (`"fit"` as for one size), and every fraction of it is one size.
    func prepareSweep(_ plan: SweepPlan) throws -> (
        sizes: [PreparedScenario], system: SystemInfo, memoryBytes: Int, sweep: SweepInfo
    ) {
        let machine = self.machine()
        let base = try preparation(machine).chooseScale()
        let scales = plan.scales(base: base.chosen)
        onEvent(
            .note(
                "sweep: scales \(scales.map(SweepFitting.scaleText).joined(separator: ", ")) (fractions of \(SweepFitting.scaleText(base.chosen)): \(base.reason))"
                    + (plan.holdout ? "; scale \(SweepFitting.scaleText(scales.last ?? 0)) held out" : "")))
        var sizes: [PreparedScenario] = []
        for (index, (fraction, scale)) in zip(plan.fractions, scales).enumerated() {
            if SignalTrap.interrupted { throw WriteInterrupted(path: options.workDirectory) }
            var info = base
            info.requested = "\(SweepFitting.scaleText(fraction)) × \(base.requested)"
            info.chosen = scale
            info.reason =
                "sweep size \(index + 1) of \(scales.count): \(SweepFitting.scaleText(fraction)) × scale \(SweepFitting.scaleText(base.chosen))"
            sizes.append(
                try preparation(machine).prepare(
                    progress: { [onEvent] in onEvent(.generating(done: $0, total: $1)) }, note: { onEvent(.note($0)) },
                    share: { _ in info }))
        }
        let points = sizes.map { SweepPoint(scale: $0.scale.chosen, checkpoint: $0.checkpoint) }
        let sweep = SweepInfo(
            fractions: plan.fractions, baseScale: base.chosen, heldOutScale: plan.heldOut(base: base.chosen),
            points: points)
        return (sizes, machine.system, machine.memoryBytes, sweep)
    }

    /// The machine as a run sees it: its readings, what the host has available, and the memory offered
    /// (MemAvailable, or `--memory-limit` when smaller).
    struct Machine {
        let system: SystemInfo
        let availableBytes: Int
        let memoryBytes: Int
    }

    func machine() -> Machine {
        let system = SystemInfo.current(diskPath: options.workDirectory)
        let available = system.memAvailableBytes ?? system.memTotalBytes ?? 0
        return Machine(
            system: system, availableBytes: available,
            memoryBytes: options.memoryLimit.map { min($0, available) } ?? available)
    }

    func preparation(_ machine: Machine) -> CheckpointPreparation {
        CheckpointPreparation(
            scenario: scenario, scaleOverride: options.scale, memoryBytes: machine.memoryBytes,
            hostAvailableBytes: machine.availableBytes, diskFreeBytes: machine.system.disk?.availableBytes,
            workDirectory: options.workDirectory)
    }

    /// Before the held-out size is measured: each run's VmHWM Δ predicted there by the line through the sizes
    /// measured so far, said as a note (the results' fits record the same prediction with the measurement).
    func announceHoldout(_ results: ScenarioResults) {
        guard let sweep = results.sweep, let scale = sweep.heldOutScale else { return }
        var partial = results
        partial.sweep?.heldOutScale = nil
        for fit in SweepFitting.fits(partial) where fit.figure == FitFigure.claimed(for: fit.strategy) {
            guard let bytes = sweep.checkpointBytes(at: scale), let predicted = fit.predictedBytes(at: bytes) else {
                continue
            }
            onEvent(
                .note(
                    "held out: \(fit.run) at scale \(SweepFitting.scaleText(scale)) predicted \(fit.figure.label) \(ByteSize.binary(predicted)) (\(SweepFitting.costSentence(fit)))"
                ))
        }
    }
}
