import Dispatch
import Synchronization

/// Splits one conversion into chunks and hands them to worker threads.
///
/// Chunks are handed out from a shared counter rather than split evenly up front, so that a thread slowed
/// by the OS (or a busy core) simply takes fewer chunks and no thread waits on a straggler.
///
/// `@unchecked Sendable` because it carries raw pointers to the workers: they only read the source and each
/// writes a chunk of the destination no other worker touches, and `run` returns only after every worker has
/// finished, so both buffers outlive every access.
struct ConversionScheduler: @unchecked Sendable {
    let kernel: ConversionKernel
    let source: UnsafeRawPointer
    let destination: UnsafeMutableRawPointer
    let elementCount: Int
    let elementsPerChunk: Int

    /// `chunkByteCount` bounds the bytes of the wider side of the conversion per chunk; rounded down to a
    /// multiple of 64 elements so that every chunk but the last starts on a vector boundary.
    init(
        kernel: ConversionKernel, source: UnsafeRawPointer, destination: UnsafeMutableRawPointer,
        elementCount: Int, chunkByteCount: Int
    ) {
        precondition(chunkByteCount > 0, "chunk size must be positive")
        self.kernel = kernel
        self.source = source
        self.destination = destination
        self.elementCount = elementCount
        let widest = max(kernel.sourceWidth, kernel.destinationWidth)
        self.elementsPerChunk = max(64, chunkByteCount / widest / 64 * 64)
    }

    var chunkCount: Int { (elementCount + elementsPerChunk - 1) / elementsPerChunk }

    /// Runs the conversion on at most `threads` threads (the calling one included). A conversion of a single
    /// chunk runs on the calling thread: waking workers costs more than such a small job.
    func run(threads: Int) {
        let workers = min(threads, chunkCount)
        guard workers > 1 else {
            kernel.run(source: source, destination: destination, count: elementCount)
            return
        }
        let nextChunk = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            while true {
                let chunk = nextChunk.add(1, ordering: .relaxed).oldValue
                guard chunk < chunkCount else { return }
                runChunk(chunk)
            }
        }
    }

    private func runChunk(_ chunk: Int) {
        let first = chunk * elementsPerChunk
        let count = min(elementsPerChunk, elementCount - first)
        kernel.run(
            source: source + first * kernel.sourceWidth,
            destination: destination + first * kernel.destinationWidth,
            count: count)
    }
}
