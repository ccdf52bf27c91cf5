import OSLayer
import Synchronization

/// A device ran out of its budget: the simulated equivalent of CUDA's "out of memory", or the cap the
/// harness puts on a run whose prediction exceeds the machine.
package struct OutOfMemoryError: ReportableError, Equatable {
    package let device: Device
    package let requestedBytes: Int
    package let liveBytes: Int
    package let budgetBytes: Int

    package var description: String {
        "out of memory on \(device): tried to allocate \(requestedBytes) bytes with \(liveBytes) live "
            + "of a \(budgetBytes)-byte budget"
    }

    package var category: FailureCategory { .outOfMemory }
}

/// The engine's own account of every byte it owns: live bytes and the exact peak, per device and in total.
///
/// Every owned tensor byte is allocated through a ledger, so the ledger's peak is an exact, allocator-
/// independent figure that a strategy's formula must equal; the OS and jemalloc figures are then checked
/// against it. Thread-safe: the sampler thread reads it while loader threads allocate.
package final class MemoryLedger: Sendable {
    package struct DeviceFigures: Sendable, Equatable {
        package var liveBytes: Int
        package var peakBytes: Int
        package var budgetBytes: Int?
    }

    /// The same accounting at the allocator's granularity: each allocation at its jemalloc size class
    /// (`nallocx`), which is what `stats.allocated` counts. Lets the harness compare jemalloc with the ledger
    /// exactly instead of within the size-class rounding (up to 25% for one large allocation).
    package struct AllocatorFigures: Sendable, Equatable {
        package var liveBytes: Int
        package var peakBytes: Int
    }

    private struct State {
        var liveBytes = 0
        var peakBytes = 0
        var devices: [Device: DeviceFigures] = [:]
        var totalBudget: Int?
        var allocatorLive = 0
        var allocatorPeak = 0
        /// The RAM peak when the peak observer was last called (or installed).
        var observedPeak = 0
        /// Whether the RAM peak rose since the last release: the next release then ends a local maximum.
        var peakRoseSinceRelease = false
    }

    /// Called at the first release after the RAM peak rose by at least `stepBytes` over the last peak it was
    /// called at, before that release is applied: the moment memory stands at a new high (see
    /// ``observePeaks(stepBytes:_:)``).
    private struct PeakObserver: Sendable {
        var stepBytes: Int
        var call: @Sendable () -> Void
    }

    private let state = Mutex(State())
    private let peakObserver = Mutex<PeakObserver?>(nil)

    package init() {}

    /// Records an allocation; throws without recording it when it would exceed the device's budget or the
    /// total RAM budget.
    /// `allocatorBytes` is the size the allocator really takes (its size class); it defaults to `bytes`.
    package func allocate(_ bytes: Int, on device: Device = .cpu, allocatorBytes: Int? = nil) throws(OutOfMemoryError) {
        precondition(bytes >= 0, "negative allocation")
        let classBytes = allocatorBytes ?? bytes
        let failure: OutOfMemoryError? = state.withLock { s in
            var figures = s.devices[device] ?? DeviceFigures(liveBytes: 0, peakBytes: 0, budgetBytes: nil)
            if let budget = figures.budgetBytes, figures.liveBytes + bytes > budget {
                return OutOfMemoryError(
                    device: device, requestedBytes: bytes, liveBytes: figures.liveBytes, budgetBytes: budget)
            }
            if device.isResidentInRAM, let budget = s.totalBudget, s.liveBytes + bytes > budget {
                return OutOfMemoryError(
                    device: device, requestedBytes: bytes, liveBytes: s.liveBytes, budgetBytes: budget)
            }
            figures.liveBytes += bytes
            figures.peakBytes = max(figures.peakBytes, figures.liveBytes)
            s.devices[device] = figures
            if device.isResidentInRAM {
                s.liveBytes += bytes
                if s.liveBytes > s.peakBytes {
                    s.peakBytes = s.liveBytes
                    s.peakRoseSinceRelease = true
                }
                s.allocatorLive += classBytes
                s.allocatorPeak = max(s.allocatorPeak, s.allocatorLive)
            }
            return nil
        }
        if let failure { throw failure }
    }

    /// Records that `bytes` previously allocated on `device` were freed. Call it before the memory is given back,
    /// so that a peak observer sees memory as it stood at the peak.
    package func release(_ bytes: Int, on device: Device = .cpu, allocatorBytes: Int? = nil) {
        if device.isResidentInRAM, let observer = peakObserver.withLock({ $0 }) {
            let atNewPeak = state.withLock { s -> Bool in
                defer { s.peakRoseSinceRelease = false }
                guard s.peakRoseSinceRelease, s.peakBytes - s.observedPeak >= observer.stepBytes else { return false }
                s.observedPeak = s.peakBytes
                return true
            }
            if atNewPeak { observer.call() }
        }
        state.withLock { s in
            s.devices[device, default: DeviceFigures(liveBytes: 0, peakBytes: 0, budgetBytes: nil)].liveBytes -= bytes
            if device.isResidentInRAM {
                s.liveBytes -= bytes
                s.allocatorLive -= allocatorBytes ?? bytes
            }
        }
    }

    /// Installs `observer` (nil removes it): called on the releasing thread at the first release after the RAM
    /// peak rose by `stepBytes` or more over the peak it was last called at (or the peak at installation),
    /// before the release is applied. That is the moment a local maximum of owned memory ends — where the
    /// harness takes a reading a periodic sampler could miss. The step bounds the calls: at most one per
    /// `stepBytes` of peak (a 13 GB peak at 8 MiB: ≤ 1,600), however the load allocates and frees.
    package func observePeaks(stepBytes: Int, _ observer: (@Sendable () -> Void)?) {
        precondition(stepBytes > 0, "the peak step must be positive")
        state.withLock { s in
            s.observedPeak = s.peakBytes
            s.peakRoseSinceRelease = false
        }
        peakObserver.withLock { $0 = observer.map { PeakObserver(stepBytes: stepBytes, call: $0) } }
    }

    /// Live and peak RAM bytes at the allocator's size classes.
    package var allocatorFigures: AllocatorFigures {
        state.withLock { AllocatorFigures(liveBytes: $0.allocatorLive, peakBytes: $0.allocatorPeak) }
    }

    /// Live bytes over RAM-resident devices.
    package var liveBytes: Int { state.withLock { $0.liveBytes } }

    /// Exact peak of RAM-resident live bytes since creation or the last reset.
    package var peakBytes: Int { state.withLock { $0.peakBytes } }

    package func liveBytes(on device: Device) -> Int { state.withLock { $0.devices[device]?.liveBytes ?? 0 } }
    package func peakBytes(on device: Device) -> Int { state.withLock { $0.devices[device]?.peakBytes ?? 0 } }

    /// Starts a new measurement: every peak becomes the current live figure.
    package func resetPeak() {
        state.withLock { s in
            s.peakBytes = s.liveBytes
            s.observedPeak = s.liveBytes
            s.allocatorPeak = s.allocatorLive
            for (device, figures) in s.devices { s.devices[device]?.peakBytes = figures.liveBytes }
        }
    }

    /// Caps one device (nil removes the cap). Allocations past it throw `OutOfMemoryError`.
    package func setBudget(_ bytes: Int?, for device: Device) {
        state.withLock { s in
            s.devices[device, default: DeviceFigures(liveBytes: 0, peakBytes: 0, budgetBytes: nil)].budgetBytes = bytes
        }
    }

    /// Caps the RAM-resident total (nil removes the cap): how the harness simulates a smaller machine.
    package func setTotalBudget(_ bytes: Int?) {
        state.withLock { $0.totalBudget = bytes }
    }
}
