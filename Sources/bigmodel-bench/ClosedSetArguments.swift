import ArgumentParser
import Harness
import Loading
import Models
import ResultsFormat

// Closed sets given on the command line are parsed by ArgumentParser into their enums: an unknown value is a usage
// error (exit 64) that lists the accepted values, and `--help` and the shell completions list them too.

extension StrategyName: ExpressibleByArgument {}

extension SyntheticCheckpoint.Scaling: ExpressibleByArgument {}

extension ExpressibleByArgument where Self: CaseIterable & RawRepresentable, RawValue == String {
    /// The options' transform: a refused value is one line naming every accepted value ("use one of naive,
    /// sharded, …"), where ArgumentParser's own message lists them a line each.
    static func parseNamed(_ text: String) throws -> Self {
        guard let value = Self(rawValue: text) else {
            throw ArgumentValueError(reason: "use one of \(allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return value
    }
}

/// `--scale`: a shrink factor in (0, 1], or `fit` (the largest scale whose runs fit this machine).
enum ScaleArgument: ExpressibleByArgument, Sendable, Equatable {
    case fit
    case fixed(Double)

    init?(argument: String) {
        if argument == "fit" {
            self = .fit
        } else if let value = Double(argument), value > 0, value <= 1 {
            self = .fixed(value)
        } else {
            return nil
        }
    }

    /// The options' transform, so a refused value says which rule it broke.
    static func parse(_ text: String) throws -> ScaleArgument {
        guard let scale = ScaleArgument(argument: text) else {
            throw ArgumentValueError(reason: "a scale is a number in (0, 1] or 'fit'")
        }
        return scale
    }

    static var defaultCompletionKind: CompletionKind { .list(["fit", "0.25", "0.5", "1"]) }

    var request: Scenario.ScaleRequest {
        switch self {
        case .fit: .fit
        case .fixed(let value): .fixed(value)
        }
    }
}

/// `--scales 0.25,0.5,0.75,1`: a sweep's fractions of the scenario's scale (``SweepPlan`` checks the rules).
struct ScalesArgument: Sendable, Equatable {
    let fractions: [Double]

    static func parse(_ text: String) throws -> ScalesArgument {
        let fractions = try text.split(separator: ",", omittingEmptySubsequences: false).map { item in
            let trimmed = item.trimmingCharacters(in: .whitespaces)
            guard let value = Double(trimmed), value.isFinite else {
                throw ArgumentValueError(reason: "'\(trimmed)' is not a number; give fractions like 0.25,0.5,0.75,1")
            }
            return value
        }
        return ScalesArgument(fractions: fractions)
    }
}

/// `--subject engine,transformers`: the loaders every run is measured with, in the order given. A command subject
/// is a list of arguments and is given in the scenario, not here.
struct SubjectsArgument: ExpressibleByArgument, Sendable {
    static let names = ["engine", "transformers"] + Subject.FastLoader.allCases.map(\.rawValue)
    let subjects: [Subject]

    init?(argument: String) {
        let names = argument.split(separator: ",", omittingEmptySubsequences: false).map {
            $0.trimmingCharacters(in: .whitespaces)
        }
        let subjects = names.compactMap { Subject.named[$0] }
        guard !subjects.isEmpty, subjects.count == names.count else { return nil }
        self.subjects = subjects
    }

    static func parse(_ text: String) throws -> SubjectsArgument {
        guard let subjects = SubjectsArgument(argument: text) else {
            throw ArgumentValueError(
                reason:
                    "takes one or more of \(names.joined(separator: ", ")), comma-separated (a command subject is given in the scenario)"
            )
        }
        return subjects
    }

    static var defaultCompletionKind: CompletionKind { .list(names + ["engine,transformers"]) }
}

/// `bench load --cache warm|cold`.
enum CacheArgument: String, ExpressibleByArgument, CaseIterable, Sendable {
    case warm, cold

    var mode: PageCacheMode { self == .warm ? .warm : .cold }
}
