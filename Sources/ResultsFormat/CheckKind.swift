import Probes
import TensorEngine

/// Which claim a ``Check`` verifies: the closed set the judges produce, each with the name the results and reports
/// print (`name`, in JSON as `"name"`). Tests and code match the case; a name read from a results file that is
/// none of these (a file from a later version) is kept as ``unrecognized(_:)``.
package enum CheckKind: Sendable, Hashable, CustomStringConvertible {
    /// The ledger's exact peak equals the strategy's formula.
    case ledgerEqualsPrediction
    /// The engine reported no ledger peak: always failed.
    case ledgerRead
    /// A process figure could not be read: always failed.
    case figureRead(BoundFigure)
    /// A process figure's peak at most the prediction plus tolerance.
    case withinUpperBound(BoundFigure)
    /// A process figure's peak at least the prediction less tolerance (claims that are a high cost).
    case reachesLowerBound(BoundFigure)
    /// |RSS anon peak Δ − ledger peak| within the tolerance.
    case anonAgreesWithLedger
    /// |jemalloc allocated peak Δ − ledger peak at size classes| within the tolerance.
    case jemallocAgreesWithLedger
    /// device-map: a device's ledger peak equals what was placed on it.
    case deviceLedgerEqualsShare(Device)
    /// device-map: the cpu share within `max_memory[cpu]`.
    case cpuShareWithinBudget
    /// device-map: an accelerator's peak within its budget.
    case acceleratorWithinBudget(Device)
    /// device-map: an accelerator's jemalloc arena agrees with the ledger.
    case arenaAgreesWithLedger(Device)
    /// device-map: the disk holds the rest of the model.
    case diskHoldsTheRest
    /// A loader's `hf_device_map` equals the plan's.
    case deviceMapEqualsPlan
    /// After the load, what the process still holds as its own memory (RssAnon at the end over the baseline) is
    /// at most the loaded model's own bytes plus tolerance: nothing of the load's transient copies kept.
    case retainedWithinModel
    /// N ranks: a Σ figure of the machine at most the bound (`held`: read when every rank held its model).
    case machineWithinUpperBound(MachineFigure, held: Bool)
    /// N ranks: a Σ figure of the machine at least the bound.
    case machineReachesLowerBound(MachineFigure, held: Bool)
    /// A name this version does not produce.
    case unrecognized(String)

    /// A process figure a bound is checked on, by the name the checks give it.
    package enum BoundFigure: String, Sendable, Hashable, CaseIterable {
        case vmhwm = "VmHWM delta"
        case vmhwmLessCodePages = "VmHWM delta less code pages"
        case rssAnon = "RSS anon peak delta"
        case rssFile = "RSS file peak delta"
    }

    package var name: String {
        switch self {
        case .ledgerEqualsPrediction: "ledger peak equals prediction"
        case .ledgerRead: "ledger peak was read"
        case .figureRead(let figure): "\(figure.rawValue) was read"
        case .withinUpperBound(let figure): "\(figure.rawValue) within upper bound"
        case .reachesLowerBound(let figure): "\(figure.rawValue) reaches lower bound"
        case .anonAgreesWithLedger: "RSS anon agrees with ledger"
        case .jemallocAgreesWithLedger: "jemalloc agrees with ledger"
        case .deviceLedgerEqualsShare(let device): "ledger peak on \(device) equals its share"
        case .cpuShareWithinBudget: "cpu share within its budget"
        case .acceleratorWithinBudget(let device): "accelerator \(device) peak within its budget"
        case .arenaAgreesWithLedger(let device): "jemalloc arena of \(device) agrees with ledger"
        case .diskHoldsTheRest: "disk holds the rest"
        case .deviceMapEqualsPlan: "hf_device_map equals plan's"
        case .retainedWithinModel: "retained RSS anon delta within the model's own bytes"
        case .machineWithinUpperBound(let figure, let held): Self.machineName(figure, held, "within upper bound")
        case .machineReachesLowerBound(let figure, let held): Self.machineName(figure, held, "reaches lower bound")
        case .unrecognized(let name): name
        }
    }

    package var description: String { name }

    private static func machineName(_ figure: MachineFigure, _ held: Bool, _ verb: String) -> String {
        "\(figure.title) Δ \(held ? "with every model held " : "")\(verb)"
    }

    /// The kind a results file names: every name this version produces parses back to its case.
    package init(name: String) {
        self = Self.known(name) ?? .unrecognized(name)
    }

    private static func known(_ name: String) -> CheckKind? {
        let fixed: [CheckKind] = [
            .ledgerEqualsPrediction, .ledgerRead, .anonAgreesWithLedger, .jemallocAgreesWithLedger,
            .cpuShareWithinBudget, .diskHoldsTheRest, .deviceMapEqualsPlan, .retainedWithinModel,
        ]
        let figures = BoundFigure.allCases.flatMap { figure -> [CheckKind] in
            [.figureRead(figure), .withinUpperBound(figure), .reachesLowerBound(figure)]
        }
        let machine = MachineFigure.allCases.flatMap { figure in
            [false, true].flatMap { held in
                [CheckKind.machineWithinUpperBound(figure, held: held), .machineReachesLowerBound(figure, held: held)]
            }
        }
        if let kind = (fixed + figures + machine).first(where: { $0.name == name }) { return kind }
        return device(name, "ledger peak on ", " equals its share", CheckKind.deviceLedgerEqualsShare)
            ?? device(name, "accelerator ", " peak within its budget", CheckKind.acceleratorWithinBudget)
            ?? device(name, "jemalloc arena of ", " agrees with ledger", CheckKind.arenaAgreesWithLedger)
    }

    private static func device(
        _ name: String, _ prefix: String, _ suffix: String, _ make: (Device) -> CheckKind
    ) -> CheckKind? {
        guard name.hasPrefix(prefix), name.hasSuffix(suffix), name.count > prefix.count + suffix.count else {
            return nil
        }
        // Only a name this version writes: "cuda:0" parses as a device but is not how a check names it.
        guard let device = Device(parsing: String(name.dropFirst(prefix.count).dropLast(suffix.count))),
            make(device).name == name
        else { return nil }
        return make(device)
    }
}
