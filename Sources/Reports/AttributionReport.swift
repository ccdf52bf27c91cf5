import ResultsFormat
import TensorEngine

/// "Where the peak comes from": a Python subject's run under `--attribute`, memray's stacks at its high-water
/// mark, the biggest first, each with its share of memray's peak and of the run's VmHWM Δ.
enum AttributionReport {
    /// Frames shown per stack (the results keep them all).
    static let framesShown = 6

    static func markdown(_ m: RunMeasurement, _ outside: RunMeasurement.Outside) -> String {
        if let failure = outside.attributionFailure {
            return "#### Where the peak comes from (memray)\n\nNot attributed: \(failure)\n\n"
        }
        guard let a = outside.attribution else { return "" }
        let hwm = m.peaks[.vmhwm]
        var md = "#### Where the peak comes from (memray)\n\n"
        md +=
            "memray \(a.memrayVersion) tracked the load and the touch: its high-water mark was \(Format.size(a.peakBytes)) in "
            + "\(a.allocations) allocations from \(a.stackCount) call stacks"
            + (hwm.map { " (VmHWM Δ \(Format.size($0)))" } ?? "")
            + "; the \(a.stacks.count) biggest hold \(Format.percent(a.topShare)) of it. memray counts the bytes a "
            + "process asks its allocators for, a file mapping whole (`mmap`); RSS counts the pages resident, so the "
            + "two peaks differ. This run was measured under memray's tracker: its figures include the tracker's own "
            + "memory and its time.\n\n"
        var rows = [["#", "bytes", "of memray's peak", "of VmHWM Δ", "kind", "stack (innermost first)"]]
        for (index, stack) in a.stacks.enumerated() {
            rows.append([
                String(index + 1), Format.size(stack.bytes),
                Format.percent(a.peakBytes > 0 ? Double(stack.bytes) / Double(a.peakBytes) : 0),
                hwm.map { Format.percent($0 > 0 ? Double(stack.bytes) / Double($0) : 0) } ?? "-",
                stack.allocators.joined(separator: ", "), frames(stack.frames),
            ])
        }
        return md + Format.markdownTable(rows, rightAligned: [0, 1, 2, 3]) + "\n"
    }

    /// `function` (file:line) ← … for the first ``framesShown`` frames; a native C++ name without its parameters.
    static func frames(_ frames: [Attribution.Frame]) -> String {
        var shown = frames.prefix(framesShown).map { frame -> String in
            let name = frame.file == nil ? nativeName(frame.function) : frame.function
            let place = frame.file.map { " (\($0)\(frame.line.map { ":\($0)" } ?? ""))" } ?? ""
            return Format.code(name) + place
        }
        if frames.count > framesShown { shown.append("… \(frames.count - framesShown) more") }
        return shown.joined(separator: " ← ")
    }

    /// `at::MapAllocator::MapAllocator(at::WithFileName, …)` → `at::MapAllocator::MapAllocator`.
    static func nativeName(_ function: String) -> String {
        guard let open = function.firstIndex(of: "("), open != function.startIndex else { return function }
        return String(function[..<open])
    }
}
