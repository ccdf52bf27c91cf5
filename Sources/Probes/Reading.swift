/// A figure a ``Reading`` can hold: a process's (``MemoryFigure``) or the machine's (`MachineFigure`), each named
/// for exactly what it is.
package protocol ReadingFigure: CaseIterable, Hashable, Sendable where AllCases == [Self] {
    /// Its slot in a reading's fixed-size storage, in `0..<Reading.capacity`.
    var index: Int { get }
    /// Its name in JSON keys and timeline columns (`rss_anon`, `sum_pss`).
    var name: String { get }
    /// True for a figure that falls as memory is used (MemAvailable): its cost is the baseline less the reading.
    var fallsWithUse: Bool { get }
}

extension ReadingFigure {
    package var fallsWithUse: Bool { false }
}

/// One reading of any subset of a kind of figure, in bytes: the one type of every snapshot, sample, baseline and
/// peak of a process or of the machine. A figure that was not read (no jemalloc in a Python subject, no ledger, no
/// `smaps_rollup` in a sample) is absent — nil — never 0.
///
/// Fixed-size and allocation-free (the sampler stores one per millisecond): the figures sit in one SIMD vector
/// indexed by ``ReadingFigure/index``, absent ones holding a sentinel.
package struct Reading<Figure: ReadingFigure>: Sendable, Equatable {
    /// How many figures a kind may have.
    package static var capacity: Int { 16 }
    private static var absent: Int64 { Int64.min }
    private var values = SIMD16<Int64>(repeating: Int64.min)

    package init() {}

    package init(_ figures: [Figure: Int]) {
        for (figure, bytes) in figures { self[figure] = bytes }
    }

    package subscript(figure: Figure) -> Int? {
        get {
            let value = values[figure.index]
            return value == Self.absent ? nil : Int(value)
        }
        set { values[figure.index] = newValue.map { Int64($0) } ?? Self.absent }
    }

    /// The figures present, in list order.
    package var figures: [Figure] { Figure.allCases.filter { self[$0] != nil } }

    /// Each figure's maximum of the two readings (a figure absent from one is the other's).
    package func maximum(_ other: Reading) -> Reading {
        var result = Reading()
        result.values = pointwiseMax(values, other.values)
        return result
    }

    /// Each figure's cost over `baseline`, for the figures present in both: the growth, or for a figure that
    /// falls with use its drop.
    package func delta(over baseline: Reading) -> Reading {
        var result = Reading()
        for figure in Figure.allCases {
            guard let value = self[figure], let base = baseline[figure] else { continue }
            result[figure] = figure.fallsWithUse ? base - value : value - base
        }
        return result
    }

    /// This reading with `other`'s figures filled in where this one lacks them.
    package func merging(_ other: Reading) -> Reading {
        var result = self
        for figure in Figure.allCases where result[figure] == nil { result[figure] = other[figure] }
        return result
    }

    /// Each figure's peak over `readings` as a cost over `baseline`: the highest reading less the baseline, or
    /// for a figure that falls with use the baseline less the lowest. Absent where the baseline or every reading
    /// lacks the figure. The one rule every peak of a run, a loader measured from outside and a machine follows.
    package static func peakDeltas(_ readings: some Sequence<Reading>, over baseline: Reading) -> Reading {
        peakDeltas(Extremes(readings), over: baseline)
    }

    /// Each figure's highest and, for a figure that falls with use, lowest reading, gathered without a copy of
    /// the readings (a sampler keeps up to a million).
    package struct Extremes: Sendable {
        package private(set) var highest = Reading()
        package private(set) var lowest = Reading()

        package init(_ readings: some Sequence<Reading>) { add(readings) }

        package mutating func add(_ readings: some Sequence<Reading>) {
            for reading in readings {
                highest = highest.maximum(reading)
                for figure in Figure.allCases where figure.fallsWithUse {
                    if let value = reading[figure] { lowest[figure] = min(lowest[figure] ?? value, value) }
                }
            }
        }
    }

    /// The peaks of `extremes` over `baseline` (see ``peakDeltas(_:over:)``).
    package static func peakDeltas(_ extremes: Extremes, over baseline: Reading) -> Reading {
        let (highest, lowest) = (extremes.highest, extremes.lowest)
        var peaks = highest.delta(over: baseline)
        for figure in Figure.allCases where figure.fallsWithUse {
            peaks[figure] = lowest[figure].flatMap { low in baseline[figure].map { $0 - low } }
        }
        return peaks
    }
}

extension Reading: Codable {
    /// Keys `<figure>_bytes` (`rss_anon_bytes`, `sum_pss_bytes`); absent figures are left out.
    struct Key: CodingKey {
        let stringValue: String
        init(stringValue: String) { self.stringValue = stringValue }
        var intValue: Int? { nil }
        init?(intValue: Int) { nil }
    }

    package init(from decoder: any Decoder) throws {
        try self.init(from: decoder, key: { $0.name + "_bytes" })
    }

    package func encode(to encoder: any Encoder) throws {
        try encode(to: encoder, key: { $0.name + "_bytes" })
    }

    /// Decodes the figures found under `key(figure)`. Whatever key strategy the decoder uses, keys are matched
    /// in snake case, as the results files write them.
    package init(from decoder: any Decoder, key: (Figure) -> String) throws {
        self.init()
        let container = try decoder.container(keyedBy: Key.self)
        for figure in Figure.allCases {
            let name = key(figure)
            guard let match = container.allKeys.first(where: { ReadingKeys.snake($0.stringValue) == name }) else {
                continue
            }
            self[figure] = try container.decodeIfPresent(Int.self, forKey: match)
        }
    }

    package func encode(to encoder: any Encoder, key: (Figure) -> String) throws {
        var container = encoder.container(keyedBy: Key.self)
        for figure in figures {
            try container.encode(self[figure], forKey: Key(stringValue: ReadingKeys.camel(key(figure))))
        }
    }
}

/// The encoders of this tool convert camelCase keys to snake_case: keys go out camel-cased so they come out
/// exactly as named, and come back (converted from snake case or not) matched in snake case.
package enum ReadingKeys {
    package static func camel(_ snake: String) -> String {
        let parts = snake.split(separator: "_")
        return parts.enumerated().map {
            $0.offset == 0 ? String($0.element) : $0.element.prefix(1).uppercased() + $0.element.dropFirst()
        }.joined()
    }

    package static func snake(_ key: String) -> String {
        var out = ""
        for character in key {
            if character.isUppercase { out += "_" + character.lowercased() } else { out.append(character) }
        }
        return out
    }
}
