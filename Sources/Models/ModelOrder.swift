import Checkpoint

/// The order in which a model registers its parameters, applied to a checkpoint's tensors.
package enum ModelOrder {
    /// When the checkpoint's config.json names a known architecture: its stored parameters in registration
    /// order (those the checkpoint holds), followed by any other checkpoint tensors in checkpoint order.
    /// nil when there is no config or the architecture is unknown.
    package static func parameterOrder(for checkpoint: Checkpoint) throws -> [String]? {
        guard let configPath = checkpoint.configPath else { return nil }
        let config = try ModelConfig.load(path: configPath)
        guard let architecture = try ModelArchitecture.fromConfig(config) else { return nil }
        var order = architecture.parameters.map(\.name).filter { checkpoint.tensors[$0] != nil }
        let listed = Set(order)
        order += checkpoint.tensors.keys.filter { !listed.contains($0) }
        return order
    }
}
