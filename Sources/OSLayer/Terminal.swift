#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The terminal a descriptor writes to, for output that adapts to it (colour, width).
package enum Terminal {
    /// `isatty(fd)`: true when `fd` is a terminal.
    package static func isTerminal(_ fd: Int32) -> Bool { isatty(fd) == 1 }

    /// `ioctl(fd, TIOCGWINSZ)`: the terminal's width in columns; nil when `fd` is not a terminal or the call
    /// fails. `$COLUMNS`, when set to a positive number, wins (as `ls` and the argument parser honour it).
    package static func columns(_ fd: Int32) -> Int? {
        if let text = getenv("COLUMNS").map({ String(cString: $0) }), let value = Int(text), value > 0 { return value }
        var size = winsize()
        guard ioctl(fd, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 else { return nil }
        return Int(size.ws_col)
    }

    /// Whether to colour what goes to `fd`: `NO_COLOR` set and not empty (no-color.org) turns colour off, and wins;
    /// `FORCE_COLOR` set, not empty and not "0" turns it on; otherwise colour only on a terminal whose `TERM` is not
    /// "dumb".
    package static func wantsColour(_ fd: Int32) -> Bool {
        if let no = getenv("NO_COLOR").map({ String(cString: $0) }), !no.isEmpty { return false }
        if let force = getenv("FORCE_COLOR").map({ String(cString: $0) }), !force.isEmpty { return force != "0" }
        let term = getenv("TERM").map { String(cString: $0) }
        return isTerminal(fd) && term != "dumb"
    }
}
