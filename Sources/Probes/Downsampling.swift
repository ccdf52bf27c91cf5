/// How a series is reduced for a timeline, the one rule for a process's samples and a machine's.
package enum Downsampling {
    /// Reduces `items` to at most `maxPoints` without losing peaks: consecutive items are grouped in equal buckets
    /// of ⌈count / maxPoints⌉, and each bucket becomes one item by `merge` (each figure's maximum, at the time of
    /// the bucket's first item), so the maximum of every figure over the result equals the maximum over the
    /// input. Returns the input unchanged when it already has ≤ maxPoints items (or maxPoints < 1).
    package static func bucketMaxima<Item>(
        _ items: [Item], toAtMost maxPoints: Int, merge: (ArraySlice<Item>) -> Item
    ) -> [Item] {
        guard maxPoints >= 1, items.count > maxPoints else { return items }
        let bucketSize = (items.count + maxPoints - 1) / maxPoints
        return stride(from: 0, to: items.count, by: bucketSize).map { start in
            merge(items[start..<min(start + bucketSize, items.count)])
        }
    }

    /// Points of a timeline (the first column the time, the others figures): each bucket's first time and every
    /// other column's maximum.
    package static func bucketMaxima(_ points: [[Double]], toAtMost maxPoints: Int) -> [[Double]] {
        bucketMaxima(points, toAtMost: maxPoints) { bucket in
            let first = bucket[bucket.startIndex]
            return first.indices.map { c in c == 0 ? first[0] : bucket.map { $0[c] }.max() ?? first[c] }
        }
    }
}
