import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Turns a read of a file window whose file shrank from a crash into a reportable error.
///
/// Touching a page of a `mmap`ped file that lies wholly past the file's end raises SIGBUS: a checkpoint
/// truncated (or replaced in place) while a load reads its mapping would kill the process with a signal
/// instead of the "the file shrank" error every `pread` path reports. Every window TensorEngine's
/// `TensorStorage.mapFile` makes is registered here; a SIGBUS handler (`sigaction`, `SA_SIGINFO`) that finds the faulting address
/// (`si_addr`) inside a registered window maps one anonymous zero page over it (`mmap(MAP_FIXED |
/// MAP_ANONYMOUS)`), marks the window, and returns, so the read completes with zeros. The reader then asks
/// `TensorStorage.windowFaulted` and throws; the zeros never reach a result. A SIGBUS anywhere else goes to
/// the handler that was installed before (the runtime's or ``FatalSignalGuard``'s) and then kills the
/// process by the default action, exactly as without this guard.
///
/// A page only partly past the end reads zeros without a fault, so readers also compare the file's size
/// (`fstat`) with the window's end; the fault only has to be survived.
///
/// The handler takes no lock and allocates nothing: the table is allocated once and its slots are atomics,
/// written under a mutex by registration (never in the handler) and read by the handler. Installed lazily at
/// the first mapping, so whatever was installed earlier (a measured child's ``FatalSignalGuard``) is chained.
package enum FileWindowGuard {
    /// How many windows may be mapped at once: a model's every tensor as a view plus offloaded weights (a
    /// 70B-parameter model has ~720 tensors). When full, the mapping is refused (TensorEngine's `FileWindowError`). Kept
    /// small because the table is touched when first used: 3 × 32 KiB, inside a measured load's RSS.
    package static let capacity = 4096

    /// Per slot: the window's first byte (0 while the slot is free), its end, and whether it faulted.
    private nonisolated(unsafe) static let starts = allocateSlots()
    private nonisolated(unsafe) static let ends = allocateSlots()
    private nonisolated(unsafe) static let faults = allocateSlots()
    /// One past the highest slot ever used, so the handler scans only what could be live.
    private static let highWater = Atomic<Int>(0)
    private static let registration = Mutex<RegistrationState>(RegistrationState())
    private nonisolated(unsafe) static var pageSize = 4096
    private nonisolated(unsafe) static var previous = sigaction()

    private struct RegistrationState {
        var installed = false
        var free: [Int] = []
    }

    private static func allocateSlots() -> UnsafeMutablePointer<Atomic<Int>> {
        let slots = UnsafeMutablePointer<Atomic<Int>>.allocate(capacity: capacity)
        for index in 0..<capacity { (slots + index).initialize(to: Atomic(0)) }
        return slots
    }

    /// Registers a window (`base ..< base + length`, the whole mapping); returns its slot, or nil when the
    /// table is full or the handler could not be installed.
    package static func register(base: UnsafeMutableRawPointer, length: Int) -> Int? {
        registration.withLock { state -> Int? in
            if !state.installed {
                guard installHandler() else { return nil }
                state.installed = true
            }
            let slot: Int
            if let reused = state.free.popLast() {
                slot = reused
            } else {
                slot = highWater.load(ordering: .relaxed)
                guard slot < capacity else { return nil }
            }
            faults[slot].store(0, ordering: .relaxed)
            ends[slot].store(Int(bitPattern: base) + length, ordering: .relaxed)
            starts[slot].store(Int(bitPattern: base), ordering: .releasing)
            if slot == highWater.load(ordering: .relaxed) { highWater.store(slot + 1, ordering: .releasing) }
            return slot
        }
    }

    /// Frees a slot; called before the window is unmapped, so an address reused by a later mapping is never
    /// mistaken for it.
    package static func unregister(_ slot: Int) {
        registration.withLock { state in
            starts[slot].store(0, ordering: .releasing)
            state.free.append(slot)
        }
    }

    /// Whether a read of the window in `slot` touched a page past its file's end.
    package static func faulted(_ slot: Int) -> Bool { faults[slot].load(ordering: .acquiring) != 0 }

    private static func installHandler() -> Bool {
        pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        var action = sigaction()
        action.__sigaction_handler.sa_sigaction = handler
        action.sa_flags = SA_SIGINFO | SA_ONSTACK
        sigemptyset(&action.sa_mask)
        return sigaction(SIGBUS, &action, &previous) == 0
    }

    /// The slot whose window holds `address`, scanning live slots only.
    private static func slot(containing address: Int) -> Int? {
        let limit = highWater.load(ordering: .acquiring)
        for slot in 0..<limit {
            let start = starts[slot].load(ordering: .acquiring)
            if start != 0 && address >= start && address < ends[slot].load(ordering: .relaxed) { return slot }
        }
        return nil
    }

    private static let handler:
        @convention(c) (Int32, UnsafeMutablePointer<siginfo_t>?, UnsafeMutableRawPointer?) -> Void = {
            signal, info, context in
            if let info, let address = faultAddress(info), let slot = FileWindowGuard.slot(containing: address) {
                let page = address - address % FileWindowGuard.pageSize
                let zero = mmap(
                    UnsafeMutableRawPointer(bitPattern: page), FileWindowGuard.pageSize, PROT_READ,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0)
                if zero != MAP_FAILED {
                    FileWindowGuard.faults[slot].store(1, ordering: .releasing)
                    return
                }
            }
            FatalSignalGuard.chainAndDie(signal, info, context, previous: FileWindowGuard.previous)
        }

    /// `si_addr` of a fault the kernel raised (not a `kill`: a sent SIGBUS has `si_code` ≤ 0 and no address).
    private static func faultAddress(_ info: UnsafeMutablePointer<siginfo_t>) -> Int? {
        guard info.pointee.si_code > 0 else { return nil }
        #if canImport(Glibc)
        return Int(bitPattern: info.pointee._sifields._sigfault.si_addr)
        #else
        return Int(bitPattern: info.pointee.si_addr)
        #endif
    }
}
