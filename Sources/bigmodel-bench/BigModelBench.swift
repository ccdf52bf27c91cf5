import ArgumentParser

@main
struct BigModelBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bigmodel-bench",
        abstract: "Measures how much memory it costs to load a big model each way.",
        subcommands: [BenchCommand.self]
    )
}
