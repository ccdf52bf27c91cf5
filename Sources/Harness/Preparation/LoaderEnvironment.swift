import Foundation
import OSLayer
import ResultsFormat
import TensorEngine

/// A program a subject needs is missing or cannot run; found before anything is measured (exit 69).
package struct SubjectUnavailable: ReportableError, Equatable {
    package let message: String
    package init(_ message: String) { self.message = message }
    package var description: String { message }
    package var category: FailureCategory { .unavailable }
}

/// Where the loaders outside this tool come from, checked before any checkpoint is generated or any run
/// started: the Python interpreter (`run --python`, else the scenario's `"python"`, else
/// `BIGMODEL_BENCH_PYTHON`, else the virtual environment `scripts/setup --test` makes when it exists, else
/// `python3` on `PATH`), the drivers shipped in `python/` (transformers; the fast loaders), and each
/// command subject's program.
package struct LoaderEnvironment: Sendable {
    package let python: String?
    /// Each Python subject's driver script.
    package let drivers: [Subject: String]
    /// What the interpreter reported (`python`, `torch`, `transformers`, …), when a Python subject needs it.
    package let versions: [String: String]
    /// `--attribute` with a Python subject: the script that reads memray's captures.
    package var attributionReader: String? = nil

    /// The transformers driver, when a transformers run needs it.
    package var driver: String? { drivers[.transformers] }

    /// The packages the transformers driver imports.
    static let requiredPackages = ["torch", "transformers", "safetensors"]

    /// The modules a Python subject's driver imports.
    static func packages(for subject: Subject, needsAccelerate: Bool) -> [String] {
        switch subject {
        case .transformers: requiredPackages + (needsAccelerate ? ["accelerate"] : [])
        case .fastLoader(let loader): ["torch", loader.module]
        case .engine, .command: []
        }
    }

    /// The script that drives a Python subject.
    static func script(for subject: Subject) -> String? {
        switch subject {
        case .transformers: "bigmodel_bench_driver.py"
        case .fastLoader: "bigmodel_bench_fast_loaders.py"
        case .engine, .command: nil
        }
    }

    /// Resolves and checks what `subjects` need. `requested` is `--python`, `scenarioPython` the scenario's key.
    /// `attribute`: the Python subjects run under memray's tracker, so the interpreter must import memray too.
    package static func check(
        subjects: Set<Subject>, requested: String?, scenarioPython: String?, needsAccelerate: Bool,
        attribute: Bool = false
    ) throws -> LoaderEnvironment {
        for subject in subjects {
            if case .command(let argv) = subject { _ = try program(argv.first ?? "", what: "the loader command") }
        }
        let pythonSubjects = subjects.filter { script(for: $0) != nil }.sorted { $0.name < $1.name }
        guard !pythonSubjects.isEmpty else { return LoaderEnvironment(python: nil, drivers: [:], versions: [:]) }
        let given =
            requested ?? scenarioPython ?? ProcessInfo.processInfo.environment["BIGMODEL_BENCH_PYTHON"] ?? setupPython
            ?? "python3"
        let names = pythonSubjects.map(\.name).joined(separator: ", ")
        let python = try program(
            given, what: "the Python interpreter for the \(names) subject\(pythonSubjects.count == 1 ? "" : "s")")
        var drivers: [Subject: String] = [:]
        for subject in pythonSubjects {
            drivers[subject] = subject == .transformers ? try findDriver() : try findScript(script(for: subject) ?? "")
        }
        var packages: [String] = attribute ? ["memray"] : []
        for subject in pythonSubjects {
            for package in Self.packages(for: subject, needsAccelerate: needsAccelerate)
            where !packages.contains(package) {
                packages.append(package)
            }
        }
        var environment = LoaderEnvironment(
            python: python, drivers: drivers, versions: try importCheck(python, packages: packages, for: names))
        if attribute { environment.attributionReader = try findScript("bigmodel_bench_attribution.py") }
        return environment
    }

    /// What `pip install` takes for a module the drivers import.
    static func distribution(_ module: String) -> String {
        Subject.FastLoader.allCases.first { $0.module == module }?.distribution ?? module
    }

    /// `~/.cache/bigmodel-bench/python/bin/python` (or under `$BIGMODEL_BENCH_VENV`), where `scripts/setup --test`
    /// installs the Python stack, when it is there.
    static var setupPython: String? {
        let environment = ProcessInfo.processInfo.environment
        let venv =
            environment["BIGMODEL_BENCH_VENV"] ?? (environment["HOME"].map { $0 + "/.cache/bigmodel-bench/python" })
        guard let path = venv.map({ $0 + "/bin/python" }), FileManager.default.isExecutableFile(atPath: path) else {
            return nil
        }
        return path
    }

    /// `name` as an executable path: as given when it has a slash, else the first match on `PATH`.
    static func program(_ name: String, what: String) throws -> String {
        let fm = FileManager.default
        let candidates: [String]
        if name.contains("/") {
            candidates = [name]
        } else {
            let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
            candidates = path.split(separator: ":").map { "\($0)/\(name)" }
        }
        for candidate in candidates {
            var isDirectory: ObjCBool = false
            if fm.fileExists(atPath: candidate, isDirectory: &isDirectory), !isDirectory.boolValue,
                fm.isExecutableFile(atPath: candidate)
            {
                return URL(fileURLWithPath: candidate).standardizedFileURL.path
            }
        }
        throw SubjectUnavailable(
            name.isEmpty
                ? "\(what) is empty"
                : "\(what) '\(name)' was not found or is not executable"
                    + (name.contains("python")
                        ? "; give --python PATH, the scenario's \"python\", or BIGMODEL_BENCH_PYTHON" : ""))
    }

    /// `python/bigmodel_bench_driver.py` beside the checkout this binary was built in (`BIGMODEL_BENCH_DRIVER`
    /// overrides).
    static func findDriver() throws -> String {
        if let given = ProcessInfo.processInfo.environment["BIGMODEL_BENCH_DRIVER"] {
            guard FileManager.default.fileExists(atPath: given) else {
                throw SubjectUnavailable("BIGMODEL_BENCH_DRIVER names \(given), which does not exist")
            }
            return given
        }
        return try findScript("bigmodel_bench_driver.py")
    }

    /// `python/<name>` in the checkout this binary was built in (looked for up to six folders above it).
    static func findScript(_ name: String) throws -> String {
        let executable = (try? ChildProcess.currentExecutablePath()) ?? CommandLine.arguments[0]
        var folder = URL(fileURLWithPath: executable).deletingLastPathComponent()
        for _ in 0..<6 {
            let candidate = folder.appendingPathComponent("python/" + name).path
            if FileManager.default.fileExists(atPath: candidate) { return candidate }
            folder.deleteLastPathComponent()
        }
        throw SubjectUnavailable("python/\(name) was not found above \(executable); run the tool from its checkout")
    }

    /// Imports `packages` in the interpreter and returns their versions; a failure names what is missing and how
    /// to install it.
    static func importCheck(_ python: String, packages: [String], for subjects: String = "transformers") throws
        -> [String: String]
    {
        let script =
            "import json, sys\nv = {'python': sys.version.split()[0]}\nfor m in \(packages):\n  try:\n    v[m] = str(getattr(__import__(m), '__version__', None) or 'installed')\n  except Exception as e:\n    v[m] = 'MISSING ' + type(e).__name__ + ': ' + str(e).splitlines()[0][:200]\nprint(json.dumps(v))\n"
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("bigmodel-bench-check-\(getpid())")
            .path
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let output = folder + "/versions.json"
        let child = try ChildProcess.spawn(
            executable: python, arguments: ["-c", script],
            environment: [
                "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1",
            ],
            options: .init(standardInput: .null, standardOutput: .file(output), standardError: .null))
        let exit = try child.wait()
        guard exit.termination == .exited(code: 0), let data = FileManager.default.contents(atPath: output),
            let versions = try? JSONDecoder().decode([String: String].self, from: data)
        else { throw SubjectUnavailable("\(python) could not run a version check (\(exit.termination))") }
        let missing = packages.filter { versions[$0]?.hasPrefix("MISSING") != false }
        guard missing.isEmpty else {
            let why = missing.map { "\($0) (\(versions[$0]?.dropFirst(8) ?? "not reported"))" }.joined(separator: ", ")
            throw SubjectUnavailable(
                "the \(subjects) subject\(subjects.contains(",") ? "s need" : " needs") \(missing.joined(separator: ", ")), which \(python) cannot import: \(why); install with: \(python) -m pip install \(missing.map(distribution).joined(separator: " ")) (or run scripts/setup --test, which makes ~/.cache/bigmodel-bench/python)"
            )
        }
        return versions
    }
}
