import Courier
import CourierHTTP2
import Foundation
import GRPCTestingProtos
import InteropTestService
import SwiftProtobuf
import Testing

@Suite("grpc.testing.BenchmarkService (the bench-server's service)")
struct BenchmarkServiceTests {
    @Test("Unary, ping-pong, from the client, and from the server until cancelled")
    func allMethods() async throws {
        let transport = HTTP2ServerTransport(address: .ipv4(host: "127.0.0.1", port: 0))
        try await withCourierServer(transport: transport, services: [BenchmarkService()]) { _ in
            let port = try #require(try await transport.listeningAddress().port)
            try await withCourierClient(transport: try HTTP2ClientTransport(target: "127.0.0.1:\(port)")) { courier in
                let client = Grpc_Testing_BenchmarkService.Client(wrapping: courier)
                let unary = try await client.unaryCall(.with { $0.responseSize = 1024 })
                #expect(unary.payload.body.count == 1024)

                let sizes = try await client.streamingCall { writer in
                    for size in [0, 10, 1000] { try await writer.write(.with { $0.responseSize = Int32(size) }) }
                } onResponse: { response in
                    var sizes: [Int] = []
                    for try await message in response.messages { sizes.append(message.payload.body.count) }
                    return sizes
                }
                #expect(sizes == [0, 10, 1000])

                let last = try await client.streamingFromClient { writer in
                    for size in [1, 2, 3] { try await writer.write(.with { $0.responseSize = Int32(size) }) }
                }
                #expect(last.payload.body.count == 3)

                let received = try await client.streamingFromServer(.with { $0.responseSize = 7 }) { response in
                    var count = 0
                    for try await message in response.messages {
                        #expect(message.payload.body.count == 7)
                        count += 1
                        if count == 100 { break }  // leaving cancels the RPC
                    }
                    return count
                }
                #expect(received == 100)
            }
        }
    }
}
