// swift-tools-version:6.0
//
// bigmodel-bench: measures what it costs, in memory, to load a big model each way.
//
// Module graph (dependencies point one way, toward TensorEngine and, below it, Probes):
//
//   bigmodel-bench (CLI) ─► Reports ─► Harness ─► Loading ─► Models ─► Checkpoint ─► TensorEngine ─► Probes, CJemalloc, CHalfKernels
//                                        │          ├──────► Placement (device_map: budgets, module sizes, maps) ─► Models
//                                        └──────────┴──────► Probes (/proc, cgroups, page cache, child processes, pipes,
//                                                                   signals, jemalloc statistics, the terminal) ─► CJemalloc
//   StrictJSON is a leaf utility (strict parser + byte-exact writers) used from Checkpoint upward.
//
// Which targets touch the operating system, and why (each target below lists what it imports):
//   - Probes: the measuring and process layer — /proc, /sys (THP, free page reporting) and cgroup files, madvise/fadvise, fork/exec with a
//     parent-death signal, pipes and poll, signal handlers (fatal signals; SIGBUS on shrunk file windows),
//     mallctl, isatty and TIOCGWINSZ. Everything the runner and the CLI do to the OS goes through it, each
//     wrapper naming the call it wraps.
//   - TensorEngine: TensorStorage maps checkpoint windows with mmap/munmap (a tensor's bytes are the
//     mapping) and registers each with Probes' FileWindowGuard, whose SIGBUS handler turns a read past the
//     end of a file that shrank under its mapping into zeros and an error instead of a crash;
//     ConversionKernel takes memcpy from Glibc, Conversion the processor count from Foundation.
//   - Checkpoint: SafetensorsFile reads tensors with pread into their destination and AtomicFile writes
//     with open/fsync/rename — the byte-exact I/O of the format, which is the module's job.
//   - Models: NormalTable takes log() from Glibc (the C math library, no system call).
//   Harness, Loading, Placement and Reports use Foundation for files and dates only; no target but Probes
//   and those three lines calls the kernel directly.
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
        // prctl and pipe2, which Glibc's module does not export to Swift (Probes only).
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
                "CJemalloc", .product(name: "OrderedCollections", package: "swift-collections"), "bigmodel-bench",
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
