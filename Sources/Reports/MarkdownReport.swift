import Foundation
import Loading
import Probes
import ResultsFormat
import TensorEngine

/// A rendered report: the markdown and the SVG files it references by relative path.
package struct RenderedReport: Sendable, Equatable {
    package struct File: Sendable, Equatable {
        package let name: String
        package let contents: String
    }

    /// `<scenario>.md`
    package var markdownName: String
    package var markdown: String
    /// The charts, named `<scenario>-peaks.svg` and `<scenario>-<run>.svg`.
    package var charts: [File]
}

/// The markdown report of a results file: what was run and where, a summary with verdicts, a chart per run,
/// the peaks chart, predictions at full size, and how every figure was obtained. A pure function of the
/// results: no clock, no environment, so rendering the same file twice gives the same bytes.
package enum MarkdownReport {
    /// - Parameter resultsLink: the results file's path relative to the markdown (shown and linked).
    package static func render(_ results: ScenarioResults, resultsLink: String) -> RenderedReport {
        let name = Format.fileSafe(results.scenario.name)
        var used: Set<String> = []
        func chartName(_ stem: String) -> String {
            var candidate = "\(name)-\(stem).svg"
            var n = 2
            while used.contains(candidate) {
                candidate = "\(name)-\(stem)-\(n).svg"
                n += 1
            }
            used.insert(candidate)
            return candidate
        }
        // A sweep's peaks and timelines are drawn for its largest size; the sweep section has every size.
        let focus = largestSize(results)
        let peaksName = chartName("peaks")
        var charts = [RenderedReport.File(name: peaksName, contents: PeaksChart.svg(results: focus))]
        var runCharts: [String?] = []
        for run in focus.runs {
            if let svg = TimelineChart.svg(results: results, run: run) {
                let stem = Format.fileSafe(run.id) + (results.scenario.repeatCount > 1 ? "-\(run.repeatIndex + 1)" : "")
                let file = chartName(stem)
                charts.append(.init(name: file, contents: svg))
                runCharts.append(file)
            } else {
                runCharts.append(nil)
            }
        }

        var machineCharts: [String] = []
        for machine in results.machineRuns ?? [] {
            let file = chartName(
                "machine-" + Format.fileSafe(machine.id)
                    + (results.scenario.repeatCount > 1 ? "-\(machine.repeatIndex + 1)" : ""))
            charts.append(.init(name: file, contents: MachineChart.svg(results: results, machine: machine)))
            machineCharts.append(file)
        }

        var sweepCharts: [(Subject, FitFigure, String)] = []
        for (loader, figure) in sweepChartKeys(results) {
            guard let svg = SweepChart.svg(results: results, loader: loader, figure: figure) else { continue }
            let file = chartName("sweep-\(Format.fileSafe(loader.name))-\(figure.rawValue)")
            charts.append(.init(name: file, contents: svg))
            sweepCharts.append((loader, figure, file))
        }

        var md = ""
        md += "# Memory report: \(results.scenario.name)\n\n"
        md += Conclusion.render(results)
        md += "## About this run\n\n"
        md += header(results, resultsLink: resultsLink)
        md += summary(results, peaksChart: peaksName)
        md += sweepSection(results, charts: sweepCharts)
        md += loaderComparison(focus)
        md += machineSection(results, charts: machineCharts)
        md += environment(results)
        md += runsSection(focus, charts: runCharts)
        md += predictions(results)
        md += method(results)
        return RenderedReport(markdownName: "\(name).md", markdown: md, charts: charts)
    }

    /// Renders and writes the report into `folder`: the markdown (as `markdownName`, default `<scenario>.md`)
    /// and every chart beside it. Returns the paths written.
    @discardableResult
    package static func write(
        _ results: ScenarioResults, resultsPath: String, folder: String, markdownName: String? = nil
    ) throws(ReportError) -> [String] {
        let link = relativeLink(from: folder, to: resultsPath)
        var report = render(results, resultsLink: link)
        if let markdownName { report.markdownName = markdownName }
        let base = folder.hasSuffix("/") ? folder : folder + "/"
        let files =
            report.charts.map { (path: base + $0.name, bytes: Array($0.contents.utf8)) } + [
                (path: base + report.markdownName, bytes: Array(report.markdown.utf8))
            ]
        try ResultsFile.writeAll(files)
        return [base + report.markdownName] + report.charts.map { base + $0.name }
    }

    /// The results file as the markdown links it: its name when in the same folder, else its path as given.
    static func relativeLink(from folder: String, to file: String) -> String {
        let fileURL = URL(fileURLWithPath: file).standardizedFileURL
        let folderURL = URL(fileURLWithPath: folder, isDirectory: true).standardizedFileURL
        if fileURL.deletingLastPathComponent().path == folderURL.path { return fileURL.lastPathComponent }
        return file
    }

    // MARK: - Sections

    static func header(_ r: ScenarioResults, resultsLink: String) -> String {
        var md = ""
        if !r.scenario.description.isEmpty {
            md += "> \(r.scenario.description.replacingOccurrences(of: "\n", with: " "))\n\n"
        }
        let finished = r.finishedAt.map { ", finished \($0)" } ?? ""
        md +=
            "Scenario \(Format.code(r.scenario.file)) · results [\(Format.code(resultsLink))](\(linkTarget(resultsLink))) (schema version \(r.schemaVersion))"
        md += " · started \(r.startedAt)\(finished) · \(r.runs.count) run\(r.runs.count == 1 ? "" : "s") recorded.\n\n"
        if !r.complete {
            md +=
                "> **Incomplete:** the scenario stopped early (\(r.stoppedReason?.rawValue ?? "no reason recorded")); only the runs below were measured.\n\n"
        }
        md +=
            "Sizes are binary (1 MiB = 2^20 bytes, 1 GiB = 2^30 bytes) unless written MB or GB (decimal: 10^6, 10^9 bytes). "
        md +=
            "Every Δ is a peak minus the measured child's own reading just before its load started; the results file has every figure in bytes.\n\n"
        return md
    }

    static func linkTarget(_ path: String) -> String {
        path.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? path
    }

    static func allowedRange(_ run: RunResult) -> String {
        guard let upper = run.upperBoundBytes else { return "-" }
        if let lower = run.lowerBoundBytes { return "\(Format.size(lower)) – \(Format.size(upper))" }
        return "≤ \(Format.size(upper))"
    }

    /// Seven columns, so that it fits a GitHub column (~890 px); every figure is in the table under it.
    static func compactSummary(_ r: ScenarioResults) -> String {
        var rows = [["run", "verdict", "predicted", "VmHWM Δ", "RSS anon Δ", "seconds", "× floor"]]
        for run in r.runs {
            let m = run.measurement
            rows.append([
                Format.runLabel(run, repeatCount: r.scenario.repeatCount) + (run.rank.map { " r\($0)" } ?? ""),
                "**\(run.verdict.rawValue)**",
                Format.size(run.predictedPeakBytes), Format.size(m?.peaks[.vmhwm]), Format.size(m?.peaks[.rssAnon]),
                run.seconds.map { Format.seconds($0, digits: 2) } ?? "-",
                run.floorMultiple.map { ByteSize.fixed($0, digits: 1) + "×" } ?? "-",
            ])
        }
        return Format.markdownTable(rows, rightAligned: [2, 3, 4, 5, 6]) + "\n"
    }

    /// Retained RssAnon Δ with RssFile Δ beside it; `-` where the run has no such figure (a loader command that
    /// never said its load was done).
    static func retainedCell(_ retained: RetainedMemory?) -> String {
        guard let retained else { return "-" }
        let file = retained.rssFileDeltaBytes.map { " (\(ByteSize.binaryWithMinus($0)))" } ?? ""
        return ByteSize.binaryWithMinus(retained.rssAnonDeltaBytes) + file
    }

    static func summary(_ r: ScenarioResults, peaksChart: String) -> String {
        var md = "## Summary\n\n"
        md += compactSummary(r)
        md += "\n<details><summary>Every figure of every run</summary>\n\n"
        var rows = [
            [
                "run", "strategy → dtype", "verdict", "predicted peak (formula)", "allowed range", "ledger peak",
                "VmHWM Δ", "RSS anon peak Δ",
                "RSS file peak Δ", "jemalloc allocated peak Δ", "retained anon Δ (file Δ)", "load seconds", "× floor",
            ]
        ]
        for run in r.runs {
            let m = run.measurement
            rows.append([
                Format.runLabel(run, repeatCount: r.scenario.repeatCount),
                "\(run.strategy) → \(run.dtype)",
                "**\(run.verdict.rawValue)**",
                run.predictedPeakBytes.map { "\(Format.size($0)) (\(run.formula))" } ?? "- (\(run.formula))",
                allowedRange(run),
                m.map { Format.size($0.engine?.ledgerPeakBytes) } ?? "-",
                Format.size(m?.peaks[.vmhwm]),
                Format.size(m?.peaks[.rssAnon]),
                Format.size(m?.peaks[.rssFile]),
                Format.size(m?.peaks[.jemallocAllocated]),
                retainedCell(m?.retained),
                run.seconds.map { Format.seconds($0) } ?? "-",
                run.floorMultiple.map { ByteSize.fixed($0, digits: 1) + "×" } ?? "-",
            ])
        }
        md += Format.markdownTable(rows, rightAligned: [5, 6, 7, 8, 9, 10, 11, 12])
        md += "\n</details>\n\n"
        md +=
            "Verdicts: **pass** every claimed bound held and the probes agreed; **fail** a bound did not hold or the probes disagreed; "
        md +=
            "**oom** the run hit its memory cap (the ledger budget) instead of the kernel's OOM killer; **error** the run died or could not be measured.\n\n"
        for run in r.runs {
            md +=
                "- **\(Format.runLabel(run, repeatCount: r.scenario.repeatCount))** (\(run.verdict.rawValue)): \(run.verdictDetail.replacingOccurrences(of: "\n", with: " "))\n"
        }
        md += "\n![\(r.scenario.name): measured peaks against predicted bounds](\(linkTarget(peaksChart)))\n\n"
        md +=
            "*Bars: each run's VmHWM Δ, RSS anon peak Δ, jemalloc allocated peak Δ, the ledger peak at jemalloc's size classes and the exact "
        md +=
            "ledger peak; red line: the predicted peak; red band: the allowed range of VmHWM and RSS. jemalloc counts every allocation at its "
        md +=
            "size class (a 2.1 MiB tensor takes 2.5 MiB), so its bar is compared with the grey size-class bar, not with the red band: a green "
        md += "bar past the band is not a failure.*\n\n"
        return md
    }

    static func environment(_ r: ScenarioResults) -> String {
        var md = "## What was run, and where\n\n"
        var rows = [["item", "value"]]
        rows += machineRows(r.environment)
        rows += runRows(r)
        md += Format.markdownTable(rows)
        md += "\n"
        return md
    }

    /// The machine the runs measured: hardware, kernel, memory settings, allocator and the children's environment.
    static func machineRows(_ e: EnvironmentInfo) -> [[String]] {
        var rows: [[String]] = []
        rows.append([
            "machine",
            "\(Format.code(e.hostname)): \(e.cpuModel), \(e.logicalCpus) logical CPU\(e.logicalCpus == 1 ? "" : "s"); "
                + "MemTotal \(Format.sizeBoth(e.memTotalBytes)), MemAvailable at start \(Format.size(e.memAvailableBytes)); "
                + (e.swapTotalBytes == 0 ? "no swap" : "swap \(Format.size(e.swapTotalBytes))")
                + "; page size \(e.pageSizeBytes) bytes",
        ])
        rows.append(["kernel", e.kernel])
        rows.append([
            "transparent huge pages",
            "enabled \(Format.code(e.transparentHugePages)), defrag \(Format.code(e.transparentHugePagesDefrag))",
        ])
        rows.append([
            "cgroup",
            (e.cgroup.map(Format.code) ?? "none detected") + "; memory limit "
                + (e.cgroupMemoryLimitBytes.map(Format.size) ?? "none"),
        ])
        rows.append(["allocator", "\(e.allocator), linked into every measured child (it serves all of malloc)"])
        rows.append(["MALLOC_CONF (measured children)", Format.code(e.mallocConf)])
        rows.append([
            "jemalloc options (read back)",
            e.jemallocOptions.keys.sorted().map { Format.code("\($0)=\(e.jemallocOptions[$0] ?? "")") }.joined(
                separator: ", "),
        ])
        rows.append([
            "child environment",
            e.childEnvironment.keys.sorted().map { key in
                key == "PATH" ? "PATH (as inherited)" : Format.code("\(key)=\(e.childEnvironment[key] ?? "")")
            }
            .joined(separator: ", "),
        ])
        return rows
    }

    /// What was run: the scale, the checkpoint, the scenario's settings, the floor and the tool.
    static func runRows(_ r: ScenarioResults) -> [[String]] {
        var rows: [[String]] = []
        let s = r.scale
        rows.append([
            "scale",
            "**\(Format.trimmed(s.chosen))** (requested \(Format.code(s.requested))): \(s.reason). Memory budget \(Format.size(s.memoryBudgetBytes)) "
                + "(\(Format.trimmed(s.safeShare * 100))% of the memory offered)"
                + (s.diskFreeBytes.map { "; disk free \(Format.sizeBoth($0))" } ?? ""),
        ])
        let c = r.checkpoint
        var checkpoint = c.generated ? "synthetic, generated by bigmodel-bench" : "existing checkpoint"
        if let seed = c.seed { checkpoint += " (seed \(seed))" }
        if let dtype = c.dtype { checkpoint += ", \(dtype)" }
        checkpoint +=
            "; \(c.files) file\(c.files == 1 ? "" : "s"), \(Format.grouped(c.totalSizeBytes)) bytes (\(Format.sizeBoth(c.totalSizeBytes)))"
        checkpoint += ", largest shard \(Format.sizeBoth(c.largestShardBytes))"
        if let max = c.maxShardSizeBytes { checkpoint += ", max_shard_size \(ByteSize.decimal(max)) at this scale" }
        if c.generated {
            checkpoint +=
                c.reused
                ? "; reused from the cache"
                : "; generated" + (c.generationSeconds.map { " in \(Format.seconds($0, digits: 2)) s" } ?? "")
        }
        checkpoint += "; \(Format.code(c.path))"
        rows.append(["checkpoint", checkpoint])
        let sc = r.scenario
        rows.append([
            "scenario settings",
            "model_type \(Format.code(sc.modelType)); cache **\(sc.cache)** "
                + (sc.cache == .cold
                    ? "(shards evicted from the page cache with POSIX_FADV_DONTNEED before each run)"
                    : "(shards made resident in the page cache before each run)")
                + "; repeat \(sc.repeatCount); sample interval \(Format.trimmed(sc.sampleIntervalSeconds * 1000)) ms"
                + (sc.outsideProbeIntervalSeconds.map {
                    " (loaders measured from outside: \(Format.trimmed($0 * 1000)) ms)"
                } ?? "") + "; "
                + "tolerance \(Format.trimmed(sc.toleranceRelative * 100))% + \(Format.size(sc.toleranceAbsoluteBytes))"
                + (sc.memoryLimitBytes.map { "; simulated machine memory (--memory-limit) \(Format.size($0))" } ?? ""),
        ])
        if let f = r.floor {
            rows.append([
                "floor",
                "\(Format.sizeBoth(f.bytes)) read in \(Format.seconds(f.seconds)) s = \(ByteSize.fixed(f.gigabytesPerSecond, digits: 2)) GB/s (decimal); \(f.method)",
            ])
        } else if let failure = r.floorFailure {
            rows.append(["floor", "not measured: \(failure); the runs have no × floor"])
        } else {
            rows.append(["floor", "not measured"])
        }
        let t = r.tool
        rows.append([
            "tool",
            "\(t.name) \(t.version)" + (t.gitCommit.map { ", commit \(Format.code($0))" } ?? "")
                + ", \(t.swiftVersion), \(t.buildConfiguration) build",
        ])
        return rows
    }

    static func runsSection(_ r: ScenarioResults, charts: [String?]) -> String {
        var md = "## Runs\n\n"
        for (index, run) in r.runs.enumerated() {
            let label = Format.runLabel(run, repeatCount: r.scenario.repeatCount)
            md += "### \(label): \(run.verdict.rawValue)\n\n"
            var line = "Strategy \(Format.code(run.strategy.rawValue)) → \(run.dtype)"
            if let m = run.measurement { line += " (dtype from \(m.dtypeSource))" }
            if let p = run.predictedPeakBytes { line += " · predicted peak \(Format.size(p)) = \(run.formula)" }
            if let tol = run.toleranceBytes { line += " · tolerance \(Format.size(tol))" }
            if let s = run.seconds { line += " · load \(Format.seconds(s)) s" }
            if let fm = run.floorMultiple { line += " (\(ByteSize.fixed(fm, digits: 1))× the floor)" }
            md += line + "\n\n"
            md += "\(run.verdictDetail.replacingOccurrences(of: "\n", with: " "))\n\n"
            if let chart = charts[index] {
                md += "![\(label): memory over time](\(linkTarget(chart)))\n\n"
            }
            if !run.checks.isEmpty {
                var rows = [["check", "measured", "relation", "bound", "result", "what"]]
                for c in run.checks {
                    let measured =
                        c.relation == .equal ? "\(Format.grouped(c.measuredBytes)) B" : Format.size(c.measuredBytes)
                    let bound = c.relation == .equal ? "\(Format.grouped(c.boundBytes)) B" : Format.size(c.boundBytes)
                    rows.append([
                        c.name, measured, c.relation == .within ? "≤ (allowed gap)" : c.relation.rawValue, bound,
                        c.passed ? "pass" : "**FAIL**", c.detail,
                    ])
                }
                md += Format.markdownTable(rows, rightAligned: [1, 3]) + "\n"
            }
            if let m = run.measurement {
                if !m.phases.isEmpty {
                    var rows = [["#", "phase", "start s", "end s", "ledger live at start", "ledger live at end"]]
                    for (i, p) in m.phases.enumerated() {
                        rows.append([
                            String(i + 1), p.name, Format.seconds(p.startSeconds), Format.seconds(p.endSeconds),
                            Format.size(p.ledgerLiveBytesAtStart),
                            Format.size(p.ledgerLiveBytesAtEnd),
                        ])
                    }
                    md += "Phases (times in seconds since the child's sampler started, as on the chart):\n\n"
                    md += Format.markdownTable(rows, rightAligned: [0, 2, 3, 4, 5]) + "\n"
                }
                switch m.loader {
                case .engine: md += enginePeaks(m)
                case .outside(let outside): md += loaderDetails(m, outside)
                }
                md += snapshots(m)
                if let usage = m.engine?.devices { md += devicesSection(usage) }
                let s = m.sampler
                md +=
                    "Sampler: \(s.samples) samples at a mean interval of \(Format.seconds(s.achievedMeanIntervalSeconds * 1000)) ms "
                md +=
                    "(requested \(Format.trimmed(s.requestedIntervalSeconds * 1000)) ms), \(s.droppedSamples) dropped; one sample took "
                md +=
                    "\(Format.seconds(s.meanSampleSeconds * 1000)) ms on average, \(Format.seconds(s.maxSampleSeconds * 1000)) ms at most; "
                md +=
                    "the sampler thread used \(Format.seconds(s.cpuSeconds)) s of CPU (\(ByteSize.fixed(s.cpuShareOfLoad * 100, digits: 1))% of the load's wall time).\n\n"
                if !m.missingKeys.isEmpty {
                    md +=
                        "Missing keys (initialised, not loaded): \(m.missingKeys.map(Format.code).joined(separator: ", "))\n\n"
                }
                if !m.unexpectedKeys.isEmpty {
                    md += "Unexpected keys (ignored): \(m.unexpectedKeys.map(Format.code).joined(separator: ", "))\n\n"
                }
                if let oom = m.outOfMemory {
                    md +=
                        "Stopped at its memory cap: \(Format.size(oom.reachedBytes)) live of a \(Format.size(oom.capBytes)) cap when \(Format.size(oom.requestedBytes)) more were asked for (\(oom.message)).\n\n"
                }
                if let failure = m.failure {
                    md += "The load failed: \(failure.replacingOccurrences(of: "\n", with: " "))\n\n"
                }
            }
            md += exitLine(run.exit)
        }
        return md
    }

    static func enginePeaks(_ m: RunMeasurement) -> String {
        "Peaks above the baseline: ledger \(Format.size(m.peaks[.ledgerLive])) (exact), ledger at jemalloc size classes "
            + "\(Format.size(m.peaks[.ledgerSizeClass])) (what `stats.allocated` should show for the same allocations), "
            + "VmRSS \(Format.size(m.peaks[.rss])), jemalloc active \(Format.size(m.peaks[.jemallocActive])), "
            + "jemalloc resident \(Format.size(m.peaks[.jemallocResident])).\n\n"
    }

    /// A loader measured from outside: what it runs on, how its peak was read, end of load against after the touch.
    static func loaderDetails(_ m: RunMeasurement, _ outside: RunMeasurement.Outside) -> String {
        var md = "Measured from outside (no ledger, no jemalloc: those figures are absent). "
        if let versions = outside.subjectVersions {
            md +=
                "Runs on " + versions.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
                + ". "
        }
        if let source = outside.peakSource { md += "Peak: \(source). " }
        if let code = outside.codePagesBytes {
            md +=
                "Its own code and library pages grew by \(Format.size(code)) during the load (smaps): VmHWM Δ \(Format.size(m.peaks[.vmhwm])) less that is \(Format.size(m.judgedPeaks[.vmhwm])), the figure the claims read. "
        }
        md += "\n\n"
        if let load = outside.loadPeaks {
            md +=
                "At the end of the load: RSS anon Δ \(Format.size(load[.rssAnon])), RSS file Δ \(Format.size(load[.rssFile])), VmHWM Δ \(Format.size(load[.vmhwm]))"
            md +=
                outside.touchSeconds.map {
                    "; after the touch (every parameter read once, \(Format.seconds($0)) s): RSS anon Δ \(Format.size(m.peaks[.rssAnon])), RSS file Δ \(Format.size(m.peaks[.rssFile])), VmHWM Δ \(Format.size(m.peaks[.vmhwm]))"
                } ?? ""
            md += ".\n\n"
        }
        if let map = outside.hfDeviceMap {
            md +=
                "`hf_device_map` (transformers): "
                + map.prefix(8).map { "\(Format.code($0.module.isEmpty ? "\"\"" : $0.module)) → \($0.device)" }.joined(
                    separator: ", ")
            md += map.count > 8 ? " … (\(map.count) modules)" : ""
            md += outside.planDeviceMap.map { " · `plan` gives \($0.count) module\($0.count == 1 ? "" : "s")" } ?? ""
            md += ".\n\n"
        }
        for note in outside.notes ?? [] { md += "Note: \(note)\n\n" }
        return md + AttributionReport.markdown(m, outside)
    }

    /// A device-map run: each device's budget, share and peaks, and the `hf_device_map`.
    static func devicesSection(_ u: DeviceUsage) -> String {
        var md =
            "Placement (`device_map=\"\(u.mode)\"`, accelerate's rules): accelerators are simulated as memory pools in host RAM, each with "
        md +=
            "its own jemalloc arena; disk weights stay in files (\(u.offloadReferencedTensors) referenced in place in the checkpoint, "
        md += "\(u.offloadWrittenFiles) written to the offload folder, \(Format.size(u.offloadWrittenBytes))).\n\n"
        var rows = [
            [
                "device", "budget (max_memory)", "placed", "share of model", "staging", "predicted peak", "ledger peak",
                "jemalloc arena allocated",
            ]
        ]
        for d in u.devices {
            let share = u.modelBytes > 0 ? Double(d.placedBytes) / Double(u.modelBytes) * 100 : 0
            rows.append([
                d.device.description,
                d.budgetBytes.map(Format.size) ?? (d.capacityBytes.map { "capacity " + Format.size($0) } ?? "-"),
                Format.size(d.placedBytes),
                ByteSize.fixed(share, digits: 1) + "%", d.stagingBytes > 0 ? Format.size(d.stagingBytes) : "-",
                d.device == .disk ? "(not RAM)" : Format.size(d.predictedPeakBytes),
                d.device == .disk ? "-" : Format.size(d.ledgerPeakBytes),
                d.arenaAllocatedBytes.map(Format.size) ?? "-",
            ])
        }
        md += Format.markdownTable(rows, rightAligned: [1, 2, 3, 4, 5, 6, 7]) + "\n"
        var groups: [(device: Device, modules: [String])] = []
        for entry in u.deviceMap {
            if let last = groups.last, last.device == entry.device {
                groups[groups.count - 1].modules.append(entry.module)
            } else {
                groups.append((entry.device, [entry.module]))
            }
        }
        md +=
            "`hf_device_map`: "
            + groups.map { group in
                let names =
                    group.modules.count > 3
                    ? "\(Format.code(group.modules[0])) … \(Format.code(group.modules[group.modules.count - 1])) (\(group.modules.count) modules)"
                    : group.modules.map(Format.code).joined(separator: ", ")
                return "\(names) → \(group.device)"
            }.joined(separator: "; ") + "\n\n"
        return md
    }

    /// The baseline and end readings, one row per figure either holds.
    static func snapshots(_ m: RunMeasurement) -> String {
        var rows: [[String]] = [["reading (absolute)", "baseline (before the load)", "end (model loaded and alive)"]]
        for figure in MemoryFigure.allCases where m.baseline[figure] != nil || m.end[figure] != nil {
            rows.append([Self.readingTitle(figure), Format.size(m.baseline[figure]), Format.size(m.end[figure])])
        }
        return Format.markdownTable(rows, rightAligned: [1, 2]) + "\n"
    }

    static func readingTitle(_ figure: MemoryFigure) -> String {
        switch figure {
        case .vmhwm: "VmHWM (reset before the baseline)"
        case .pss, .pssAnon, .pssFile: "\(figure.title) (smaps_rollup)"
        case .jemallocRetained: "jemalloc retained (virtual, not resident)"
        default: figure.title
        }
    }

    static func exitLine(_ exit: RunExit) -> String {
        var parts: [String] = []
        if let status = exit.status { parts.append("exit status \(status)") }
        if let signal = exit.signalName ?? exit.signal.map({ "signal \($0)" }) {
            parts.append("killed by \(signal)" + (exit.coreDumped ? " (core dumped)" : ""))
        }
        if let u = exit.userSeconds, let s = exit.systemSeconds {
            parts.append("CPU \(Format.seconds(u)) s user + \(Format.seconds(s)) s system")
        }
        if let rss = exit.rusageMaxRssBytes {
            parts.append("ru_maxrss \(Format.size(rss)) (inflated by the exec pitfall: reference only)")
        }
        var md = "Child process: \(parts.joined(separator: "; ")).\n\n"
        if let tail = exit.stderrTail, !tail.isEmpty {
            md += "Last lines of its stderr:\n\n```text\n\(tail.replacingOccurrences(of: "```", with: "'''"))\n```\n\n"
        }
        return md
    }

    static let symbols = """
        Symbols: **M_t** the model's bytes at the target dtype (every parameter); **M_ck** the checkpoint's tensor bytes as stored; \
        **M_32** the model's bytes in float32; **S** the largest shard's tensor bytes; **T_t** the largest parameter at the target dtype; \
        **staging** the conversion buffer of the skeleton paths (the largest converted tensor, capped). \
        load-then-cast's M_32 + T_t is evaluated over its real cast order (largest tensor first), which is the figure used. \
        Upper bound = predicted + tolerance; tolerance = ⌈predicted × relative⌉ + absolute.
        """

    /// The scenario's tolerance for a predicted figure: ⌈predicted × relative⌉ + absolute (as the claim checker computes it).
    package static func toleranceBytes(_ scenario: ScenarioInfo, predicted: Int) -> Int {
        Int((Double(predicted) * scenario.toleranceRelative).rounded(.up)) + scenario.toleranceAbsoluteBytes
    }

    static func figureRow(_ f: MemoryFigures) -> [String] {
        [f.modelBytes, f.checkpointBytes, f.model32Bytes, f.largestShardBytes, f.largestTensorBytes, f.stagingBytes]
            .map(Format.size)
    }

    static func predictions(_ r: ScenarioResults) -> String {
        var md = "## Predictions and formulas\n\n"
        var rows = [["run", "formula", "M_t", "M_ck", "M_32", "S", "T_t", "staging", "predicted peak"]]
        for run in r.runs {
            guard let f = run.figures else { continue }
            rows.append(
                [Format.runLabel(run, repeatCount: r.scenario.repeatCount), run.formula] + figureRow(f) + [
                    run.predictedPeakBytes.map(Format.size) ?? "-"
                ])
        }
        if rows.count > 1 {
            md += "At the measured scale (\(Format.trimmed(r.scale.chosen))), from the checkpoint's headers:\n\n"
            md += Format.markdownTable(rows, rightAligned: Set(2...8)) + "\n"
        }
        if r.scale.chosen != 1 && !r.fullSizePredictions.isEmpty {
            md += "### At full size (scale 1)\n\n"
            md +=
                "This run was scaled to \(Format.trimmed(r.scale.chosen)) (\(r.scale.reason)). The same formulas, applied to the model and "
            md += "shard plan at full size, predict:\n\n"
            var full = [
                [
                    "run", "strategy", "formula", "M_t", "M_ck", "M_32", "S", "T_t", "staging", "predicted peak",
                    "upper bound (+ tolerance)",
                ]
            ]
            for p in r.fullSizePredictions {
                let upper = p.predictedPeakBytes + toleranceBytes(r.scenario, predicted: p.predictedPeakBytes)
                full.append(
                    [p.run, p.strategy.rawValue, p.formula] + figureRow(p.figures) + [
                        Format.sizeBoth(p.predictedPeakBytes), Format.size(upper),
                    ])
            }
            md += Format.markdownTable(full, rightAligned: Set(3...10)) + "\n"
        }
        md += symbols + "\n\n"
        return md
    }

    static func method(_ r: ScenarioResults) -> String {
        let interval = Format.trimmed(r.scenario.sampleIntervalSeconds * 1000)
        let tolerance =
            "⌈predicted × \(Format.trimmed(r.scenario.toleranceRelative))⌉ + \(Format.grouped(r.scenario.toleranceAbsoluteBytes)) bytes (\(Format.size(r.scenario.toleranceAbsoluteBytes)))"
        var md = "## Method\n\n"
        md +=
            "Each run is a fresh child process of bigmodel-bench with a fixed environment (\(Format.code("MALLOC_CONF=\(r.environment.mallocConf)")): "
        md +=
            "freed pages go back to the kernel at once, so RSS after a free is honest). In the child, a sampler thread starts first; then jemalloc's "
        md +=
            "thread cache is flushed and its arenas purged, VmHWM is reset by writing 5 to `/proc/self/clear_refs`, and after a 10 ms settle the "
        md +=
            "**baseline** is read. Only then does the load start; the **end** reading is taken after the load with the model still alive.\n\n"
        md +=
            "- **ledger peak**: the engine's exact count of bytes owned by tensors at its highest (every tensor allocation goes through the ledger); not sampled, exact to the byte. It must equal the prediction.\n"
        md +=
            "- **predicted peak**: the strategy's formula evaluated on figures computed from the checkpoint's headers (table above).\n"
        md +=
            "- **VmHWM Δ**: `/proc/self/status` VmHWM read at the end, minus VmRSS at the baseline. The kernel keeps this high-water mark itself, so no sampling gap can miss a spike; it counts anonymous, file and shared pages.\n"
        md +=
            "- **RSS anon / RSS file peak Δ**: the maximum of RssAnon / RssFile (`/proc/self/statm`) over the samples and the end reading, minus the baseline reading. "
        md +=
            "Samples are taken every \(interval) ms by the sampler thread (the achieved interval is given per run) and at each **mark**: the load takes one more reading on its own thread at every phase transition and at the first free after the ledger's peak rose by \(RSSSampler.markPeakStepBytes >> 20) MiB, before that free, so a peak of owned memory is read whatever the interval.\n"
        md +=
            "- **jemalloc allocated peak Δ**: jemalloc's `stats.allocated` (bytes in live allocations) after writing `epoch` to refresh the statistics, read at each mark and every \(Format.trimmed(RSSSampler.jemallocPeriodSeconds * 1000)) ms by the sampler thread, maximum minus baseline.\n"
        md +=
            "- **timeline**: the samples downsampled to at most 2000 points keeping each bucket's maxima; every column is a delta over the baseline except ledger live (absolute, 0 at baseline).\n"
        md +=
            "- **tolerance**: \(tolerance); upper bound = predicted + tolerance; lower bound = max(0, predicted − tolerance), checked only for naive and load-then-cast, whose claim is a high cost (a probe that misses memory must fail).\n"
        md +=
            "- **checks**: ledger peak = prediction; VmHWM Δ and RSS anon peak Δ ≤ upper bound (and ≥ lower bound where there is one); "
        md +=
            "|RSS anon peak Δ − ledger peak| and |jemalloc allocated peak Δ − ledger peak at jemalloc size classes| each within ⌈ledger peak × \(Format.trimmed(r.scenario.toleranceRelative))⌉ + \(Format.size(r.scenario.toleranceAbsoluteBytes)). Any failed check makes the verdict fail.\n"
        if let floor = r.floor {
            md +=
                "- **floor**: the same checkpoint bytes read into fresh memory the fastest plain way (\(floor.method)) in a child of its own; × floor = a run's load seconds / the floor's \(Format.seconds(floor.seconds)) s"
                + Self.floorPasses(floor) + ".\n"
        }
        md +=
            "- **load seconds**: wall-clock time of the load inside the child (monotonic clock), excluding process start and the baseline.\n"
        md +=
            "- **cache**: `\(r.scenario.cache)`: "
            + (r.scenario.cache == .cold
                ? "before each run the shards are evicted from the page cache (POSIX_FADV_DONTNEED), so every read comes from the disk.\n"
                : "before each run the shards are made resident in the page cache, so reads come from the page cache rather than the disk.\n")
        md +=
            "- **ru_maxrss** (per run, reference only): from wait4; Linux folds the parent's peak into it at exec, so it is never used for a verdict.\n"
        return md
    }
}

extension MarkdownReport {
    /// How the floor's passes relate to the figure (files before first_pass_seconds: the first or fastest pass).
    static func floorPasses(_ floor: FloorInfo) -> String {
        guard let first = floor.firstPassSeconds else {
            return floor.warmSeconds.map {
                " (its first pass, in a fresh process like the run's; with its memory warm the floor reads in \(Format.seconds($0)) s)"
            } ?? ""
        }
        return
            " (its uncounted first pass, in memory the host had taken back, took \(Format.seconds(first)) s; the fastest counted pass \(Format.seconds(floor.warmSeconds ?? floor.seconds)) s)"
    }
}
