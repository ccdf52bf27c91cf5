import Foundation
import Harness
import Reports
import ResultsFormat
import StrictJSON
import Testing

#if canImport(FoundationXML)
import FoundationXML
#endif

/// Shared helpers of the report, chart, compare and schema tests: the results fixtures (real `run` output,
/// `Tests/Fixtures/results`), the schemas (`Reports/schema`), and markdown and XML inspection.
package enum ReportFixtures {
    /// The smoke scenario at scale 1, every run passing.
    package static let smoke = "smoke.json"
    /// The smoke scenario at scale 0.5 (full-size predictions differ from the measured ones).
    package static let scaled = "smoke-scale-0.5.json"
    /// Three runs of the smoke scenario under --memory-limit 560MiB: two `oom`, one `pass`.
    package static let oom = "smoke-oom.json"
    /// The smoke scenario swept at scales 0.25, 0.5, 0.75 and 1 (1 held out) with naive, low-memory,
    /// dtype-direct-float16 and mmap: `run Scenarios/smoke.json --scales 0.25,0.5,0.75,1 --only …`.
    package static let sweep = "smoke-sweep.json"
    package static let all = [smoke, scaled, oom, sweep]

    package static func path(_ name: String) -> String { FixturePaths.path("results/" + name) }

    package static func load(_ name: String) throws -> ScenarioResults { try ResultsFile.load(path: path(name)) }

    package static let repositoryRoot = URL(fileURLWithPath: FixturePaths.root).deletingLastPathComponent()
        .deletingLastPathComponent().path

    package static func schemaPath(_ name: String) -> String { repositoryRoot + "/Reports/schema/" + name }

    package static func schema(_ name: String) throws -> SchemaValidator { try SchemaValidator(path: schemaPath(name)) }

    /// Writes `results` as `run` would into `folder/name`.
    @discardableResult
    package static func write(_ results: ScenarioResults, to folder: TemporaryFolder, as name: String) throws -> String
    {
        try folder.write(name, try ResultsFile.encode(results))
    }
}

package func parseJSON(_ text: String) throws -> JSONValue {
    try JSONParser().parse(Array(text.utf8))
}

package func fileText(_ path: String) throws -> String {
    String(decoding: try Data(contentsOf: URL(fileURLWithPath: path)), as: UTF8.self)
}

/// The rows of every GitHub markdown table in `markdown`, as trimmed cells (escaped pipes kept inside a cell,
/// unescaped); separator rows are left out.
package func markdownTableRows(_ markdown: String) -> [[String]] {
    var rows: [[String]] = []
    for line in markdown.split(separator: "\n") where line.hasPrefix("|") && line.hasSuffix("|") {
        var cells: [String] = []
        var cell = ""
        var escaped = false
        for c in line.dropFirst().dropLast() {
            if escaped {
                cell.append(c)
                escaped = false
            } else if c == "\\" {
                escaped = true
            } else if c == "|" {
                cells.append(cell.trimmingCharacters(in: .whitespaces))
                cell = ""
            } else {
                cell.append(c)
            }
        }
        cells.append(cell.trimmingCharacters(in: .whitespaces))
        if cells.allSatisfy({ !$0.isEmpty && $0.allSatisfy { "-:".contains($0) } }) { continue }
        rows.append(cells)
    }
    return rows
}

/// Parses SVG/XML with Foundation's XMLParser, collecting every element's name and attributes and text.
package final class XMLCollector: NSObject, XMLParserDelegate {
    package struct Element {
        package let name: String
        package let attributes: [String: String]
        package var text: String
    }

    package private(set) var elements: [Element] = []
    private var open: [Int] = []
    package private(set) var error: (any Error)?

    package static func parse(_ text: String) -> XMLCollector {
        let collector = XMLCollector()
        let parser = XMLParser(data: Data(text.utf8))
        parser.delegate = collector
        if !parser.parse() { collector.error = parser.parserError ?? CocoaError(.coderReadCorrupt) }
        return collector
    }

    package func parser(
        _ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
        attributes: [String: String] = [:]
    ) {
        elements.append(Element(name: name, attributes: attributes, text: ""))
        open.append(elements.count - 1)
    }

    package func parser(_ parser: XMLParser, foundCharacters string: String) {
        if let last = open.last { elements[last].text += string }
    }

    package func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?)
    {
        _ = open.popLast()
    }

    package func first(id: String) -> Element? { elements.first { $0.attributes["id"] == id } }
}

extension XMLCollector.Element {
    package func number(_ attribute: String) -> Double? { attributes[attribute].flatMap(Double.init) }
}
