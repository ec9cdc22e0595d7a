// swift-tools-version: 6.1
//
// Courier: a gRPC-compatible RPC framework for Swift server apps.
//
// Products first, then dependencies, shared settings and targets (each test target right after its library).

import PackageDescription

let products: [Product] = [
    .library(name: "Courier", targets: ["Courier"]),
    .library(name: "CourierInMemory", targets: ["CourierInMemory"]),
    .library(name: "CourierProtobuf", targets: ["CourierProtobuf"]),
    .library(name: "CourierHealth", targets: ["CourierHealth"]),
    .library(name: "CourierReflection", targets: ["CourierReflection"]),
    .library(name: "CourierHTTP2", targets: ["CourierHTTP2"]),
    // Ecosystem integrations, one module each: gRFC A66 metrics, OpenTelemetry-style tracing, service lifecycle.
    .library(name: "CourierMetrics", targets: ["CourierMetrics"]),
    .library(name: "CourierTracing", targets: ["CourierTracing"]),
    .library(name: "CourierServiceLifecycle", targets: ["CourierServiceLifecycle"]),
    // grpc.testing messages and services (interop and benchmarks), for tools outside this package.
    .library(name: "GRPCTestingProtos", targets: ["GRPCTestingProtos"]),
    .library(name: "CourierCodeGen", targets: ["CourierCodeGen"]),
    .executable(name: "protoc-gen-courier", targets: ["protoc-gen-courier"]),
    // .proto → Swift in every build (messages and services), configured by courier-proto-generator-config.json.
    .plugin(name: "CourierProtobufGenerator", targets: ["CourierProtobufGenerator"]),
    // The same output written into the source tree, for projects that commit generated code.
    .plugin(name: "generate-courier-code-from-protos", targets: ["generate-courier-code-from-protos"]),
]

var dependencies: [Package.Dependency] = [
    .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
    .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.7.2"),
    .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
]

// `swift package generate-documentation` needs swift-docc-plugin; only documentation builds resolve it
// (`COURIER_DOCS=1`, as `./dev/docs.sh` sets), so Courier's users never do.
if Context.environment["COURIER_DOCS"] != nil {
    dependencies.append(.package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.4.0"))
}

let defaultSwiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("NonisolatedNonsendingByDefault"),
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
        dependencies: [
            "Courier", "CourierInMemory", "CourierHTTP2", .product(name: "InMemoryLogging", package: "swift-log"),
        ],
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

    // The HTTP/2 transport, and the C libraries it alone touches.
    // Linux headers Swift's Glibc module leaves out (epoll, eventfd, TCP options) and prefixed constants.
    .systemLibrary(name: "CCourierLinux"),
    .systemLibrary(name: "CURing", pkgConfig: "liburing", providers: [.apt(["liburing-dev"])]),
    .systemLibrary(name: "CNGHTTP2", pkgConfig: "libnghttp2", providers: [.apt(["libnghttp2-dev"])]),
    .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
    .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
    .target(
        name: "CourierHTTP2",
        dependencies: [
            "Courier", "CCourierLinux", "CURing", "CNGHTTP2", "CZlib", "COpenSSL",
            .product(name: "Logging", package: "swift-log"),
        ],
        swiftSettings: defaultSwiftSettings
    ),
    // Helpers for the tests that run real processes (not a product).
    .target(
        name: "CourierTestSupport",
        dependencies: ["Courier"],
        path: "Tests/CourierTestSupport",
        swiftSettings: defaultSwiftSettings
    ),
    .testTarget(
        name: "CourierHTTP2Tests",
        dependencies: ["Courier", "CourierHTTP2", "CourierTestSupport"],
        exclude: ["Peers"],
        swiftSettings: defaultSwiftSettings
    ),

    // gRFC A66 metrics through swift-metrics: interceptors and the HTTP/2 transports' connection gauges.
    .target(
        name: "CourierMetrics",
        dependencies: ["Courier", .product(name: "CoreMetrics", package: "swift-metrics")],
        swiftSettings: defaultSwiftSettings
    ),
    .testTarget(
        name: "CourierMetricsTests",
        dependencies: [
            "Courier", "CourierMetrics", "CourierInMemory", "CourierHTTP2",
            .product(name: "CoreMetrics", package: "swift-metrics"),
            .product(name: "MetricsTestKit", package: "swift-metrics"),
        ],
        swiftSettings: defaultSwiftSettings
    ),

    // Spans per OpenTelemetry's RPC conventions through swift-distributed-tracing; context in metadata.
    .target(
        name: "CourierTracing",
        dependencies: ["Courier", .product(name: "Tracing", package: "swift-distributed-tracing")],
        swiftSettings: defaultSwiftSettings
    ),
    .testTarget(
        name: "CourierTracingTests",
        dependencies: [
            "Courier", "CourierTracing", "CourierInMemory",
            .product(name: "Tracing", package: "swift-distributed-tracing"),
            .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
        ],
        swiftSettings: defaultSwiftSettings
    ),

    // CourierServer and CourierClient as swift-service-lifecycle Services.
    .target(
        name: "CourierServiceLifecycle",
        dependencies: ["Courier", .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")],
        swiftSettings: defaultSwiftSettings
    ),
    .testTarget(
        name: "CourierServiceLifecycleTests",
        dependencies: [
            "Courier", "CourierServiceLifecycle", "CourierInMemory",
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
        ],
        swiftSettings: defaultSwiftSettings
    ),

    // The protobuf codec, rich error details (google.rpc.Status).
    .target(
        name: "CourierProtobuf",
        dependencies: ["Courier", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
        swiftSettings: defaultSwiftSettings
    ),
    .testTarget(
        name: "CourierProtobufTests",
        dependencies: [
            "Courier", "CourierInMemory", "CourierHTTP2", "CourierProtobuf", "CourierHealth", "CourierTestSupport",
            "GreeterService", .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ],
        exclude: ["Peers"],
        swiftSettings: defaultSwiftSettings
    ),

    // The code generator: a library, and the protoc plugin over it.
    .target(
        name: "CourierCodeGen",
        dependencies: [
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            .product(name: "SwiftProtobufPluginLibrary", package: "swift-protobuf"),
        ],
        swiftSettings: defaultSwiftSettings
    ),
    .executableTarget(
        name: "protoc-gen-courier",
        dependencies: ["CourierCodeGen", .product(name: "SwiftProtobufPluginLibrary", package: "swift-protobuf")],
        swiftSettings: defaultSwiftSettings
    ),
    // The build plugin and the command plugin, sharing Plugins/PluginsShared (symlinked into each).
    .plugin(
        name: "CourierProtobufGenerator",
        capability: .buildTool(),
        dependencies: ["protoc-gen-courier", .product(name: "protoc-gen-swift", package: "swift-protobuf")]
    ),
    .plugin(
        name: "generate-courier-code-from-protos",
        capability: .command(
            intent: .custom(
                verb: "generate-courier-code-from-protos",
                description:
                    "Generate messages and Courier services from the .proto files of a target into its sources."
            ),
            permissions: [.writeToPackageDirectory(reason: "To write the generated Swift files into the target.")]
        ),
        dependencies: ["protoc-gen-courier", .product(name: "protoc-gen-swift", package: "swift-protobuf")],
        path: "Plugins/CourierProtobufGeneratorCommand"
    ),
    // Every ```swift and ```proto block of the DocC articles and READMEs quotes a file that CI compiles.
    .testTarget(
        name: "DocumentationTests",
        swiftSettings: defaultSwiftSettings
    ),
    // The plugins' shared code (configuration, protoc lookup, names), through a symlink to Plugins/PluginsShared.
    .testTarget(
        name: "CourierGeneratorPluginTests",
        swiftSettings: defaultSwiftSettings
    ),
    .testTarget(
        name: "CourierCodeGenTests",
        dependencies: [
            "CourierCodeGen", "protoc-gen-courier",
            .product(name: "SwiftProtobufPluginLibrary", package: "swift-protobuf"),
        ],
        exclude: ["Protos", "Descriptors", "Golden"],
        swiftSettings: defaultSwiftSettings
    ),
    // Compiles the generator's golden output (every naming edge case) and calls it.
    .testTarget(
        name: "CodeGenGoldenCompileTests",
        dependencies: [
            "Courier", "CourierInMemory", "CourierProtobuf", .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ],
        swiftSettings: defaultSwiftSettings
    ),

    // grpc.health.v1.Health, ready to add to any server.
    .target(
        name: "CourierHealth",
        dependencies: ["Courier", "CourierProtobuf", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
        swiftSettings: defaultSwiftSettings
    ),

    // grpc.reflection.v1 and v1alpha, from the descriptors protoc-gen-courier embeds or descriptor sets.
    .target(
        name: "CourierReflection",
        dependencies: ["Courier", "CourierProtobuf", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
        swiftSettings: defaultSwiftSettings
    ),
    .testTarget(
        name: "CourierReflectionTests",
        dependencies: [
            "Courier", "CourierInMemory", "CourierHTTP2", "CourierHealth", "CourierReflection", "CourierTestSupport",
            "GreeterService", .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ],
        exclude: ["Peers"],
        swiftSettings: defaultSwiftSettings
    ),

    // Examples.
    .target(
        name: "GreeterService",
        dependencies: ["Courier", "CourierProtobuf", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
        path: "Examples/Greeter/Sources/GreeterService",
        swiftSettings: defaultSwiftSettings
    ),
    .executableTarget(
        name: "greeter",
        dependencies: [
            "Courier", "CourierHTTP2", "CourierInMemory", "GreeterService",
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ],
        path: "Examples/Greeter/Sources/greeter",
        swiftSettings: defaultSwiftSettings
    ),
    // The ping service: the Knative example.
    .target(
        name: "PingService",
        dependencies: [
            "Courier", "CourierProtobuf", .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ],
        path: "Examples/Ping/Sources/PingService",
        swiftSettings: defaultSwiftSettings
    ),
    .executableTarget(
        name: "ping-server",
        dependencies: [
            "Courier", "CourierHTTP2", "CourierHealth", "CourierReflection", "CourierServiceLifecycle", "PingService",
            "ConnectionStats",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "UnixSignals", package: "swift-service-lifecycle"),
        ],
        path: "Examples/Ping/Sources/ping-server",
        swiftSettings: defaultSwiftSettings
    ),
    .executableTarget(
        name: "ping-client",
        dependencies: [
            "Courier", "CourierHTTP2", "PingService", .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ],
        path: "Examples/Ping/Sources/ping-client",
        swiftSettings: defaultSwiftSettings
    ),
    .testTarget(
        name: "PingTests",
        dependencies: [
            "Courier", "CourierHTTP2", "CourierHealth", "PingService", "CourierTestSupport",
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ],
        exclude: ["Peers"],
        swiftSettings: defaultSwiftSettings
    ),
    // The key-value store: state in an actor on the event loop (Examples/KeyValue).
    .target(
        name: "KeyValueService",
        dependencies: [
            "Courier", "CourierProtobuf", .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ],
        path: "Examples/KeyValue/Sources/KeyValueService",
        swiftSettings: defaultSwiftSettings
    ),
    .executableTarget(
        name: "kv-server",
        dependencies: ["Courier", "CourierHTTP2", "KeyValueService"],
        path: "Examples/KeyValue/Sources/kv-server",
        swiftSettings: defaultSwiftSettings
    ),
    .executableTarget(
        name: "kv-client",
        dependencies: [
            "Courier", "CourierHTTP2", "KeyValueService", .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ],
        path: "Examples/KeyValue/Sources/kv-client",
        swiftSettings: defaultSwiftSettings
    ),
    .testTarget(
        name: "KeyValueTests",
        dependencies: [
            "Courier", "CourierHTTP2", "CourierInMemory", "KeyValueService",
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ],
        swiftSettings: defaultSwiftSettings
    ),
    // The official gRPC test protos (grpc.testing), for interop and benchmarks.
    .target(
        name: "GRPCTestingProtos",
        dependencies: ["Courier", "CourierProtobuf", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
        path: "Examples/Interop/Sources/GRPCTestingProtos",
        swiftSettings: defaultSwiftSettings
    ),
    .target(
        name: "InteropTestService",
        dependencies: [
            "Courier", "CourierProtobuf", "GRPCTestingProtos",
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ],
        path: "Examples/Interop/Sources/InteropTestService",
        swiftSettings: defaultSwiftSettings
    ),
    // The example servers' connection and stream counts, published to a file for dev/soak.sh.
    .target(
        name: "ConnectionStats",
        dependencies: ["Courier"],
        path: "Examples/Shared/Sources/ConnectionStats",
        swiftSettings: defaultSwiftSettings
    ),
    .executableTarget(
        name: "interop-server",
        dependencies: [
            "Courier", "CourierHTTP2", "CourierHealth", "CourierReflection", "GRPCTestingProtos", "InteropTestService",
            "ConnectionStats",
        ],
        path: "Examples/Interop/Sources/interop-server",
        swiftSettings: defaultSwiftSettings
    ),
    .executableTarget(
        name: "interop-client",
        dependencies: ["Courier", "CourierHTTP2", "InteropTestService"],
        path: "Examples/Interop/Sources/interop-client",
        swiftSettings: defaultSwiftSettings
    ),
    // Mixed load and network checks against interop-server, for dev/soak.sh and dev/test-netem.sh.
    .executableTarget(
        name: "interop-soak",
        dependencies: [
            "Courier", "CourierHTTP2", "CourierProtobuf", "GRPCTestingProtos", "PingService",
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ],
        path: "Examples/Interop/Sources/interop-soak",
        swiftSettings: defaultSwiftSettings
    ),
    .testTarget(
        name: "InteropTests",
        dependencies: [
            "Courier", "CourierHTTP2", "GRPCTestingProtos", "InteropTestService", "CourierTestSupport",
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ],
        swiftSettings: defaultSwiftSettings
    ),
    .executableTarget(
        name: "in-memory-greeter",
        dependencies: ["Courier", "CourierInMemory"],
        path: "Examples/InMemoryGreeter",
        exclude: ["README.md"],
        swiftSettings: defaultSwiftSettings
    ),

    // Benchmarks (release builds, run by hand).
    .executableTarget(
        name: "bench-server",
        dependencies: ["Courier", "CourierHTTP2", "CourierMetrics", "CourierTracing", "InteropTestService"],
        path: "Benchmarks/BenchServer",
        swiftSettings: defaultSwiftSettings
    ),
    .executableTarget(
        name: "lb-benchmark",
        dependencies: ["Courier", "CourierHTTP2"],
        path: "Benchmarks/LoadBalancing",
        swiftSettings: defaultSwiftSettings
    ),
    .executableTarget(
        name: "in-memory-benchmark",
        dependencies: ["Courier", "CourierInMemory"],
        path: "Benchmarks/InMemoryBenchmark",
        swiftSettings: defaultSwiftSettings
    ),
    // Micro-benchmarks with allocation counts (codec, framing, round trips); CAllocCounter interposes malloc
    // for this executable only.
    .target(name: "CAllocCounter", path: "Benchmarks/Micro/Sources/CAllocCounter"),
    .executableTarget(
        name: "micro-benchmark",
        dependencies: [
            "CAllocCounter", "Courier", "CourierHTTP2", "CourierInMemory", "CourierProtobuf", "GRPCTestingProtos",
            "InteropTestService", .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ],
        path: "Benchmarks/Micro/Sources/MicroBenchmark",
        swiftSettings: defaultSwiftSettings
    ),
]

// libFuzzer targets (Tests/Fuzz/), seen only when `COURIER_FUZZ=1`: `./dev/fuzz.sh` sets it and builds them with
// `--sanitize=fuzzer --sanitize=address` into `.build-fuzz`, so normal builds and Courier's users never do.
var fuzzTargets: [Target] = []
if Context.environment["COURIER_FUZZ"] != nil {
    fuzzTargets.append(
        .target(
            name: "CourierFuzzSupport",
            dependencies: ["Courier", "CourierHTTP2"],
            path: "Tests/Fuzz/Support",
            swiftSettings: defaultSwiftSettings
        )
    )
    let http2Targets = [
        "fuzz-deframer", "fuzz-deframer-compressed", "fuzz-grpc-timeout", "fuzz-grpc-message", "fuzz-metadata",
        "fuzz-request-head", "fuzz-response-head", "fuzz-server-connection", "fuzz-client-connection", "fuzz-tls",
    ]
    for name in http2Targets {
        fuzzTargets.append(
            .executableTarget(
                name: name,
                dependencies: ["Courier", "CourierHTTP2", "CourierFuzzSupport"],
                path: "Tests/Fuzz/Targets/\(name)",
                swiftSettings: defaultSwiftSettings
            )
        )
    }
    fuzzTargets.append(
        .executableTarget(
            name: "fuzz-protobuf",
            dependencies: [
                "Courier", "CourierProtobuf", "GRPCTestingProtos",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            path: "Tests/Fuzz/Targets/fuzz-protobuf",
            swiftSettings: defaultSwiftSettings
        )
    )
}

let package = Package(
    name: "Courier",
    platforms: [.macOS(.v15)],
    products: products,
    dependencies: dependencies,
    targets: targets + fuzzTargets
)
