// swift-tools-version:6.0
//
// bigmodel-bench: measures what it costs, in memory, to load a big model each way.
//
// Module graph (each module uses only modules to its right; the README's "Architecture" says what each holds):
//
//   bigmodel-bench (CLI) ─► Reports ─► ResultsFormat ─► Loading ─► Placement ─► Models ─► Checkpoint ─► TensorEngine ─► OSLayer
//          │                             ▲     │            │                                 │              │
//          └────────► Harness ───────────┘     └─► Probes ◄─┘                                 └─► StrictJSON  └─► CJemalloc, CHalfKernels
//   Harness (Input, Preparation, Runner, Child, Judging, Ranks, Backends) writes ResultsFormat; Reports reads it and
//   never Harness. Probes (what is measured) stands on OSLayer and CJemalloc; TensorEngine on OSLayer, not Probes.
//   StrictJSON is a leaf utility (strict parser + byte-exact writers) used from Checkpoint upward.
//
// Which targets touch the operating system, and why (each target below lists what it imports):
//   - OSLayer: the operating system, apart from what is measured — fork/exec with a parent-death signal (prctl
//     and pipe2 from CLinux), pipes and poll, signal handlers (SIGINT/SIGTERM traps; fatal signals; SIGBUS on
//     shrunk file windows, mapping a zero page over the fault), flock, open/fsync/rename for atomic files,
//     isatty and TIOCGWINSZ, clock_gettime, mmap/madvise for huge-page buffers, O_DIRECT opens (CLinux) and
//     posix_fadvise(WILLNEED) read advice. Each wrapper names the call.
//   - Probes: /proc, /sys (THP, free page reporting) and cgroup files, fadvise for the page cache, mallctl.
//   - TensorEngine: TensorStorage maps checkpoint windows with mmap/munmap (a tensor's bytes are the mapping)
//     and registers each with OSLayer's FileWindowGuard; ConversionKernel takes memcpy from Glibc, Conversion
//     the processor count from Foundation.
//   - Checkpoint: SafetensorsFile reads tensors with pread into their destination (and advises readahead);
//     DirectFileReader reads a cold shard with O_DIRECT preads (opened through OSLayer); UntrustedFile opens
//     inputs O_NONBLOCK and fstats them — the byte-exact I/O of the format, which is the module's job.
//   - Models: NormalTable takes log() from Glibc (the C math library, no system call).
//   - Loading: its readers are threads (Foundation's Thread) and memmove within a tensor (Glibc via Foundation);
//     every read goes through Checkpoint.
//   Harness, Placement, ResultsFormat and Reports use Foundation for files, dates and threads only; no other
//   target calls the kernel directly.
import PackageDescription

let strictConcurrency: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny")
]

let package = Package(
    name: "bigmodel-bench",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "bigmodel-bench", targets: ["bigmodel-bench"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        // Verdict colours in the terminal (the CLI only; whether to colour is Probes' Terminal.wantsColour).
        .package(url: "https://github.com/onevcat/Rainbow", from: "4.2.2"),
    ],
    targets: [
        // jemalloc, linked into every binary that uses TensorEngine so it serves all of malloc.
        .systemLibrary(
            name: "CJemalloc",
            path: "Sources/CJemalloc",
            providers: [.apt(["libjemalloc-dev"])]
        ),
        // Hardware binary16 conversion (x86-64 F16C), chosen at run time from cpuid; pure computation, no OS calls.
        // C because Swift has no F16C intrinsics (TensorEngine's ConversionKernel, for F32 → F16 and BF16 → F16).
        .target(name: "CHalfKernels", path: "Sources/CHalfKernels"),
        // prctl, pipe2 and O_DIRECT, which Glibc's module does not export to Swift (OSLayer only).
        .systemLibrary(name: "CLinux", path: "Sources/CLinux"),
        .target(
            name: "StrictJSON",
            dependencies: [.product(name: "OrderedCollections", package: "swift-collections")],
            swiftSettings: strictConcurrency
        ),
        .target(
            name: "OSLayer",
            dependencies: ["CLinux", .product(name: "SystemPackage", package: "swift-system")],
            swiftSettings: strictConcurrency
        ),
        .target(
            name: "TensorEngine",
            dependencies: [
                "CJemalloc", "CHalfKernels", "OSLayer",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictConcurrency
        ),
        .target(
            name: "Probes",
            dependencies: [
                "CJemalloc", "OSLayer",
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: strictConcurrency
        ),
        .target(
            name: "Checkpoint",
            dependencies: [
                "OSLayer",
                "TensorEngine", "StrictJSON", .product(name: "OrderedCollections", package: "swift-collections"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: strictConcurrency
        ),
        .target(
            name: "Models",
            dependencies: [
                "OSLayer", "TensorEngine", "Checkpoint", "StrictJSON",
                .product(name: "OrderedCollections", package: "swift-collections"),
            ],
            swiftSettings: strictConcurrency
        ),
        // Device placement (accelerate's device_map rules): budgets, module sizes, automatic and user maps.
        .target(
            name: "Placement",
            dependencies: [
                "OSLayer", "TensorEngine", "Models", "StrictJSON",
                .product(name: "OrderedCollections", package: "swift-collections"),
            ],
            swiftSettings: strictConcurrency
        ),
        .target(
            name: "Loading",
            dependencies: [
                "OSLayer", "TensorEngine", "Checkpoint", "Models", "Placement", "Probes", "StrictJSON",
                .product(name: "OrderedCollections", package: "swift-collections"),
            ],
            swiftSettings: strictConcurrency
        ),
        .target(
            name: "ResultsFormat",
            dependencies: [
                "OSLayer", "TensorEngine", "Checkpoint", "Loading", "Placement", "Probes", "StrictJSON",
                .product(name: "OrderedCollections", package: "swift-collections"),
            ],
            swiftSettings: strictConcurrency
        ),
        .target(
            name: "Harness",
            dependencies: [
                "OSLayer", "TensorEngine", "Checkpoint", "Models", "Loading", "Placement", "Probes", "ResultsFormat",
                "StrictJSON", .product(name: "OrderedCollections", package: "swift-collections"),
            ],
            swiftSettings: strictConcurrency
        ),
        .target(
            name: "Reports",
            dependencies: [
                "OSLayer", "TensorEngine", "Checkpoint", "Loading", "Probes", "ResultsFormat", "StrictJSON",
                .product(name: "OrderedCollections", package: "swift-collections"),
            ],
            swiftSettings: strictConcurrency
        ),
        .executableTarget(
            name: "bigmodel-bench",
            dependencies: [
                "OSLayer", "TensorEngine", "Checkpoint", "Models", "Placement", "Loading", "Probes", "ResultsFormat",
                "Harness", "Reports", "StrictJSON", .product(name: "OrderedCollections", package: "swift-collections"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Rainbow", package: "Rainbow"),
            ],
            swiftSettings: strictConcurrency
        ),
        // Test support: fixtures' paths, temporary folders, running the tool, the shared tiny scenario, the
        // memory-measuring suite that serializes tests which read this process's own memory.
        .target(
            name: "TestSupport",
            dependencies: [
                "OSLayer", "TensorEngine", "Checkpoint", "Harness", "Reports", "ResultsFormat", "StrictJSON",
                .product(name: "OrderedCollections", package: "swift-collections"),
            ],
            path: "Tests/TestSupport",
            swiftSettings: strictConcurrency
        ),
        // The engine and what it loads: dtypes, conversion, StrictJSON, safetensors, checkpoints, models,
        // placement and the loading strategies.
        .testTarget(
            name: "EngineTests",
            dependencies: [
                "TestSupport", "OSLayer", "TensorEngine", "StrictJSON", "Checkpoint", "Models", "Placement", "Loading",
                "Probes", "CJemalloc", .product(name: "OrderedCollections", package: "swift-collections"),
                "bigmodel-bench",
            ],
            path: "Tests/EngineTests",
            swiftSettings: strictConcurrency
        ),
        // The probes and the OS layer: /proc readers, jemalloc, the sampler, floors, child processes, signals.
        .testTarget(
            name: "ProbesTests",
            dependencies: ["TestSupport", "OSLayer", "Probes", "ResultsFormat", "CJemalloc"],
            path: "Tests/ProbesTests",
            swiftSettings: strictConcurrency
        ),
        // The runner: scenarios, claims and judging, the child protocol, subjects, ranks.
        .testTarget(
            name: "HarnessTests",
            dependencies: [
                "TestSupport", "OSLayer", "TensorEngine", "Checkpoint", "Models", "Placement", "Loading", "Probes",
                "ResultsFormat", "Harness", "Reports", "StrictJSON", "bigmodel-bench",
            ],
            path: "Tests/HarnessTests",
            swiftSettings: strictConcurrency
        ),
        // Results files, reports, charts, exports and comparisons.
        .testTarget(
            name: "ReportsTests",
            dependencies: [
                "TestSupport", "Probes", "ResultsFormat", "Harness", "Reports", "StrictJSON", "TensorEngine",
                "bigmodel-bench",
            ],
            path: "Tests/ReportsTests",
            swiftSettings: strictConcurrency
        ),
        // The tool end to end: commands, exit statuses, faults, full disks, hostile inputs, the README's claims.
        .testTarget(
            name: "CLITests",
            dependencies: [
                "TestSupport", "OSLayer", "TensorEngine", "Checkpoint", "Models", "Placement", "Harness", "Reports",
                "ResultsFormat", "StrictJSON", .product(name: "OrderedCollections", package: "swift-collections"),
                "bigmodel-bench",
            ],
            path: "Tests/CLITests",
            swiftSettings: strictConcurrency
        ),
    ],
    swiftLanguageModes: [.v6]
)
