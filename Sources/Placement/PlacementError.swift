import OSLayer
import TensorEngine

/// The rules a device budget, device map or placement request can break:
///
/// - `UnknownBudgetKey`: a budget key that is neither an accelerator index, "cpu" nor "disk";
/// - `InvalidBudget`: a budget value that is not a size;
/// - `DuplicateDevice`: the same device given twice;
/// - `InvalidSyntax`: `--max-memory` / `--accelerator-memory` text that is not `KEY=SIZE[,KEY=SIZE…]`;
/// - `InvalidDeviceMap`: a device-map file that is not a JSON object of module names to devices;
/// - `UnknownDevice`: a device-map value that is not a device, or an accelerator this run does not have;
/// - `UnmappedParameters`: a device map that leaves some of the model's parameters without a device;
/// - `OffloadFolderRequired`: disk placement needs an offload folder (weights must be written) and none was given;
/// - `InvalidMode`: a `--device-map` value that is neither a mode nor a readable file.
///
/// Category: usage (exit 64) for command-line syntax — the raising site says so — and bad data (65) for files
/// and scenario JSON, for maps that leave parameters without a device, and for devices that do not exist.
package enum PlacementRule: FailureRule, CaseIterable {
    case unknownBudgetKey, invalidBudget, duplicateDevice, invalidSyntax, invalidDeviceMap, unknownDevice,
        unmappedParameters
    case offloadFolderRequired, invalidMode

    package var category: FailureCategory { .badData }
}

/// A device budget, device map or placement request that cannot be used, as one line naming where the bad
/// value came from (`--max-memory`, a scenario file and JSON path, a device-map file and key) and the rule.
package typealias PlacementError = RuleViolation<PlacementRule>
