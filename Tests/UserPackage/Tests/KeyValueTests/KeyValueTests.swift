// The tests of a package with Swift's default settings. If Courier's public API stops being usable
// from such a package (a protocol its types can't conform to, an import that clashes), this doesn't build.
import Courier
import CourierHTTP2
import CourierInMemory
import CourierProtobuf
import Echo
import Foundation
import KeyValue
import SwiftProtobuf
import Synchronization
import Testing

/// How the tests reach the server.
enum Wire: String, CaseIterable, CustomTestStringConvertible {
    case inMemory, h2c, tls
    var testDescription: String { rawValue }
}

/// Runs `services` and calls `body` with a client connected over `wire`.
func withKeyValue<R: Sendable>(
    over wire: Wire,
    services: [any RegistrableRPCService] = [KeyValueService(), EchoService()],
    serverInterceptors: [any ServerInterceptor] = [APIKeyInterceptor(key: "secret")],
    clientInterceptors: [any ClientInterceptor] = [APIKeyClientInterceptor(key: "secret")],
    _ body: (CourierClient) async throws -> R
) async throws -> R {
    switch wire {
    case .inMemory:
        let pair = InMemoryTransport()
        return try await withCourierServer(transport: pair.server, services: services, interceptors: serverInterceptors)
        { _ in
            try await withCourierClient(transport: pair.client, interceptors: clientInterceptors, body)
        }
    case .h2c, .tls:
        var serverConfiguration = HTTP2ServerTransport.Configuration()
        var clientConfiguration = HTTP2ClientTransport.Configuration()
        if wire == .tls {
            let directory = try #require(
                ProcessInfo.processInfo.environment["KV_TLS_DIR"],
                "KV_TLS_DIR names a directory made by dev/make-test-certs.sh"
            )
            serverConfiguration.tls = .server(
                certificateChainFile: "\(directory)/server.pem",
                privateKeyFile: "\(directory)/server.key"
            )
            clientConfiguration.tls = .client(trustRoots: .pemFile("\(directory)/ca.pem"))
        }
        let server = HTTP2ServerTransport(
            address: .ipv4(host: "127.0.0.1", port: 0),
            configuration: serverConfiguration
        )
        return try await withCourierServer(transport: server, services: services, interceptors: serverInterceptors) {
            _ in
            let port = try #require(try await server.listeningAddress().port)
            let transport = try HTTP2ClientTransport(target: "localhost:\(port)", configuration: clientConfiguration)
            return try await withCourierClient(transport: transport, interceptors: clientInterceptors, body)
        }
    }
}

@Suite("A user's key-value service, from a package with default settings")
struct KeyValueTests {
    @Test("All four kinds, with maps, enums, oneofs, nested messages and a well-known type", arguments: Wire.allCases)
    func fourKinds(wire: Wire) async throws {
        try await withKeyValue(over: wire) { courier in
            let kv = Kv_KeyValue.Client(wrapping: courier)
            let now = Google_Protobuf_Timestamp(date: Date(timeIntervalSince1970: 1_700_000_000))
            let summary = try await kv.putMany { writer in
                try await writer.write(
                    .with {
                        $0.key = "a"
                        $0.text = "one"
                        $0.kind = .text
                        $0.labels = ["x": "y"]
                        $0.author = .with { $0.name = "Ada" }
                        $0.updated = now
                    }
                )
                try await writer.write(
                    .with {
                        $0.key = "b"
                        $0.number = 2
                        $0.kind = .number
                    }
                )
            }
            #expect(summary.written == 2)

            let a = try await kv.get(.with { $0.key = "a" })
            #expect(a.value == .text("one"))
            #expect(a.labels == ["x": "y"])
            #expect(a.author.name == "Ada")
            #expect(a.updated == now)

            let keys = try await kv.watch(.with { $0.prefix = "" }) { response in
                var keys: [String] = []
                for try await change in response.messages { keys.append(change.entry.key) }
                return keys
            }
            #expect(keys == ["a", "b"])

            let changes = try await kv.sync { writer in
                try await writer.write(.with { $0.delete = "a" })
                try await writer.write(
                    .with {
                        $0.put = .with {
                            $0.key = "c"
                            $0.number = 3
                        }
                    }
                )
            } onResponse: { response in
                var changes: [Kv_Change] = []
                for try await change in response.messages { changes.append(change) }
                return changes
            }
            #expect(changes.map(\.deleted) == [true, false])
            #expect(changes.map(\.entry.key) == ["a", "c"])

            let echo = try await Echo_V1_EchoService.Client(wrapping: courier).echo(.with { $0.text = "hi" })
            #expect(echo.text == "hi")
        }
    }

    @Test("Errors: NOT_FOUND from the handler, UNAUTHENTICATED from the interceptor")
    func errors() async throws {
        try await withKeyValue(over: .inMemory) { courier in
            let kv = Kv_KeyValue.Client(wrapping: courier)
            let error = await #expect(throws: RPCError.self) { try await kv.get(.with { $0.key = "missing" }) }
            #expect(error?.code == .notFound)
        }
        try await withKeyValue(over: .inMemory, clientInterceptors: []) { courier in
            let error = await #expect(throws: RPCError.self) {
                try await Kv_KeyValue.Client(wrapping: courier).get(.with { $0.key = "a" })
            }
            #expect(error?.code == .unauthenticated)
        }
    }

    @Test("Metadata literals take interpolations; response metadata and trailers reach the client")
    func metadata() async throws {
        let version = 3
        let metadata: Metadata = ["x-client-version": "v\(version)"]
        #expect(metadata.firstString(forKey: "x-client-version") == "v3")
        try await withKeyValue(over: .inMemory) { courier in
            let kv = Kv_KeyValue.Client(wrapping: courier)
            _ = try await kv.putMany(metadata: metadata) { writer in try await writer.write(.with { $0.key = "k" }) }
            let trailers = try await kv.watch(.with { $0.prefix = "k" }) { response in
                var trailers: Metadata = [:]
                for try await part in try response.accepted.get().bodyParts {
                    if case .trailingMetadata(let metadata) = part { trailers = metadata }
                }
                return trailers
            }
            #expect(trailers.firstString(forKey: "x-matched") == "1")
        }
    }

    @Test("A writer and a transport of the user's own conform to Courier's protocols")
    func ownConformances() async throws {
        let pair = InMemoryTransport()
        let counting = CountingClientTransport(wrapping: pair.client)
        let written = Counter()
        try await withCourierServer(
            transport: pair.server,
            services: [KeyValueService()],
            interceptors: [APIKeyInterceptor(key: "k")]
        ) { _ in
            try await withCourierClient(transport: counting, interceptors: [APIKeyClientInterceptor(key: "k")]) {
                courier in
                let summary = try await Kv_KeyValue.Client(wrapping: courier).putMany { writer in
                    let writer = CountingWriter(base: writer, counter: written)
                    for key in ["x", "y", "z"] { try await writer.write(.with { $0.key = key }) }
                }
                #expect(summary.written == 3)
            }
        }
        #expect(written.count == 3)
        #expect(counting.streams.count == 1)
    }
}
