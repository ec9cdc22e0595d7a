// swift-tools-version: 6.2
//
// observed-ping-server: the ping service exporting traces and metrics over OTLP/gRPC with swift-otel. A
// package of its own, so that Courier's own dependency list and build stay short; its build (swift-otel
// brings SwiftNIO and grpc-swift) takes long, so CI doesn't run it: ./dev/test-observability.sh does.
//
//   swift build -c release --package-path Examples/Observability

import PackageDescription

let package = Package(
    name: "CourierObservabilityExample",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Courier", path: "../.."),
        // Only the OTLP/gRPC exporter: the OTLP/HTTP one would bring async-http-client too.
        .package(url: "https://github.com/swift-otel/swift-otel", from: "1.6.0", traits: ["OTLPGRPC"]),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
    ],
    targets: [
        // The ping service itself, shared with Examples/Ping through a symbolic link.
        .target(
            name: "PingService",
            dependencies: [
                .product(name: "Courier", package: "Courier"),
                .product(name: "CourierProtobuf", package: "Courier"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6), .enableUpcomingFeature("InternalImportsByDefault")]
        ),
        .executableTarget(
            name: "observed-ping-server",
            dependencies: [
                "PingService",
                .product(name: "Courier", package: "Courier"),
                .product(name: "CourierHTTP2", package: "Courier"),
                .product(name: "CourierHealth", package: "Courier"),
                .product(name: "CourierMetrics", package: "Courier"),
                .product(name: "CourierTracing", package: "Courier"),
                .product(name: "CourierServiceLifecycle", package: "Courier"),
                .product(name: "OTel", package: "swift-otel"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ]
)
