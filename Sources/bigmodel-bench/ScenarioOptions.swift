import ArgumentParser
import Harness

/// The options `run` and `measure-rank` share: how a scenario's runs are sized, repeated, measured and cached.
struct ScenarioOptions: ParsableArguments {
    @Option(help: "Override the scenario's scale: a number in (0, 1] or 'fit'.", transform: ScaleArgument.parse)
    var scale: ScaleArgument?

    @Option(name: .customLong("repeat"), help: "Repeat each run N times (1…100).")
    var repeatCount: Int?

    @Option(
        help:
            "Cache folder for generated checkpoints, run logs and the ranks' barrier files (shared by a node's ranks).")
    var workDir: String = ".bigmodel-bench"

    @Option(
        help:
            "Measure every run with these loaders, comma-separated: engine, transformers (e.g. engine,transformers: side by side).",
        transform: SubjectsArgument.parse)
    var subject: SubjectsArgument?

    @Option(
        help:
            "The Python interpreter of the transformers subject (default: the scenario's \"python\", else $BIGMODEL_BENCH_PYTHON, else the venv scripts/setup --test makes, else python3)."
    )
    var python: String?

    @Option(
        help: ArgumentHelp(
            "How long ranks that came wait at the start barrier for the rest before the run is an error naming them (default: the scenario's rendezvous_timeout_s, else 300).",
            valueName: "seconds"))
    var rendezvousTimeout: Double?

    func validate() throws {
        if let repeatCount, repeatCount < 1 || repeatCount > 100 { throw ValidationError("--repeat must be in 1…100") }
        if let rendezvousTimeout, !(1...86_400).contains(rendezvousTimeout) {
            throw ValidationError("--rendezvous-timeout must be a number of seconds in [1, 86400]")
        }
    }

    /// The runner's options for results written to `outputDirectory` by children started from `executable`.
    func runnerOptions(outputDirectory: String, executable: String, only: Set<String>? = nil) -> ScenarioRunner.Options
    {
        var options = ScenarioRunner.Options(
            scale: scale?.request, only: only, repeatCount: repeatCount, outputDirectory: outputDirectory,
            workDirectory: workDir,
            executable: executable)
        options.subjects = subject?.subjects
        options.python = python
        options.rendezvousTimeout = rendezvousTimeout
        return options
    }
}
