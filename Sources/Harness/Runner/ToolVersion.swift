import Foundation
import OSLayer

/// The tool's version and provenance, recorded in every results file.
package enum ToolVersion {
    package static let version = "0.1.0"

    /// The compiler that built this binary (from `#if compiler` checks; SwiftPM exposes nothing finer).
    package static var swiftVersion: String {
        #if compiler(>=6.4)
        return "Swift 6.4 or later"
        #elseif compiler(>=6.3)
        return "Swift 6.3"
        #elseif compiler(>=6.2)
        return "Swift 6.2"
        #elseif compiler(>=6.1)
        return "Swift 6.1"
        #else
        return "Swift 6.0"
        #endif
    }

    /// The commit of the checkout this binary was built in: found by walking up from the executable
    /// (`.build/<config>/bigmodel-bench`) to a folder with `.git`, then resolving `HEAD` by reading the ref
    /// files (no `git` process). nil when the binary was moved out of its checkout.
    package static func gitCommit() -> String? {
        guard let executable = try? ChildProcess.currentExecutablePath() else { return nil }
        var folder = URL(fileURLWithPath: executable).deletingLastPathComponent()
        for _ in 0..<6 {
            let git = folder.appendingPathComponent(".git")
            if FileManager.default.fileExists(atPath: git.path) { return resolveHead(gitFolder: git.path) }
            folder.deleteLastPathComponent()
        }
        return nil
    }

    static func resolveHead(gitFolder: String) -> String? {
        guard
            let head = try? String(contentsOfFile: gitFolder + "/HEAD", encoding: .utf8).trimmingCharacters(
                in: .whitespacesAndNewlines)
        else { return nil }
        guard head.hasPrefix("ref: ") else { return head.count == 40 ? head : nil }
        let ref = String(head.dropFirst(5))
        if let direct = try? String(contentsOfFile: gitFolder + "/" + ref, encoding: .utf8) {
            return direct.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        // Packed refs: "<sha> <ref>" lines.
        guard let packed = try? String(contentsOfFile: gitFolder + "/packed-refs", encoding: .utf8) else { return nil }
        for line in packed.split(separator: "\n") where line.hasSuffix(" " + ref) {
            return String(line.prefix(40))
        }
        return nil
    }
}
