import Checkpoint
import Loading
import Probes

/// Levels the memory every `bench load` case starts from, on a VM whose host takes freed memory back.
///
/// There a page freed a few seconds ago is reported to the host (``FreePageReporting``), and the next write
/// to it pays the host's first-touch fault — 0.6 GB/s here against 12 GB/s for a page written again at once.
/// Which case pays it depended on the order alone: `bench load --cache warm` timed "floor" at 4.67 s and
/// "floor, 16 in flight", right after it in the same round, at 1.23 s, the same reads into the same amount of
/// memory. So right before each case (and outside its time) as much fresh memory as the case will hold is
/// written and freed (``FirstTouchFloor``, one pass): the host backs it again, and the case finds memory as a
/// loader on a machine of its own would. Capped by MemFree less 512 MiB, so a warm page cache is not evicted.
struct MemoryLeveling {
    /// Bytes each case will hold at its peak: strategies their ledger formula, floors and peers the
    /// checkpoint's tensor bytes (one copy).
    let bytesByCase: [String: Int]

    init(cases: [LoadBenchmark.Case], checkpoint: Checkpoint) throws {
        var bytes: [String: Int] = [:]
        for item in cases {
            bytes[item.name] = checkpoint.totalSize
            guard item.kind == .strategy,
                let (name, dtype) = LoadBenchmark.strategies.first(where: {
                    LoadBenchmark.caseName($0.0, $0.1) == item.name
                })
            else { continue }
            let plan = try LoadPlan(checkpoint: checkpoint, requested: dtype)
            bytes[item.name] = name.strategy.predictedPeakBytes(plan.figures)
        }
        bytesByCase = bytes
    }

    /// Writes and frees fresh memory as large as the case's peak (as MemFree allows).
    func prepare(for name: String) throws {
        try Self.write(bytesByCase[name] ?? 0)
    }

    /// Writes and frees `bytes` of fresh memory where this machine reports freed memory to a host, else does
    /// nothing: `run` calls it before each measured child, whose memory then costs what a loader's would on a
    /// machine of its own (the child's figures are its own process's; this memory is freed before it starts).
    static func levelBeforeChild(bytes: Int) {
        guard FreePageReporting.current() != nil else { return }
        try? write(bytes)
    }

    /// The case's peak, capped by MemFree less 512 MiB; 0 when there is no room. A Python peer levels its own
    /// memory with it after its imports (they take seconds, long enough for the host to take back memory
    /// levelled before them).
    func bytes(for name: String) -> Int {
        Self.capped(bytesByCase[name] ?? 0)
    }

    /// `bytes` capped by MemFree less 512 MiB (so a warm page cache is not evicted); 0 when there is no room.
    private static func capped(_ bytes: Int) -> Int {
        guard let free = SystemMemory.read().freeBytes else { return 0 }
        return max(0, min(bytes, free - (512 << 20)))
    }

    /// One pass of ``FirstTouchFloor`` over `bytes` (capped), its figure unused.
    private static func write(_ bytes: Int) throws {
        let bytes = capped(bytes)
        if bytes > 0 { _ = try FirstTouchFloor.measure(bytes: bytes, passes: 1) }
    }
}
