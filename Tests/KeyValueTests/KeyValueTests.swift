import Courier
import CourierHTTP2
import CourierInMemory
import Foundation
import KeyValueService
import SwiftProtobuf
import Testing

@Suite("The key-value example")
struct KeyValueTests {
    /// Put, replace and Get, against each placement of the store.
    func exercise(_ courier: CourierClient) async throws {
        let store = Kv_KeyValue.Client(wrapping: courier)
        #expect(try await store.get(.with { $0.key = "a" }).found == false)
        #expect(
            try await store.put(
                .with {
                    $0.key = "a"
                    $0.value = Data("1".utf8)
                }
            ).replaced == false
        )
        #expect(
            try await store.put(
                .with {
                    $0.key = "a"
                    $0.value = Data("2".utf8)
                }
            ).replaced == true
        )
        let reply = try await store.get(.with { $0.key = "a" })
        #expect(reply.found && reply.value == Data("2".utf8))
    }

    @Test("Get and Put over HTTP/2, two loops, two connections", arguments: KeyValueService.Placement.allCases)
    func http2(placement: KeyValueService.Placement) async throws {
        var configuration = HTTP2ServerTransport.Configuration()
        configuration.loops = 2
        let server = HTTP2ServerTransport(address: .ipv4(host: "127.0.0.1", port: 0), configuration: configuration)
        try await withCourierServer(transport: server, services: [KeyValueService(placement: placement)]) { _ in
            let port = try #require(try await server.listeningAddress().port)
            try await withCourierClient(transport: try HTTP2ClientTransport(target: "127.0.0.1:\(port)")) {
                try await exercise($0)
            }
            // A second connection (on the other loop) sees the same store.
            try await withCourierClient(transport: try HTTP2ClientTransport(target: "127.0.0.1:\(port)")) {
                let reply = try await Kv_KeyValue.Client(wrapping: $0).get(.with { $0.key = "a" })
                #expect(reply.value == Data("2".utf8))
            }
        }
    }

    @Test("Get and Put in memory (no loop: a plain actor)", arguments: KeyValueService.Placement.allCases)
    func inMemory(placement: KeyValueService.Placement) async throws {
        let transport = InMemoryTransport()
        try await withCourierServer(transport: transport.server, services: [KeyValueService(placement: placement)]) {
            _ in
            try await withCourierClient(transport: transport.client) { try await exercise($0) }
        }
    }
}
