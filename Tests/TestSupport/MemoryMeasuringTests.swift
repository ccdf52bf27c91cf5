import Testing

/// Tests that measure this process's own RSS or jemalloc deltas must not overlap one another: one test's
/// hundreds of megabytes are another's noise. They live in suites nested here, and `.serialized` applies to
/// everything nested. (Tests that measure child processes need no such care.)
@Suite(.serialized) package enum MemoryMeasuringTests {}
