@_spi(CourierInternals) import Courier
import CourierHTTP2
import Foundation
import Synchronization
import Testing

/// Runs an HTTP/2 server with `services` on a free port and a client connected to it.
func withHTTP2<R: Sendable>(
    services: [any RegistrableRPCService] = [RawEchoService()],
    loops: Int = 1,
    serverConfiguration: HTTP2ServerTransport.Configuration? = nil,
    address: SocketAddress = .ipv4(host: "127.0.0.1", port: 0),
    _ body: (CourierClient) async throws -> R
) async throws -> R {
    var configuration = serverConfiguration ?? HTTP2ServerTransport.Configuration()
    configuration.loops = loops
    let server = HTTP2ServerTransport(address: address, configuration: configuration)
    return try await withCourierServer(transport: server, services: services) { _ in
        let bound = try await server.listeningAddress()
        let target: String
        switch bound {
        case .ipv4(let host, let port): target = "\(host):\(port)"
        case .ipv6(let host, let port): target = "ipv6:[\(host)]:\(port)"
        case .unix(let path): target = "unix:\(path)"
        case .unixAbstract(let name): target = "unix-abstract:\(name)"
        }
        return try await withCourierClient(transport: try HTTP2ClientTransport(target: target)) { client in
            try await body(client)
        }
    }
}

let codec = BytesCodec()
func method(_ name: String) -> MethodDescriptor { MethodDescriptor(fullyQualifiedService: "echo.Echo", method: name) }

/// `RawEchoService`'s unary `Get`: the server's answer to `message`.
func echoBytes(_ client: CourierClient, _ message: [UInt8]) async throws -> [UInt8] {
    try await client.unary(
        request: ClientRequest(message: message),
        descriptor: method("Get"),
        serializer: codec,
        deserializer: codec
    )
}

@Suite("Courier client and server over HTTP/2")
struct HTTP2EndToEndTests {
    @Test(
        "All four kinds, over TCP on IPv4 and IPv6 and over a Unix socket",
        arguments: [
            SocketAddress.ipv4(host: "127.0.0.1", port: 0), .ipv6(host: "::1", port: 0),
            .unix(path: "/tmp/courier-test-\(getpid()).sock"),
        ]
    )
    func fourKinds(address: SocketAddress) async throws {
        try await withHTTP2(address: address) { client in
            let reply = try await client.unary(
                request: ClientRequest(message: Array("hello".utf8)),
                descriptor: method("Get"),
                serializer: codec,
                deserializer: codec
            )
            #expect(reply == Array("hello".utf8))

            let words = try await client.serverStreaming(
                request: ClientRequest(message: Array("a b c".utf8)),
                descriptor: method("Expand"),
                serializer: codec,
                deserializer: codec
            ) { response in
                var words: [[UInt8]] = []
                for try await word in response.messages { words.append(word) }
                return words
            }
            #expect(words == [[97], [98], [99]])

            let joined = try await client.clientStreaming(
                request: StreamingClientRequest<[UInt8]> { writer in
                    try await writer.write(contentsOf: [[120], [121]])
                },
                descriptor: method("Collect"),
                serializer: codec,
                deserializer: codec
            ) { try $0.message }
            #expect(joined == Array("x y".utf8))

            let echoed = try await client.bidirectionalStreaming(
                request: StreamingClientRequest<[UInt8]> { writer in
                    for i in 0..<100 { try await writer.write([UInt8(i)]) }
                },
                descriptor: method("Update"),
                serializer: codec,
                deserializer: codec
            ) { response in
                var count = 0
                for try await _ in response.messages { count += 1 }
                return count
            }
            #expect(echoed == 100)
        }
    }

    @Test("Metadata, binary trailers, status with a special message, unknown method")
    func metadataAndStatus() async throws {
        try await withHTTP2 { client in
            var metadata: Metadata = ["x-echo-initial": "v"]
            metadata.addBinary([0xAB, 0x00, 0xFF], forKey: "x-echo-trailing-bin")
            let response = try await client.unary(
                request: ClientRequest(message: [1], metadata: metadata),
                descriptor: method("Get"),
                serializer: codec,
                deserializer: codec
            ) { $0 }
            #expect(response.metadata.firstString(forKey: "x-echo-initial") == "v")
            #expect(response.trailingMetadata[binaryValues: "x-echo-trailing-bin"] == [[0xAB, 0x00, 0xFF]])

            do {
                _ = try await client.unary(
                    request: ClientRequest(message: []),
                    descriptor: method("Fail"),
                    serializer: codec,
                    deserializer: codec
                )
                Issue.record("expected an error")
            } catch let error as RPCError {
                #expect(error.code == .invalidArgument)
                #expect(error.message == RawEchoService.specialMessage)
            }

            do {
                _ = try await client.unary(
                    request: ClientRequest(message: []),
                    descriptor: method("Nope"),
                    serializer: codec,
                    deserializer: codec
                )
                Issue.record("expected UNIMPLEMENTED")
            } catch let error as RPCError {
                #expect(error.code == .unimplemented)
            }
        }
    }

    @Test("Messages of 0 B, 1 MiB and 16 MiB (with a raised limit)")
    func messageSizes() async throws {
        let services: [any RegistrableRPCService] = [RawEchoService()]
        let transportServer = HTTP2ServerTransport(address: .ipv4(host: "127.0.0.1", port: 0))
        try await withCourierServer(
            transport: transportServer,
            services: services,
            configuration: .init(maxRequestMessageBytes: 32 << 20)
        ) { _ in
            let port = try await transportServer.listeningAddress().port!
            try await withCourierClient(transport: try HTTP2ClientTransport(target: "127.0.0.1:\(port)")) { client in
                for size in [0, 1 << 20, 16 << 20] {
                    var payload = [UInt8](repeating: 0x5A, count: size)
                    if size > 0 { payload[size - 1] = 1 }
                    let reply = try await client.unary(
                        request: ClientRequest(message: payload),
                        descriptor: method("Get"),
                        serializer: codec,
                        deserializer: codec,
                        options: CallOptions(maxResponseMessageBytes: 32 << 20)
                    )
                    #expect(reply == payload, "size \(size)")
                }
            }
        }
    }

    @Test(
        "Connections closed and reopened one after another (socket numbers reused) keep working",
        arguments: [IOBackend.epoll, .ioUring]
    )
    func sequentialConnections(backend: IOBackend) async throws {
        guard backend == .epoll || IOBackend.automatic == .ioUring else { return }
        var serverConfiguration = HTTP2ServerTransport.Configuration()
        serverConfiguration.ioBackend = backend
        let server = HTTP2ServerTransport(
            address: .ipv4(host: "127.0.0.1", port: 0),
            configuration: serverConfiguration
        )
        try await withCourierServer(transport: server, services: [RawEchoService()]) { _ in
            let port = try await server.listeningAddress().port!
            var clientConfiguration = HTTP2ClientTransport.Configuration()
            clientConfiguration.ioBackend = backend
            for index in 0..<40 {
                let client = try HTTP2ClientTransport(target: "127.0.0.1:\(port)", configuration: clientConfiguration)
                let reply = try await withCourierClient(transport: client) { client in
                    try await client.unary(
                        request: ClientRequest(message: [UInt8(index)]),
                        descriptor: method("Get"),
                        serializer: codec,
                        deserializer: codec,
                        options: CallOptions(timeout: .seconds(10))
                    )
                }
                #expect(reply == [UInt8(index)], "connection \(index)")
            }
        }
    }

    @Test("1,000 concurrent streams on one connection")
    func manyStreams() async throws {
        try await withHTTP2 { client in
            let replies = try await withThrowingTaskGroup(of: Bool.self, returning: Int.self) { group in
                for i in 0..<1000 {
                    group.addTask {
                        let message = Array("m\(i)".utf8)
                        return try await client.unary(
                            request: ClientRequest(message: message),
                            descriptor: method("Get"),
                            serializer: codec,
                            deserializer: codec
                        ) == message
                    }
                }
                var ok = 0
                for try await matched in group where matched { ok += 1 }
                return ok
            }
            #expect(replies == 1000)
        }
    }

    @Test("A deadline crosses the wire: the server's handler is cancelled, the client gets DEADLINE_EXCEEDED")
    func deadline() async throws {
        try await withHTTP2 { client in
            do {
                _ = try await client.unary(
                    request: ClientRequest(message: []),
                    descriptor: method("Slow"),
                    serializer: codec,
                    deserializer: codec,
                    options: CallOptions(timeout: .milliseconds(100))
                )
                Issue.record("expected DEADLINE_EXCEEDED")
            } catch let error as RPCError {
                #expect(error.code == .deadlineExceeded)
            }
        }
    }

    @Test("Connecting where nobody listens fails fast with UNAVAILABLE")
    func connectionRefused() async throws {
        let path = "/tmp/courier-nobody-\(getpid())-\(UInt64.random(in: 0...UInt64.max)).sock"
        try await withCourierClient(transport: try HTTP2ClientTransport(target: "unix:\(path)")) { client in
            do {
                _ = try await client.unary(
                    request: ClientRequest(message: []),
                    descriptor: method("Get"),
                    serializer: codec,
                    deserializer: codec
                )
                Issue.record("expected UNAVAILABLE")
            } catch let error as RPCError {
                #expect(error.code == .unavailable)
            }
        }
    }

    @Test(
        "Targets parse",
        arguments: [
            "127.0.0.1:80", "dns:///localhost:443", "ipv4:10.0.0.1:1", "ipv6:[::1]:8080", "[::1]:9", "unix:/tmp/x.sock",
            "unix:///tmp/y.sock",
            // A name without a port: port 443, as in gRPC's naming doc.
            "localhost",
        ]
    )
    func targets(target: String) throws {
        _ = try HTTP2ClientTransport(target: target)
    }

    @Test(
        "Bad targets are a RuntimeError (invalid argument)",
        arguments: ["", "127.0.0.1:", "127.0.0.1:99999", ":80", "[::1", "unix:"]
    )
    func badTargets(target: String) {
        let error = #expect(throws: RuntimeError.self) { _ = try HTTP2ClientTransport(target: target) }
        #expect(error?.code == .invalidArgument)
    }
}

/// A service that calls another over HTTP/2 from inside its handler, reporting the inner deadline.
struct ForwardingService: RegistrableRPCService {
    let target: String
    let observed: ObservedRemaining

    func registerMethods(with router: inout RPCRouter) {
        let target = self.target
        let observed = self.observed
        router.registerUnary(forMethod: method("Outer"), deserializer: codec, serializer: codec) { request, _ in
            // No timeout of its own: the inner call inherits what is left of this RPC's deadline.
            let reply = try await withCourierClient(transport: try HTTP2ClientTransport(target: target)) { inner in
                try await inner.unary(
                    request: ClientRequest(message: request.message),
                    descriptor: method("Inner"),
                    serializer: codec,
                    deserializer: codec
                )
            }
            return ServerResponse(message: reply)
        }
        router.registerUnary(forMethod: method("Inner"), deserializer: codec, serializer: codec) { request, context in
            observed.record(context.timeRemaining)
            return ServerResponse(message: request.message)
        }
    }
}

final class ObservedRemaining: Sendable {
    private let value = CourierMutex<Duration??>(nil)
    func record(_ remaining: Duration?) { value.withLock { $0 = .some(remaining) } }
    var recorded: Duration?? { value.withLock { $0 } }
}

@Suite("Deadline propagation across a real hop")
struct DeadlinePropagationTests {
    @Test("A call made inside a handler carries the remaining deadline over the wire")
    func propagation() async throws {
        let observed = ObservedRemaining()
        let elapsed = CourierMutex(Duration.zero)
        // A socket path is known before the server starts, so the service can call its own server.
        let path = "/tmp/courier-hop-\(getpid())-\(UInt64.random(in: 0...UInt64.max)).sock"
        var configuration = HTTP2ServerTransport.Configuration()
        configuration.loops = 1
        let server = HTTP2ServerTransport(address: .unix(path: path), configuration: configuration)
        let service = ForwardingService(target: "unix:\(path)", observed: observed)
        try await withCourierServer(transport: server, services: [service]) { _ in
            _ = try await server.listeningAddress()
            try await withCourierClient(transport: try HTTP2ClientTransport(target: "unix:\(path)")) { client in
                let start = ContinuousClock.now
                defer { elapsed.withLock { $0 = ContinuousClock.now - start } }
                let reply = try await client.unary(
                    request: ClientRequest(message: [5]),
                    descriptor: method("Outer"),
                    serializer: codec,
                    deserializer: codec,
                    options: CallOptions(timeout: .seconds(10))
                )
                #expect(reply == [5])
            }
        }
        let remaining = try #require(observed.recorded ?? nil)
        // The inner call saw the outer deadline less the time spent so far: at most 10 s, and at least 10 s
        // less the whole outer call (and grpc-timeout's rounding), however slow a loaded machine made the
        // hop. (A fixed "more than 5 s" failed once in CI with both cores busy.)
        let spent = elapsed.withLock { $0 }
        #expect(remaining <= .seconds(10), "inner call saw \(remaining)")
        #expect(remaining >= .seconds(10) - spent - .milliseconds(10), "inner call saw \(remaining) after \(spent)")
    }
}
