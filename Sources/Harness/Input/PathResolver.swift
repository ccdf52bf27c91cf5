import Foundation

/// Finds a path whose components may differ in case from what was typed: `scenarios/gemma7b.json` finds
/// `Scenarios/gemma7b.json`. Used only when the exact path does not exist; an ambiguous component (two
/// entries equal ignoring case) resolves to neither, so the exact-path error is reported instead.
package enum PathResolver {
    package static func resolve(_ path: String) -> String {
        let fm = FileManager.default
        if fm.fileExists(atPath: path) { return path }
        let absolute = path.hasPrefix("/")
        var current = absolute ? "/" : "."
        var resolved: [String] = []
        for component in path.split(separator: "/", omittingEmptySubsequences: true).map(String.init) {
            let candidate = current == "/" ? "/" + component : current + "/" + component
            if component == "." || component == ".." || fm.fileExists(atPath: candidate) {
                resolved.append(component)
                current = candidate
                continue
            }
            let entries = (try? fm.contentsOfDirectory(atPath: current)) ?? []
            let matches = entries.filter { $0.lowercased() == component.lowercased() }
            guard matches.count == 1, let match = matches.first else { return path }
            resolved.append(match)
            current = current == "/" ? "/" + match : current + "/" + match
        }
        let joined = resolved.joined(separator: "/")
        return absolute ? "/" + joined : joined
    }
}
