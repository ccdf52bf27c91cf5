import ArgumentParser
import Foundation
import Harness
import Reports
import TensorEngine

/// `bigmodel-bench report RESULTS.json`: re-renders a results file as markdown with charts, normalised JSON,
/// or a benchmark-tracker format.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Render a results file: markdown with SVG charts, normalised JSON, github-benchmark or Bencher (BMF) JSON.",
        discussion: """
            markdown (default) writes <scenario>.md and its SVG charts next to the results file, or into --out \
            (a folder, or a path ending in .md; '-' prints the markdown alone). json re-emits the results normalised \
            (sorted keys, the fields this version knows). github-benchmark is the array github-action-benchmark reads \
            with tool 'customSmallerIsBetter'; bmf is Bencher's metric format. The JSON formats print to stdout \
            unless --out names a file. Rendering the same file twice gives identical output. \
            Exit 0 ok, 64 usage, 65 not a results file (or a newer schema version), 66 missing file, 74 write failed.
            """)

    enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
        case markdown
        case json
        case githubBenchmark = "github-benchmark"
        case bmf
    }

    @Argument(help: "A results file written by `run` (DIR/<scenario>.json).")
    var results: String

    @Option(help: "markdown, json, github-benchmark or bmf.")
    var format: OutputFormat = .markdown

    @Option(name: .customLong("out"), help: "Where to write: a file, a folder (markdown), or '-' for stdout.")
    var out: String?

    func run() throws {
        try reportingErrors {
            let loaded = try ResultsFile.load(path: results)
            switch format {
            case .markdown:
                try writeMarkdown(loaded)
            case .json:
                try emit(String(decoding: try ResultsFile.encode(loaded), as: UTF8.self))
            case .githubBenchmark:
                try emit(BenchmarkExports.text(BenchmarkExports.githubBenchmark(loaded)))
            case .bmf:
                try emit(BenchmarkExports.text(BenchmarkExports.bencherMetricFormat(loaded)))
            }
        }
    }

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
            printProgress("markdown only: the \(report.charts.count) chart(s) it references were not written (use --out DIR)")
            return
        }
        let folder: String
        var name: String? = nil
        if let out {
            var isDirectory: ObjCBool = false
            if out.hasSuffix(".md") && !(FileManager.default.fileExists(atPath: out, isDirectory: &isDirectory) && isDirectory.boolValue) {
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
