// swift-tools-version:6.0
//
// bigmodel-bench: measures what it costs, in memory, to load a big model each way.
//
// Module graph (dependencies point one way, toward TensorEngine):
//
//   bigmodel-bench (CLI) ─► Reports ─► Harness ─► Loading ─► Models ─► Checkpoint ─► TensorEngine ─► CJemalloc
//                                                    ├──────► Placement (device_map: budgets, module sizes, maps) ─► Models
//                                                    └──────► Probes (the only OS-specific module: /proc, cgroups,
//                                                                      madvise/fadvise, rlimits, jemalloc statistics)
//   StrictJSON is a leaf utility (strict parser + byte-exact writers) used from Checkpoint upward.
import PackageDescription

let strictConcurrency: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "bigmodel-bench",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "bigmodel-bench", targets: ["bigmodel-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
    ],
    targets: [
        // jemalloc, linked into every binary that uses TensorEngine so it serves all of malloc.
        .systemLibrary(
            name: "CJemalloc",
            path: "Sources/CJemalloc",
            providers: [.apt(["libjemalloc-dev"])]
        ),
        .target(
            name: "StrictJSON",
            dependencies: [.product(name: "Collections", package: "swift-collections")],
            swiftSettings: strictConcurrency
        ),
        .target(
            name: "TensorEngine",
            dependencies: [
                "CJemalloc",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: strictConcurrency
        ),
        .target(
            name: "Probes",
            dependencies: [
                "CJemalloc",
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: strictConcurrency
        ),
        .target(
            name: "Checkpoint",
            dependencies: [
                "TensorEngine", "StrictJSON",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Collections", package: "swift-collections"),
            ],
            swiftSettings: strictConcurrency
        ),
        .target(
            name: "Models",
            dependencies: ["TensorEngine", "Checkpoint", "StrictJSON"],
            swiftSettings: strictConcurrency
        ),
        // Device placement (accelerate's device_map rules): budgets, module sizes, automatic and user maps.
        .target(
            name: "Placement",
            dependencies: ["TensorEngine", "Models", "StrictJSON", .product(name: "Collections", package: "swift-collections")],
            swiftSettings: strictConcurrency
        ),
        .target(
            name: "Loading",
            dependencies: ["TensorEngine", "Checkpoint", "Models", "Placement", "Probes", "StrictJSON"],
            swiftSettings: strictConcurrency
        ),
        .target(
            name: "Harness",
            dependencies: ["TensorEngine", "Checkpoint", "Models", "Loading", "Placement", "Probes", "StrictJSON"],
            swiftSettings: strictConcurrency
        ),
        .target(
            name: "Reports",
            dependencies: ["TensorEngine", "Harness", "StrictJSON"],
            swiftSettings: strictConcurrency
        ),
        .executableTarget(
            name: "bigmodel-bench",
            dependencies: [
                "TensorEngine", "Checkpoint", "Models", "Placement", "Loading", "Probes", "Harness", "Reports", "StrictJSON",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strictConcurrency
        ),
        .testTarget(
            name: "BigModelBenchTests",
            dependencies: [
                "TensorEngine", "Checkpoint", "Models", "Placement", "Loading", "Probes", "Harness", "Reports", "StrictJSON",
                "bigmodel-bench",
            ],
            path: "Tests/BigModelBenchTests",
            swiftSettings: strictConcurrency
        ),
    ],
    swiftLanguageModes: [.v6]
)
