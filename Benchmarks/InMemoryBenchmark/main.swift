// In-memory round trips through the whole core (client executor, interceptor chain, router, server
// executor, codec), with the transport reduced to bounded in-process channels.
//
//   swift run -c release in-memory-benchmark [seconds-per-scenario]
//
// Scenarios: unary with 1 and 64 calls in flight; bidirectional ping-pong (one message each way per
// round trip) and one-way streaming (client to server) on one stream.

import Courier
import CourierInMemory

struct BytesCodec: MessageCodec {
    func serialize(_ message: [UInt8]) throws -> MessageBuffer { MessageBuffer(message) }
    func deserialize(_ buffer: MessageBuffer) throws -> [UInt8] { Array(buffer) }
}

let service = ServiceDescriptor(package: "bench", service: "Bench")
let unaryMethod = MethodDescriptor(service: service, method: "Unary")
let pingPongMethod = MethodDescriptor(service: service, method: "PingPong")
let sinkMethod = MethodDescriptor(service: service, method: "Sink")

struct BenchService: RegistrableRPCService {
    func registerMethods(with router: inout RPCRouter) {
        let codec = BytesCodec()
        router.registerUnary(forMethod: unaryMethod, deserializer: codec, serializer: codec) { request, _ in
            ServerResponse(message: request.message)
        }
        router.registerBidirectionalStreaming(forMethod: pingPongMethod, deserializer: codec, serializer: codec) {
            request,
            _ in
            StreamingServerResponse { writer in
                for try await message in request.messages { try await writer.write(message) }
                return [:]
            }
        }
        router.registerClientStreaming(forMethod: sinkMethod, deserializer: codec, serializer: codec) { request, _ in
            var count = 0
            for try await _ in request.messages { count += 1 }
            return ServerResponse(message: Array("\(count)".utf8))
        }
    }
}

let seconds = CommandLine.arguments.dropFirst().first.flatMap(Double.init) ?? 3
let duration = Duration.milliseconds(Int(seconds * 1000))
let codec = BytesCodec()
let payload = [UInt8](repeating: 7, count: 64)
let clock = ContinuousClock()

func report(_ name: String, count: Int, elapsed: Duration) {
    let secs = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    let rate = Double(count) / secs
    let perOp = secs / Double(count) * 1e9
    let padded = name + String(repeating: " ", count: max(0, 32 - name.count))
    print("\(padded) \(Int(rate)) /s   (\(Int(perOp)) ns each, \(count) in \((secs * 100).rounded() / 100) s)")
}

// Run off the main actor, as server code does: every await from the main actor would add two
// thread hops and measure those instead of Courier.
nonisolated func runBenchmarks() async throws {
    let transport = InMemoryTransport()
    try await withCourierServer(transport: transport.server, services: [BenchService()]) { _ in
        try await withCourierClient(transport: transport.client) { client in
            // Warm up.
            for _ in 0..<10_000 {
                _ = try await client.unary(
                    request: ClientRequest(message: payload),
                    descriptor: unaryMethod,
                    serializer: codec,
                    deserializer: codec
                )
            }

            // Unary, one in flight.
            do {
                let start = clock.now
                var count = 0
                while clock.now - start < duration {
                    for _ in 0..<1000 {
                        _ = try await client.unary(
                            request: ClientRequest(message: payload),
                            descriptor: unaryMethod,
                            serializer: codec,
                            deserializer: codec
                        )
                    }
                    count += 1000
                }
                report("unary, 1 in flight", count: count, elapsed: clock.now - start)
            }

            // Unary, 64 in flight.
            do {
                let start = clock.now
                let counts = try await withThrowingTaskGroup(of: Int.self, returning: Int.self) { group in
                    for _ in 0..<64 {
                        group.addTask {
                            var count = 0
                            while clock.now - start < duration {
                                for _ in 0..<100 {
                                    _ = try await client.unary(
                                        request: ClientRequest(message: payload),
                                        descriptor: unaryMethod,
                                        serializer: codec,
                                        deserializer: codec
                                    )
                                }
                                count += 100
                            }
                            return count
                        }
                    }
                    var total = 0
                    for try await count in group { total += count }
                    return total
                }
                report("unary, 64 in flight", count: counts, elapsed: clock.now - start)
            }

            // Bidirectional ping-pong on one stream.
            do {
                let (pings, continuation) = AsyncStream<Void>.makeStream()
                let start = clock.now
                let count = try await client.bidirectionalStreaming(
                    request: StreamingClientRequest<[UInt8]> { writer in
                        for await _ in pings { try await writer.write(payload) }
                    },
                    descriptor: pingPongMethod,
                    serializer: codec,
                    deserializer: codec
                ) { response in
                    var count = 0
                    continuation.yield()
                    for try await _ in response.messages {
                        count += 1
                        if count % 1000 == 0, clock.now - start >= duration {
                            continuation.finish()
                        } else {
                            continuation.yield()
                        }
                    }
                    return count
                }
                report("bidi ping-pong, round trips", count: count, elapsed: clock.now - start)
            }

            // Client-to-server streaming on one stream.
            do {
                let start = clock.now
                let sent = try await client.clientStreaming(
                    request: StreamingClientRequest<[UInt8]> { writer in
                        var count = 0
                        while clock.now - start < duration {
                            for _ in 0..<1000 { try await writer.write(payload) }
                            count += 1000
                        }
                    },
                    descriptor: sinkMethod,
                    serializer: codec,
                    deserializer: codec
                ) { response in Int(String(decoding: try response.message, as: UTF8.self)) ?? 0 }
                report("stream, messages one way", count: sent, elapsed: clock.now - start)
            }
        }
    }
}

try await runBenchmarks()
