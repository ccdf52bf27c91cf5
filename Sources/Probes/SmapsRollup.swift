/// The sums of `/proc/<pid>/smaps_rollup`, in bytes (the file says kB = KiB). Nil when a line is missing.
///
/// The proportional figures (`Pss*`) divide each shared page among the processes mapping it, which is the
/// right measure when several processes map the same checkpoint shard.
package struct SmapsRollup: Sendable, Equatable {
    /// `Rss` of `smaps_rollup`: resident bytes over all mappings.
    package var rssBytes: Int?
    /// `Pss` of `smaps_rollup`: proportional set size, bytes (shared pages divided by their sharer count).
    package var pssBytes: Int?
    /// `Pss_Anon` of `smaps_rollup` (Linux ≥ 5.9): proportional anonymous bytes.
    package var pssAnonBytes: Int?
    /// `Pss_File` of `smaps_rollup` (Linux ≥ 5.9): proportional file-backed bytes.
    package var pssFileBytes: Int?
    /// `Pss_Shmem` of `smaps_rollup` (Linux ≥ 5.9): proportional shared-memory bytes.
    package var pssShmemBytes: Int?
    /// `Anonymous` of `smaps_rollup`: resident anonymous bytes.
    package var anonymousBytes: Int?
    /// `AnonHugePages` of `smaps_rollup`: anonymous bytes backed by transparent huge pages.
    package var anonHugePagesBytes: Int?

    /// No figure read yet (every field nil).
    package init() {}

    /// Parses `smaps_rollup` text; the first line (the address range header) and unknown keys are ignored.
    package static func parse(bytes: UnsafeRawBufferPointer) -> SmapsRollup {
        var rollup = SmapsRollup()
        ProcParse.forEachField(in: bytes) { key, rest in
            if let field = fields.first(where: { ProcParse.equals(key, $0.key) }) {
                rollup[keyPath: field.path] = ProcParse.sizeValue(rest)
            }
        }
        return rollup
    }

    /// The `smaps_rollup` keys read, and where each goes.
    static let fields: [(key: StaticString, path: any WritableKeyPath<SmapsRollup, Int?> & Sendable)] = [
        ("Rss", \.rssBytes), ("Pss", \.pssBytes), ("Pss_Anon", \.pssAnonBytes), ("Pss_File", \.pssFileBytes),
        ("Pss_Shmem", \.pssShmemBytes),
        ("Anonymous", \.anonymousBytes), ("AnonHugePages", \.anonHugePagesBytes),
    ]

    /// Parses `smaps_rollup` text given as a `String`.
    package static func parse(text: String) -> SmapsRollup {
        var copy = text
        return copy.withUTF8 { parse(bytes: UnsafeRawBufferPointer($0)) }
    }
}
