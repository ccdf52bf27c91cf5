import Dispatch

/// Wraps a value that is safe to share across the threads of one `concurrentPerform` because each thread
/// touches a disjoint part of it (raw buffers split into chunks). The compiler cannot prove disjointness;
/// this type marks the places where the code does.
package struct DisjointAccess<Value>: @unchecked Sendable {
    package let value: Value
    package init(_ value: Value) { self.value = value }
}

/// Splits `count` items into contiguous ranges, one per worker, and runs `body` on each concurrently.
/// Small jobs (fewer than `minimumPerWorker` items per worker) run on the calling thread alone.
package func parallelRanges(count: Int, workers: Int, minimumPerWorker: Int, _ body: @Sendable (Range<Int>) -> Void) {
    let parts = max(1, min(workers, count / max(1, minimumPerWorker)))
    if parts == 1 {
        body(0..<count)
        return
    }
    let per = (count + parts - 1) / parts
    DispatchQueue.concurrentPerform(iterations: parts) { part in
        let start = part * per
        let end = min(count, start + per)
        if start < end { body(start..<end) }
    }
}
