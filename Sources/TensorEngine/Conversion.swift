#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Element-type conversion between F64, F32, F16 and BF16, bit for bit as torch 2.x does it on an x86-64
/// CPU, so that a converted tensor has the digest the reference fixtures record.
///
/// Loading a checkpoint in another dtype converts every byte of it, so this is a hot path: the kernels are
/// vectorised and a large conversion is split across threads.
package enum DTypeConversion {
    /// The unit of work handed to a thread, in bytes of the wider side of the conversion: large enough that
    /// handing it out costs nothing next to converting it, small enough to balance two threads well on a
    /// tensor of a few MiB.
    package static let chunkByteCount = 1 << 20

    /// Threads used when the caller does not say: every core this process may run on.
    package static var defaultThreadCount: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }

    /// True when `convert` can turn `source` elements into `destination` elements: any two of F64, F32, F16
    /// and BF16, or any type into itself (a copy).
    package static func isSupported(from source: DType, to destination: DType) -> Bool {
        ConversionKernel(from: source, to: destination) != nil
    }

    /// Converts every element of `source` (of type `from`) into `destination` (of type `to`).
    /// Both buffers hold the same number of elements and must not overlap. Inputs larger than one chunk are
    /// split across `threads` threads (default: `defaultThreadCount`); `threads: 1` converts on the calling
    /// thread. The buffers need no particular alignment.
    package static func convert(
        _ source: UnsafeRawBufferPointer, from: DType,
        into destination: UnsafeMutableRawBufferPointer, to: DType,
        threads: Int? = nil
    ) {
        convert(source, from: from, into: destination, to: to, threads: threads, chunkByteCount: chunkByteCount)
    }

    /// `convert` with the chunk size as a parameter, so tests can exercise many chunks on small buffers.
    static func convert(
        _ source: UnsafeRawBufferPointer, from: DType,
        into destination: UnsafeMutableRawBufferPointer, to: DType,
        threads: Int?, chunkByteCount: Int
    ) {
        guard let kernel = ConversionKernel(from: from, to: to) else {
            preconditionFailure("no conversion from \(from) to \(to)")
        }
        let threadCount = threads ?? defaultThreadCount
        precondition(threadCount >= 1, "threads must be at least 1, got \(threadCount)")
        let elementCount = source.count / kernel.sourceWidth
        precondition(
            source.count % kernel.sourceWidth == 0 && destination.count == elementCount * kernel.destinationWidth,
            "\(source.count) bytes of \(from) do not convert into \(destination.count) bytes of \(to)")
        guard elementCount > 0, let sourceStart = source.baseAddress, let destinationStart = destination.baseAddress
        else { return }
        let sourceEnd = UnsafeRawPointer(sourceStart + source.count)
        let destinationEnd = UnsafeRawPointer(destinationStart + destination.count)
        precondition(
            sourceEnd <= UnsafeRawPointer(destinationStart) || destinationEnd <= sourceStart,
            "source and destination overlap")

        ConversionScheduler(
            kernel: kernel, source: sourceStart, destination: destinationStart,
            elementCount: elementCount, chunkByteCount: chunkByteCount
        ).run(threads: threadCount)
    }
}
