import TensorEngine

/// The rules a device budget, device map or placement request can break.
///
/// Category: usage (exit 64) for command-line syntax — the raising site says so — and bad data (65) for files
/// and scenario JSON, for maps that leave parameters without a device, and for devices that do not exist.
public enum PlacementRule: String, FailureRule, CaseIterable {
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

    public var category: FailureCategory { .badData }
}

/// A device budget, device map or placement request that cannot be used, as one line naming where the bad
/// value came from (`--max-memory`, a scenario file and JSON path, a device-map file and key) and the rule.
public typealias PlacementError = RuleViolation<PlacementRule>
