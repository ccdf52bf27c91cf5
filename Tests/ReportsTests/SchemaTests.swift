import Foundation
import TestSupport
import Testing

@testable import Harness
@testable import Reports
@testable import ResultsFormat
@testable import StrictJSON

/// True when `python3 -c "import jsonschema"` works; the cross-check is skipped (and says so) otherwise.
private enum PythonJSONSchema {
    static let available: Bool = {
        let ok = runTool("python3", ["-c", "import jsonschema"])?.status == 0
        if !ok {
            print(
                "SchemaTests: SKIPPED the Python jsonschema cross-check: python3 with the jsonschema package is not available"
            )
        }
        return ok
    }()
}

@Suite("Results schema")
struct SchemaTests {
    static let schemas = [
        "results.schema.json", "github-benchmark.schema.json", "bmf.schema.json", "compare.schema.json",
    ]

    @Test(arguments: SchemaTests.schemas)
    func validatorImplementsEveryKeywordUsed(schema: String) throws {
        #expect(try ReportFixtures.schema(schema).unsupportedKeywords() == [])
    }

    /// Checks are identified by their kind; the name a results file keeps parses back to the same kind, every
    /// device and machine figure included, and a name this version does not write is kept as it is.
    @Test func checkNamesParseBackToTheirKinds() throws {
        let kinds: [CheckKind] =
            [
                .ledgerEqualsPrediction, .ledgerRead, .anonAgreesWithLedger, .jemallocAgreesWithLedger,
                .cpuShareWithinBudget, .diskHoldsTheRest, .deviceMapEqualsPlan,
                .deviceLedgerEqualsShare(.cpu), .deviceLedgerEqualsShare(.accelerator(3)),
                .acceleratorWithinBudget(.accelerator(0)), .arenaAgreesWithLedger(.accelerator(12)),
            ]
            + CheckKind.BoundFigure.allCases.flatMap {
                [.figureRead($0), .withinUpperBound($0), .reachesLowerBound($0)]
            }
            + MachineFigure.allCases.flatMap {
                [.machineWithinUpperBound($0, held: false), .machineReachesLowerBound($0, held: true)]
            }
        for kind in kinds {
            #expect(CheckKind(name: kind.name) == kind, "\(kind.name)")
        }
        #expect(
            CheckKind(name: "Σ VmRSS Δ with every model held reaches lower bound")
                == .machineReachesLowerBound(.sumRss, held: true))
        #expect(
            CheckKind(name: "accelerator cuda:0 peak within its budget")
                == .unrecognized("accelerator cuda:0 peak within its budget"))
        let check = Check(.withinUpperBound(.vmhwm), measuredBytes: 5, boundBytes: 4, relation: .atMost, detail: "d")
        let json = String(decoding: try ResultsCodec.encode(check), as: UTF8.self)
        #expect(json.contains(#""name" : "VmHWM delta within upper bound""#), "\(json)")
        #expect(try ResultsCodec.decode(Check.self, from: Array(json.utf8)) == check)
        #expect(!check.passed)
    }

    @Test func validatorCatchesWhatTheSchemaForbids() throws {
        let validator = try ReportFixtures.schema("results.schema.json")
        let good = try parseJSON(try fileText(ReportFixtures.path(ReportFixtures.oom)))
        #expect(validator.validate(good) == [])
        guard case .object(var root) = good, case .object(var environment)? = root["environment"] else {
            Issue.record("fixture is not an object")
            return
        }
        environment["mem_total_bytes"] = JSONValue(-1)
        environment["extra"] = .string("x")
        environment.removeValue(forKey: "kernel")
        root["environment"] = .object(environment)
        root["complete"] = .string("yes")
        let errors = validator.validate(.object(root))
        #expect(errors.contains("$.environment.mem_total_bytes: -1 < minimum 0.0"))
        #expect(errors.contains("$.environment: additional property 'extra' is not allowed"))
        #expect(errors.contains("$.environment: required property 'kernel' is missing"))
        #expect(errors.contains("$.complete: a string is not of type boolean"))
        #expect(errors.count == 4)
    }

    @Test func verdictsAndTimelineRowsAreChecked() throws {
        let validator = try ReportFixtures.schema("results.schema.json")
        var results = try ReportFixtures.load(ReportFixtures.oom)
        let points = try #require(results.runs[1].measurement?.timeline.points)
        results.runs[1].measurement?.timeline.points = Array(repeating: points[0], count: 2001)
        results.runs[1].measurement?.timeline.points[7] = [1]
        let json = try parseJSON(String(decoding: try ResultsFile.encode(results), as: UTF8.self))
        #expect(
            validator.validate(json).sorted() == [
                "$.runs[1].measurement.timeline.points: more than 2000 items",
                "$.runs[1].measurement.timeline.points[7]: fewer than 2 items",
            ])
        let verdict = try parseJSON(
            try fileText(ReportFixtures.path(ReportFixtures.oom)).replacingOccurrences(
                of: "\"verdict\" : \"oom\"", with: "\"verdict\" : \"maybe\""))
        #expect(
            validator.validate(verdict).allSatisfy {
                $0.hasSuffix(": \"maybe\" is not one of [\"pass\",\"fail\",\"oom\",\"error\"]")
            })
        #expect(validator.validate(verdict).count == 2)
    }

    /// Every JSON the tool writes, from the fixtures (real `run` output) through the current encoders.
    static func outputs() throws -> [(String, String, JSONValue)] {
        var all: [(String, String, JSONValue)] = []
        for fixture in ReportFixtures.all {
            let results = try ReportFixtures.load(fixture)
            all.append(
                (
                    "results.schema.json", "\(fixture) as run wrote it",
                    try parseJSON(try fileText(ReportFixtures.path(fixture)))
                ))
            all.append(
                (
                    "results.schema.json", "\(fixture) re-encoded",
                    try parseJSON(String(decoding: try ResultsFile.encode(results), as: UTF8.self))
                ))
            all.append(
                (
                    "github-benchmark.schema.json", fixture,
                    try parseJSON(BenchmarkExports.text(BenchmarkExports.githubBenchmark(results)))
                ))
            all.append(
                (
                    "bmf.schema.json", fixture,
                    try parseJSON(BenchmarkExports.text(BenchmarkExports.bencherMetricFormat(results)))
                ))
            let smoke = try ReportFixtures.load(ReportFixtures.smoke)
            let comparison = Comparison(
                baseline: smoke, baselinePath: "b.json", current: results, currentPath: "c.json")
            all.append(
                ("compare.schema.json", "smoke vs \(fixture)", try parseJSON(BenchmarkExports.text(comparison.json()))))
        }
        return all
    }

    @Test func everyOutputValidates() throws {
        var validators: [String: SchemaValidator] = [:]
        for schema in Self.schemas { validators[schema] = try ReportFixtures.schema(schema) }
        for (schema, what, json) in try Self.outputs() {
            #expect(validators[schema]?.validate(json) == [], "\(what) against \(schema)")
        }
    }

    @Test func reportFormatsThroughTheExecutableValidate() throws {
        let path = ReportFixtures.path(ReportFixtures.smoke)
        for (format, schema) in [
            ("json", "results.schema.json"), ("github-benchmark", "github-benchmark.schema.json"),
            ("bmf", "bmf.schema.json"),
        ] {
            let result = try Executable.run(["report", path, "--format", format])
            #expect(result.status == 0)
            #expect(try ReportFixtures.schema(schema).validate(try parseJSON(result.stdout)) == [], "\(format)")
        }
    }

    @Test(.enabled(if: PythonJSONSchema.available, "python3 with jsonschema is not available"))
    func pythonJSONSchemaAgrees() throws {
        let folder = try TemporaryFolder("schema-python")
        defer { folder.remove() }
        var lines: [String] = []
        for (index, (schema, _, json)) in try Self.outputs().enumerated() {
            let file = try folder.write("output-\(index).json", JSONWriter.compact.bytes(json))
            lines.append("\(ReportFixtures.schemaPath(schema))\t\(file)")
        }
        let list = try folder.write("list.tsv", text: lines.joined(separator: "\n"))
        let script = """
            import json, sys, jsonschema
            failures = 0
            for line in open(sys.argv[1]):
                schema_path, instance_path = line.rstrip("\\n").split("\\t")
                schema = json.load(open(schema_path))
                jsonschema.Draft202012Validator.check_schema(schema)
                errors = list(jsonschema.Draft202012Validator(schema).iter_errors(json.load(open(instance_path))))
                for e in errors[:3]:
                    print(instance_path, e.json_path, e.message[:200])
                failures += len(errors)
            print("checked", sum(1 for _ in open(sys.argv[1])), "failures", failures)
            sys.exit(1 if failures else 0)
            """
        let result = try #require(runTool("python3", ["-c", script, list]))
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.hasSuffix("checked \(lines.count) failures 0\n"))
    }
}
