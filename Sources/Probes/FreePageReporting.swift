import Foundation

/// Whether this machine hands freed memory back to a hypervisor: Linux's free page reporting
/// (`mm/page_reporting.c`), which a virtio-balloon device with `VIRTIO_BALLOON_F_REPORTING` drives. The host
/// then drops the pages and must back them again on their next first write, so a process that allocates
/// memory no recent process used pays the host's fault (see ``FirstTouchFloor``).
package struct FreePageReporting: Sendable, Equatable, Codable {
    /// `page_reporting_order` (`/sys/module/page_reporting/parameters/`): free blocks of 2^order pages are reported.
    package var order: Int?
    /// `reported_kib` where the kernel exports it: KiB reported to the host since boot, bytes.
    package var reportedBytes: Int?

    /// Reads the module's parameters when a virtio-balloon device offers reporting
    /// (`/sys/bus/virtio/drivers/virtio_balloon/*/features`, bit 5); nil otherwise (bare metal, or a balloon
    /// without reporting).
    package static func current() -> FreePageReporting? {
        guard balloonOffersReporting() else { return nil }
        let parameters = "/sys/module/page_reporting/parameters/"
        func number(_ name: String) -> Int? { readTextFile(parameters + name).flatMap { Int($0.trimmingBlanks()) } }
        return FreePageReporting(
            order: number("page_reporting_order"), reportedBytes: number("reported_kib").map { $0 &* 1024 })
    }

    /// The kernel prints a virtio device's feature bits as a string of '0'/'1', bit 0 first.
    static func reportingBit(features: String) -> Bool {
        let bits = Array(features.utf8)
        return bits.count > 5 && bits[5] == UInt8(ascii: "1")
    }

    private static func balloonOffersReporting() -> Bool {
        let driver = "/sys/bus/virtio/drivers/virtio_balloon"
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: driver) else { return false }
        return entries.filter { $0.hasPrefix("virtio") }.contains { entry in
            readTextFile(driver + "/" + entry + "/features").map(reportingBit) ?? false
        }
    }
}
