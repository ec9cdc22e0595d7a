// swift-tools-version: 6.1
// bench-client: a gRPC load generator on Courier's client, in a package of its own so that the histogram
// library it uses never reaches Courier's users. Release builds only:
//
//   swift build -c release --package-path Benchmarks/BenchClient
import PackageDescription

let package = Package(
    name: "BenchClient",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Courier", path: "../.."),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
    ],
    targets: [
        .executableTarget(
            name: "bench-client",
            dependencies: [
                .product(name: "Courier", package: "Courier"),
                .product(name: "CourierHTTP2", package: "Courier"),
                .product(name: "GRPCTestingProtos", package: "Courier"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        )
    ]
)
