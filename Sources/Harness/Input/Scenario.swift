import Checkpoint
import Foundation
import Loading
import Models
import OSLayer
import OrderedCollections
import ResultsFormat
import StrictJSON
import TensorEngine

/// A scenario file is invalid: the message names the file, the JSON path and the rule broken.
package enum ScenarioRule: String, FailureRule {
    case invalidScenario = "InvalidScenario"
    package var ruleName: String? { nil }
    package var category: FailureCategory { .badData }
}

/// `file: $.runs[2].dtype: detail`.
package typealias ScenarioError = RuleViolation<ScenarioRule>

extension RuleViolation where Rule == ScenarioRule {
    package init(file: String, path: String, _ detail: String) {
        self.init(.invalidScenario, source: file, location: path, detail)
    }

    package var file: String { source }
    /// The JSONPath-style location (`$.runs[2].dtype`).
    package var path: String { location ?? "$" }
}

/// What a scenario asks for: one model, one checkpoint layout, the loading runs to compare.
///
/// ```json
/// {
///   "name": "gemma7b",
///   "description": "…",
///   "model": {"config": { …config.json… }},          // or {"config": "path/to/config.json"}
///   "checkpoint": {"dtype": "bfloat16", "max_shard_size": "5GB", "seed": 0},   // or {"path": "/models/x"}
///   "scale": "fit",                                  // or a number in (0, 1]
///   "runs": [{"strategy": "naive"}, {"strategy": "dtype-direct", "dtype": "float16"}],
///   "repeat": 1,
///   "cache": "warm",                                 // or "cold"
///   "tolerance": {"relative": 0.03, "absolute": "32MiB"},
///   "sample_interval_ms": 1,
///   "run_timeout_s": 600,                            // a child running longer is killed (verdict error)
///   "stall_timeout_s": 60,                           // a child silent this long is killed (verdict error)
///   "rendezvous_timeout_s": 300                      // ranks that came wait this long for the rest (error)
/// }
/// ```
/// Paths inside a scenario are relative to the scenario file's folder.
package struct Scenario: Sendable {
    package typealias CacheMode = PageCacheMode

    package enum ScaleRequest: Sendable, Equatable {
        case fit
        case fixed(Double)
    }

    package enum CheckpointSource: Sendable {
        /// Generate a synthetic checkpoint with these settings (max shard size at full scale).
        case generated(dtype: DType, maxShardSize: Int, seed: UInt64)
        /// Use an existing checkpoint folder as it is (scale must be 1).
        case existing(path: String)
    }

    package struct Run: Sendable, Equatable {
        /// A label unique within the scenario (defaults to the strategy, plus the dtype when given, plus
        /// `@<subject>` for a loader other than the engine: `naive@transformers`).
        package var id: String
        package let strategy: StrategyName
        /// nil = auto.
        package let dtype: DType?
        /// `device-map` runs only: where the model goes.
        package let placement: PlacementSettings?
        /// Who loads; the strategy names the claim it is held to.
        package var subject: Subject = .engine
        /// Loaders measured from outside: read every parameter once after the load (`"touch"`, default true).
        package var touch = true
        /// Ranks loading at once, as on a training node (`"ranks"`, default 1).
        package var ranks = 1

        /// Whether `--only NAME` selects this run: its id, its strategy, or its id less its `@<subject>` suffix
        /// (`dtype-direct-float16` selects `dtype-direct-float16@transformers` too: the name the engine's row has).
        package func isSelected(by name: String) -> Bool {
            id == name || strategy.rawValue == name || id == name + subject.runIDSuffix
        }

        /// The id a run gets when none is given.
        static func defaultID(strategy: StrategyName, dtype: DType?, subject: Subject) -> String {
            strategy.rawValue + (dtype.map { "-" + $0.torchName } ?? "") + subject.runIDSuffix
        }
    }

    package typealias Tolerance = ClaimTolerance

    /// The scenario file as given.
    package let file: String
    package let name: String
    package let description: String
    package let config: ModelConfig
    package let checkpoint: CheckpointSource
    package let scale: ScaleRequest
    package var runs: [Run]
    package let repeatCount: Int
    package let cache: CacheMode
    package let tolerance: Tolerance
    /// The sampler's period in a child that runs the engine (`"sample_interval_ms"`, default 20 ms: its marks give
    /// the exact peaks, so the period only sets the timeline's resolution and the sampler's cost).
    package let sampleIntervalMilliseconds: Double
    /// The period at which the parent samples a loader measured from outside (`"sample_interval_ms"` when given,
    /// else 1 ms): such a loader has no marks, so its RSS anon/file peaks are only as fine as this period, and
    /// the cost falls on the parent, not on the process measured.
    package var outsideProbeIntervalMilliseconds: Double = 1
    /// The watchdog's limits for every child (`run_timeout_s`, `stall_timeout_s`, `rendezvous_timeout_s`).
    package var limits: ChildRunner.Limits
    /// The Python interpreter for the transformers subject (`"python"`); nil: `--python`, the environment, python3.
    package var python: String? = nil
    /// The tolerance of claims on loaders outside this tool (`"subject_tolerance"`, default 10% + 128 MiB).
    package var subjectTolerance = Subject.loaderTolerance
    /// How a generated checkpoint is scaled (`"scaling"`); nil: by rows for the engine alone, by layers when a
    /// loader outside this tool loads it (only a real config loads in transformers).
    package var scaling: SyntheticCheckpoint.Scaling? = nil
    /// A sweep's sizes (`"scales"`, `"holdout"`); nil measures the one size `scale` gives.
    package var sweep: SweepPlan? = nil
    /// Python subjects run under memray's tracker (`"attribute"`, `run --attribute`): the results keep the call
    /// stacks holding their peak. The engine and loader commands are not attributed (the engine's ledger and
    /// phases already say where its bytes are; a command is not this tool's to instrument).
    package var attribute = false

    package var resolvedScaling: SyntheticCheckpoint.Scaling {
        scaling ?? (runs.allSatisfy { $0.subject.isEngine } ? .rows : .layers)
    }

    /// The keys a scenario may have at its top level.
    static let topLevelKeys: Set<String> = [
        "name", "description", "model", "checkpoint", "scale", "runs", "repeat", "cache", "tolerance",
        "sample_interval_ms", "run_timeout_s",
        "stall_timeout_s", "rendezvous_timeout_s", "python", "subject_tolerance", "scaling", "scales", "holdout",
        "attribute",
    ]

    /// The tolerance a run's claims are held to: the scenario's for the engine, `subject_tolerance` for others.
    package func tolerance(for run: Run) -> Tolerance { run.subject.isEngine ? tolerance : subjectTolerance }

    /// The scenario with its sweep replaced (`--scales`, `--no-holdout`); a usage error when the sweep breaks a
    /// rule of ``SweepPlan`` or the checkpoint is not generated (an existing one has one size).
    package func withSweep(_ fractions: [Double]?, holdout: Bool?) throws(UsageError) -> Scenario {
        guard fractions != nil || holdout != nil else { return self }
        guard let fractions = fractions ?? sweep?.fractions else {
            throw UsageError("--no-holdout applies to a sweep: give --scales or \"scales\" in \(file)")
        }
        let holdout = holdout ?? sweep?.holdout ?? true
        if let problem = SweepPlan.problem(fractions, holdout: holdout) { throw UsageError("--scales: \(problem)") }
        if case .existing = checkpoint {
            throw UsageError(
                "--scales: \(file) loads an existing checkpoint, which has one size; a sweep generates its sizes")
        }
        var copy = self
        copy.sweep = SweepPlan(fractions: fractions, holdout: holdout)
        return copy
    }

    /// The scenario with attribution switched on (`--attribute`); unchanged when the flag is absent.
    package func withAttribution(_ attribute: Bool) -> Scenario {
        guard attribute else { return self }
        var copy = self
        copy.attribute = true
        return copy
    }

    /// The scenario with the start barrier's limit replaced (`--rendezvous-timeout`).
    package func withRendezvousTimeout(_ seconds: Double?) -> Scenario {
        guard let seconds else { return self }
        var copy = self
        copy.limits.rendezvousSeconds = seconds
        return copy
    }

    /// The scenario with every run loaded by `ranks` processes at once (`run --ranks N`).
    package func withRanks(_ ranks: Int?) -> Scenario {
        guard let ranks else { return self }
        var copy = self
        copy.runs = runs.map { run in
            var measured = run
            measured.ranks = ranks
            return measured
        }
        return copy
    }

    /// The scenario with every run measured by each of `subjects` (`run --subject engine,transformers`): a
    /// run per subject, ids suffixed `@<subject>` for all but the engine.
    package func withSubjects(_ subjects: [Subject]?) -> Scenario {
        guard let subjects, !subjects.isEmpty else { return self }
        var copy = self
        // A subject that cannot be held to a run's claim (a fast loader's device-map) has no such run.
        copy.runs = runs.flatMap { run in
            subjects.filter { $0.supports(run.strategy) }.map { subject in
                var measured = run
                measured.subject = subject
                let base = run.id.split(separator: "@").first.map(String.init) ?? run.id
                measured.id = base + subject.runIDSuffix
                return measured
            }
        }
        return copy
    }

    /// The scenario with only the run `id` (`measure-rank --run`); a usage error naming the runs when there is
    /// no such run.
    package func selecting(run id: String) throws -> Scenario {
        guard let run = runs.first(where: { $0.id == id }) else {
            throw UsageError("\(file): no run '\(id)'; its runs are \(runs.map(\.id).joined(separator: ", "))")
        }
        var copy = self
        copy.runs = [run]
        return copy
    }

    /// Reads and validates a scenario file.
    /// A scenario file, or a checkpoint folder, which makes its own scenario (``FolderScenario``).
    package static func load(scenarioOrFolder path: String) throws -> Scenario {
        FolderScenario.isCheckpointFolder(path) ? try FolderScenario.scenario(folder: path) : try load(path: path)
    }

    package static func load(path: String) throws -> Scenario {
        let bytes = try Checkpoint.readSmallFile(path, limit: 16 << 20)
        return try parse(bytes, file: path)
    }

    static func resolve(_ relative: String, against file: String) -> String {
        if relative.hasPrefix("/") { return relative }
        let folder = URL(fileURLWithPath: file).deletingLastPathComponent().path
        return folder + "/" + relative
    }
}
