import Courier
import CourierHTTP2
import CourierHealth
import PingService
import SwiftProtobuf
import Testing

@Suite("The ping service in process")
struct PingServiceTests {
    @Test("Send echoes; SendStream answers each request and ends when the client half-closes")
    func echo() async throws {
        let transport = HTTP2ServerTransport(address: .ipv4(host: "127.0.0.1", port: 0))
        try await withCourierServer(transport: transport, services: [PingService()]) { _ in
            let port = try #require(try await transport.listeningAddress().port)
            try await withCourierClient(transport: try HTTP2ClientTransport(target: "127.0.0.1:\(port)")) { courier in
                let client = Ping_PingService.Client(wrapping: courier)
                let reply = try await client.send(.with { $0.msg = "hello" })
                #expect(reply.msg == "hello")
                let replies = try await client.sendStream { writer in
                    for text in ["a", "b", "c"] { try await writer.write(.with { $0.msg = text }) }
                } onResponse: { response in
                    var replies: [String] = []
                    for try await message in response.messages { replies.append(message.msg) }
                    return replies
                }
                #expect(replies == ["a", "b", "c"])
            }
        }
    }
}
