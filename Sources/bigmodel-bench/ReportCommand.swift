import ArgumentParser
import Foundation
import Harness
import Reports
import ResultsFormat
import TensorEngine

/// `bigmodel-bench report RESULTS.json`: re-renders a results file as markdown with charts, normalised JSON,
/// or a benchmark-tracker format.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract:
            "Render a results file: markdown with SVG charts, normalised JSON, github-benchmark or Bencher (BMF) JSON.",
        discussion: """
            markdown (default) writes <scenario>.md and its SVG charts next to the results file, or into --out \
            (a folder, or a path ending in .md; '-' prints the markdown alone). json re-emits the results normalised \
            (sorted keys, the fields this version knows). github-benchmark is the array github-action-benchmark reads \
            with tool 'customSmallerIsBetter'; bmf is Bencher's metric format. The JSON formats print to stdout \
            unless --out names a file. Rendering the same file twice gives identical output. \
            Exit 0 ok, 64 usage, 65 not a results file (or a newer schema version), 66 missing file, 74 write failed.

            Examples:
              bigmodel-bench report Reports/gemma7b.json
              bigmodel-bench report Reports/smoke.json --format bmf --metrics vmhwm_delta_bytes,seconds
            """)

    enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
        case markdown
        case json
        case githubBenchmark = "github-benchmark"
        case bmf
        /// The table `run` prints, in its wide layout: what the README quotes (a test checks it matches).
        case summary
    }

    @Argument(help: "A results file written by `run` (DIR/<scenario>.json).", completion: .file(extensions: ["json"]))
    var results: String

    @Option(help: "markdown, json, github-benchmark, bmf or summary (the table run prints).")
    var format: OutputFormat = .markdown

    @Option(
        name: .customLong("out"), help: "Where to write: a file, a folder (markdown), or '-' for stdout.",
        completion: .file())
    var out: String?

    @Option(
        help: "github-benchmark and bmf: only these figures, comma-separated: \(Metric.names.joined(separator: ", ")).")
    var metrics: String?

    func validate() throws {
        if let metrics, Self.metrics(metrics) == nil {
            throw ValidationError(
                "--metrics takes figures from \(Metric.names.joined(separator: ", ")), comma-separated, not '\(metrics)'"
            )
        }
    }

    static func metrics(_ text: String) -> [Metric]? {
        let found = text.split(separator: ",").map { Metric.named($0.trimmingCharacters(in: .whitespaces)) }
        return found.isEmpty || found.contains { $0 == nil } ? nil : found.compactMap { $0 }
    }

    func run() throws {
        try reportingErrors {
            let loaded = try ResultsFile.load(path: results)
            switch format {
            case .markdown:
                try writeMarkdown(loaded)
            case .json:
                try emit(String(decoding: try ResultsFile.encode(loaded), as: UTF8.self))
            case .githubBenchmark:
                try emit(BenchmarkExports.text(BenchmarkExports.githubBenchmark(loaded, metrics: chosen)))
            case .bmf:
                try emit(BenchmarkExports.text(BenchmarkExports.bencherMetricFormat(loaded, metrics: chosen)))
            case .summary:
                try emit(SummaryTable.render(loaded, columns: nil))
            }
        }
    }

    private var chosen: [Metric] { metrics.flatMap(Self.metrics) ?? Metric.all }

    private func emit(_ text: String) throws {
        guard let out, out != "-" else {
            print(text, terminator: "")
            return
        }
        try ResultsFile.write(Array(text.utf8), to: out)
        printProgress("wrote \(out)")
    }

    private func writeMarkdown(_ loaded: ScenarioResults) throws {
        if out == "-" {
            let report = MarkdownReport.render(loaded, resultsLink: results)
            print(report.markdown, terminator: "")
            printProgress(
                "markdown only: the \(report.charts.count) chart(s) it references were not written (use --out DIR)")
            return
        }
        let folder: String
        var name: String? = nil
        if let out {
            var isDirectory: ObjCBool = false
            if out.hasSuffix(".md")
                && !(FileManager.default.fileExists(atPath: out, isDirectory: &isDirectory) && isDirectory.boolValue)
            {
                let url = URL(fileURLWithPath: out)
                folder = url.deletingLastPathComponent().path
                name = url.lastPathComponent
            } else {
                folder = out
            }
        } else {
            folder = URL(fileURLWithPath: results).deletingLastPathComponent().path
        }
        let written = try MarkdownReport.write(loaded, resultsPath: results, folder: folder, markdownName: name)
        printProgress("wrote \(written[0]) and \(written.count - 1) chart(s)")
    }
}
