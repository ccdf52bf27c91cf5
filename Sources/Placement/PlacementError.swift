import TensorEngine

/// A device budget, device map or placement request that cannot be used, as one line naming where the bad
/// value came from (`--max-memory`, a scenario file and JSON path, a device-map file and key) and the rule.
///
/// Exit status: 64 (usage) for command-line syntax, 65 (bad input data) for files and scenario JSON, for maps
/// that leave parameters without a device, and for devices that do not exist.
public struct PlacementError: ReportableError, Equatable {
    public enum Rule: String, Sendable, CaseIterable {
        /// A budget key that is neither an accelerator index, "cpu" nor "disk".
        case unknownBudgetKey = "UnknownBudgetKey"
        /// A budget value that is not a size.
        case invalidBudget = "InvalidBudget"
        /// The same device given twice.
        case duplicateDevice = "DuplicateDevice"
        /// `--max-memory` / `--accelerator-memory` text that is not `KEY=SIZE[,KEY=SIZE…]`.
        case invalidSyntax = "InvalidSyntax"
        /// A device-map file that is not a JSON object of module names to devices.
        case invalidDeviceMap = "InvalidDeviceMap"
        /// A device-map value that is not a device, or an accelerator this run does not have.
        case unknownDevice = "UnknownDevice"
        /// A device map that leaves some of the model's parameters without a device.
        case unmappedParameters = "UnmappedParameters"
        /// Disk placement needs an offload folder (weights must be written) and none was given.
        case offloadFolderRequired = "OffloadFolderRequired"
        /// A `--device-map` value that is neither a mode nor a readable file.
        case invalidMode = "InvalidMode"
    }

    public let rule: Rule
    /// Where the value came from: an option (`--max-memory`), or a file path.
    public let source: String
    /// The key or JSON path inside `source` (`cpu`, `$.runs[3].max_memory.gpu`), or nil.
    public let location: String?
    public let detail: String
    public let exitStatus: ExitStatus

    public init(_ rule: Rule, source: String, location: String? = nil, _ detail: String, exitStatus: ExitStatus = .dataError) {
        self.rule = rule
        self.source = source
        self.location = location
        self.detail = detail
        self.exitStatus = exitStatus
    }

    public var description: String {
        "\(source)\(location.map { ": \($0)" } ?? ""): \(rule.rawValue): \(detail)"
    }
}
