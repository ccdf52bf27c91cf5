import Probes

/// Memory a loader still holds once its load is done, with the model alive: one reading's resident pages over
/// the run's baseline. Anonymous memory is the loader's own (a state dict kept alive, an allocator's cache); file
/// pages are the mapped checkpoint's and the loader's code, which the kernel may drop, so only the anonymous
/// figure is held to a claim.
package struct RetainedMemory: Codable, Sendable, Equatable {
    /// Which reading it is.
    package enum Moment: String, Codable, Sendable {
        /// The run's end reading: the engine's after its load (and touch), a protocol speaker's while it waits to
        /// exit after its result (a Python driver's after `gc.collect()`).
        case end
        /// The reading at the `loaded` event of a loader command that sends only that (docs/loaders.md): its end
        /// reading falls in its interpreter's teardown.
        case loaded
    }

    package var at: Moment
    /// RssAnon at that reading minus RssAnon at the baseline.
    package var rssAnonDeltaBytes: Int
    /// RssFile at that reading minus RssFile at the baseline (absent when either lacks it).
    package var rssFileDeltaBytes: Int?

    package init(at: Moment, rssAnonDeltaBytes: Int, rssFileDeltaBytes: Int?) {
        self.at = at
        self.rssAnonDeltaBytes = rssAnonDeltaBytes
        self.rssFileDeltaBytes = rssFileDeltaBytes
    }

    /// `reading` over `baseline`; nil when either lacks RssAnon (an absent figure is never zero).
    package init?(at: Moment, reading: MemoryReading, baseline: MemoryReading) {
        guard let anon = reading[.rssAnon], let anonBefore = baseline[.rssAnon] else { return nil }
        let file = reading[.rssFile].flatMap { after in baseline[.rssFile].map { after - $0 } }
        self.init(at: at, rssAnonDeltaBytes: anon - anonBefore, rssFileDeltaBytes: file)
    }
}
