import Foundation

/// Locates the reference fixtures copied into this repository (`Tests/Fixtures`, from `../shared/fixtures`),
/// so the tests run from a fresh clone.
package enum FixturePaths {
    package static let root: String = {
        // Tests/BigModelBenchTests/FixturePaths.swift → Tests/Fixtures
        let here = URL(fileURLWithPath: #filePath)
        return here.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures").path
    }()

    package static func path(_ relative: String) -> String { root + "/" + relative }

    /// The repository's root (where `Scenarios/` is).
    package static let repository: String = URL(fileURLWithPath: root).deletingLastPathComponent()
        .deletingLastPathComponent()
        .path
}
