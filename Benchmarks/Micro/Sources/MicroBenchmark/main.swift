// Micro-benchmarks with allocation counts: the protobuf codec, gRPC framing, a unary round trip through
// the whole core on the in-memory transport, and a unary round trip over HTTP/2 on loopback (client and
// server in this process). Every line reports time and heap allocations per operation; allocations
// are counted by a malloc this executable puts in front of glibc's (CAllocCounter), so they include
// Swift's runtime, the concurrency runtime and nghttp2.
//
//   swift build -c release --product micro-benchmark
//   taskset -c 0 .build/release/micro-benchmark [--iterations N] [--json FILE] [--only SUBSTRING]

import CAllocCounter
import Courier
import CourierHTTP2
import CourierInMemory
import CourierProtobuf
import Foundation
import GRPCTestingProtos
import InteropTestService
import SwiftProtobuf

struct Result: Codable {
    var name: String
    var nanosecondsPerOperation: Double
    var allocationsPerOperation: Double
    /// Allocations of 64 KiB or more per operation.
    var largeAllocationsPerOperation: Double
    var operations: Int
}

var iterations = 200_000
var jsonPath: String?
/// Runs only the measurements whose name contains this (`--only "HTTP/2"`), e.g. for instruction counts
/// under callgrind, where two runs with different iteration counts give the cost of one operation.
nonisolated(unsafe) var only: String?  // set once, from the arguments, before any measurement runs
var arguments = CommandLine.arguments.dropFirst().makeIterator()
while let argument = arguments.next() {
    switch argument {
    case "--iterations": iterations = arguments.next().flatMap(Int.init) ?? iterations
    case "--json": jsonPath = arguments.next()
    case "--only": only = arguments.next()
    default:
        print("usage: micro-benchmark [--iterations N] [--json FILE] [--only SUBSTRING]")
        exit(2)
    }
}

nonisolated(unsafe) var results: [Result] = []  // appended in order, one measurement at a time
let clock = ContinuousClock()

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

func record(_ name: String, operations: Int, elapsed: Duration, allocations: (all: UInt64, large: UInt64)) {
    let result = Result(
        name: name,
        nanosecondsPerOperation: seconds(elapsed) / Double(operations) * 1e9,
        allocationsPerOperation: Double(allocations.all) / Double(operations),
        largeAllocationsPerOperation: Double(allocations.large) / Double(operations),
        operations: operations
    )
    results.append(result)
    let padded = name.padding(toLength: 58, withPad: " ", startingAt: 0)
    print(
        "\(padded) \(String(format: "%9.0f", result.nanosecondsPerOperation)) ns/op  "
            + "\(String(format: "%6.2f", result.allocationsPerOperation)) allocs/op"
            + (allocations.large > 0
                ? "  \(String(format: "%5.2f", result.largeAllocationsPerOperation)) ≥ 64 KiB" : "")
    )
}

/// Every allocation so far, and those of 64 KiB or more.
func allocationCounts() -> (all: UInt64, large: UInt64) {
    (courier_allocation_count(), courier_large_allocation_count())
}

func - (lhs: (all: UInt64, large: UInt64), rhs: (all: UInt64, large: UInt64)) -> (all: UInt64, large: UInt64) {
    (lhs.all - rhs.all, lhs.large - rhs.large)
}

/// Runs `body` `count` times after a warm-up of a tenth as many; records time and allocations.
func measure(_ name: String, count: Int, _ body: () throws -> Void) rethrows {
    if let only, !name.contains(only) { return }
    for _ in 0..<max(1, count / 10) { try body() }
    let allocationsBefore = allocationCounts()
    let start = clock.now
    for _ in 0..<count { try body() }
    let elapsed = clock.now - start
    record(name, operations: count, elapsed: elapsed, allocations: allocationCounts() - allocationsBefore)
}

func measureAsync(_ name: String, count: Int, _ body: () async throws -> Void) async rethrows {
    if let only, !name.contains(only) { return }
    for _ in 0..<max(1, count / 10) { try await body() }
    let allocationsBefore = allocationCounts()
    let start = clock.now
    for _ in 0..<count { try await body() }
    let elapsed = clock.now - start
    record(name, operations: count, elapsed: elapsed, allocations: allocationCounts() - allocationsBefore)
}

// MARK: Codec and framing

let request = Grpc_Testing_SimpleRequest.with {
    $0.responseSize = 1024
    $0.payload = .with { $0.body = Data(count: 1024) }
}
let largeRequest = Grpc_Testing_SimpleRequest.with {
    $0.responseSize = 1 << 20
    $0.payload = .with { $0.body = Data(count: 1 << 20) }
}
let response = Grpc_Testing_SimpleResponse.with { $0.payload = .with { $0.body = Data(count: 1024) } }
let requestSerializer = ProtobufSerializer<Grpc_Testing_SimpleRequest>()
let requestDeserializer = ProtobufDeserializer<Grpc_Testing_SimpleRequest>()
let responseSerializer = ProtobufSerializer<Grpc_Testing_SimpleResponse>()
let encodedRequest = try requestSerializer.serialize(request)

try measure("codec: encode SimpleResponse (1 KiB) into a MessageBuffer", count: iterations) {
    _ = try responseSerializer.serialize(response)
}
try measure("codec: decode SimpleRequest (1 KiB) from a MessageBuffer", count: iterations) {
    _ = try requestDeserializer.deserialize(encodedRequest)
}
// The send path: the serializer writes the message once; the framer adds a prefix without copying it.
try measure("codec + framing: encode SimpleResponse and frame it", count: iterations) {
    _ = GRPCMessageFramer.frame(try responseSerializer.serialize(response), compressed: false)
}
let encodedResponse = try responseSerializer.serialize(response)
let framed = GRPCMessageFramer.frame(encodedResponse, compressed: false)
let framedBytes = framed.bytes
try measure("framing: deframe one 1 KiB message", count: iterations) {
    var deframer = GRPCMessageDeframer(maxMessageBytes: 4 << 20)
    try framedBytes.withUnsafeBytes { bytes in
        try deframer.process(bytes) { _ in }
    }
}

// MARK: Round trips

// Off the main actor, as server code runs: awaits from the main actor add thread hops.
nonisolated func roundTrips() async throws {
    let inMemory = InMemoryTransport()
    try await withCourierServer(transport: inMemory.server, services: [BenchmarkService()]) { _ in
        try await withCourierClient(transport: inMemory.client) { client in
            let bench = Grpc_Testing_BenchmarkService.Client(wrapping: client)
            try await measureAsync("in-memory: unary round trip, 1 KiB each way", count: iterations / 4) {
                _ = try await bench.unaryCall(request)
            }
            try await measureAsync("in-memory: unary round trip, 1 MiB each way", count: max(20, iterations / 400)) {
                _ = try await bench.unaryCall(largeRequest)
            }
        }
    }

    var serverConfiguration = HTTP2ServerTransport.Configuration()
    serverConfiguration.loops = 1
    let serverTransport = HTTP2ServerTransport(
        address: .ipv4(host: "127.0.0.1", port: 0),
        configuration: serverConfiguration
    )
    try await withCourierServer(transport: serverTransport, services: [BenchmarkService()]) { _ in
        let address = try await serverTransport.listeningAddress()
        let clientTransport = try HTTP2ClientTransport(target: "127.0.0.1:\(address.port ?? 0)")
        try await withCourierClient(transport: clientTransport) { client in
            let bench = Grpc_Testing_BenchmarkService.Client(wrapping: client)
            try await measureAsync("HTTP/2 loopback: unary round trip, client + server", count: iterations / 20) {
                _ = try await bench.unaryCall(request)
            }
            // Large messages: what matters is that their buffers are reused (LargeBufferPool), not
            // freed and faulted in again; only the payloads themselves (swift-protobuf's `Data` on
            // each side, the service's response body) are new each time.
            try await measureAsync(
                "HTTP/2 loopback: unary round trip, 1 MiB each way",
                count: max(20, iterations / 400)
            ) {
                _ = try await bench.unaryCall(largeRequest)
            }
        }
    }
}
try await roundTrips()

if let jsonPath {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try encoder.encode(results).write(to: URL(fileURLWithPath: jsonPath))
}
