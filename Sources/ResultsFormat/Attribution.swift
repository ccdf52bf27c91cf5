/// Where a Python loader's peak came from, by memray (`run --attribute`): the allocations alive at memray's
/// high-water mark, grouped by the call stack that made them, the biggest first. memray counts what the process
/// asked its allocators for (malloc and its kin, Python's own allocator, `mmap` as a kind of its own, file mappings
/// included) — bytes requested, not pages resident: a mapped checkpoint counts whole whether or not its pages
/// were read, and memory freed to an allocator's cache is gone from memray's count while RSS still holds it.
/// So its peak is compared with the run's VmHWM Δ, not taken for it.
package struct Attribution: Codable, Sendable, Equatable {
    /// One call stack and what it held at the high-water mark.
    package struct Stack: Codable, Sendable, Equatable {
        package var bytes: Int
        package var allocations: Int
        /// memray's allocator kinds (`malloc`, `posix_memalign`, `mmap`, `pymalloc_malloc`, …).
        package var allocators: [String]
        /// Innermost first: up to three native frames nearest the allocation, then the Python stack.
        package var frames: [Frame]

        package init(bytes: Int, allocations: Int, allocators: [String], frames: [Frame]) {
            self.bytes = bytes
            self.allocations = allocations
            self.allocators = allocators
            self.frames = frames
        }
    }

    package struct Frame: Codable, Sendable, Equatable {
        package var function: String
        /// The Python file (after `site-packages/`) or native source; absent for a native frame without it.
        package var file: String?
        package var line: Int?

        package init(function: String, file: String? = nil, line: Int? = nil) {
            self.function = function
            self.file = file
            self.line = line
        }
    }

    package var memrayVersion: String
    /// memray's high-water mark: the most bytes its allocations held at once.
    package var peakBytes: Int
    /// Allocations alive at that moment, and the stacks they came from (all of them; `stacks` keeps the top).
    package var allocations: Int
    package var stackCount: Int
    package var stacks: [Stack]

    package init(memrayVersion: String, peakBytes: Int, allocations: Int, stackCount: Int, stacks: [Stack]) {
        self.memrayVersion = memrayVersion
        self.peakBytes = peakBytes
        self.allocations = allocations
        self.stackCount = stackCount
        self.stacks = stacks
    }

    /// The share of memray's peak the top stacks hold together.
    package var topShare: Double {
        peakBytes > 0 ? Double(stacks.reduce(0) { $0 + $1.bytes }) / Double(peakBytes) : 0
    }
}
