// swift-tools-version: 6.1
//
// Courier: a gRPC-compatible RPC framework for Swift server apps.
//
// Products first, then dependencies, shared settings and targets (each test target right after its library).

import PackageDescription

let products: [Product] = [
    .library(name: "Courier", targets: ["Courier"]),
    .library(name: "CourierInMemory", targets: ["CourierInMemory"]),
]

let dependencies: [Package.Dependency] = [
    .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
]

let defaultSwiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let targets: [Target] = [
    // The API and semantics: no C, no I/O.
    .target(
        name: "Courier",
        dependencies: [.product(name: "Logging", package: "swift-log")],
        swiftSettings: defaultSwiftSettings
    ),
    .testTarget(
        name: "CourierTests",
        dependencies: ["Courier", "CourierInMemory"],
        swiftSettings: defaultSwiftSettings
    ),

    // An in-process transport pair for tests and embedding libraries.
    .target(
        name: "CourierInMemory",
        dependencies: ["Courier"],
        swiftSettings: defaultSwiftSettings
    ),
    .testTarget(
        name: "CourierInMemoryTests",
        dependencies: ["Courier", "CourierInMemory"],
        swiftSettings: defaultSwiftSettings
    ),

    // Examples.
    .executableTarget(
        name: "in-memory-greeter",
        dependencies: ["Courier", "CourierInMemory"],
        path: "Examples/InMemoryGreeter",
        swiftSettings: defaultSwiftSettings
    ),

    // Benchmarks (release builds, run by hand).
    .executableTarget(
        name: "in-memory-benchmark",
        dependencies: ["Courier", "CourierInMemory"],
        path: "Benchmarks/InMemoryBenchmark",
        swiftSettings: defaultSwiftSettings
    ),
]

let package = Package(
    name: "Courier",
    platforms: [.macOS(.v15)],
    products: products,
    dependencies: dependencies,
    targets: targets
)
