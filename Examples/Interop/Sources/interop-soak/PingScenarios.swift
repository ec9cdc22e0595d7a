// The load's scenarios against ping.PingService (ping-server, `--service ping`): every RPC kind, with the
// status each must end with. The request's `fail_code` and `delay_ms` ask for statuses and slow answers.

import Courier
import CourierProtobuf
import PingService
import SwiftProtobuf

typealias PingClient = Ping_PingService.Client

extension Scenario {
    /// A scenario against ping.PingService.
    static func pingService(
        name: String,
        expected: String,
        _ body: @escaping @Sendable (PingClient) async throws -> Void
    ) -> Scenario {
        Scenario(name: name, expected: expected) { try await body(PingClient(wrapping: $0)) }
    }
}

func ping(_ text: String, failCode: Int32 = 0, delayMilliseconds: Int32 = 0, count: Int32 = 0) -> Ping_Request {
    .with {
        $0.msg = text
        $0.failCode = failCode
        $0.delayMs = delayMilliseconds
        $0.count = count
    }
}

/// A text of `size` bytes that differs with `seed`, so that a mixed-up echo shows.
func pingText(_ size: Int, seed: Int) -> String {
    String(repeating: String(seed % 10), count: size)
}

let pingServiceScenarios: [Scenario] = [
    .pingService(name: "unary", expected: "OK") { client in
        let response = try await client.send(ping("hello"), options: okOptions)
        try check(response.msg == "hello", "echo \(response.msg)")
    },
    .pingService(name: "unary_large", expected: "OK") { client in
        let text = pingText(65_536, seed: 7)
        let response = try await client.send(ping(text), options: okOptions)
        try check(response.msg == text, "echo of \(response.msg.utf8.count) bytes")
    },
    .pingService(name: "unary_status", expected: "FAILED_PRECONDITION") { client in
        _ = try await client.send(ping("x", failCode: 9), options: okOptions)
    },
    Scenario(name: "unary_unimplemented", expected: "UNIMPLEMENTED") { courier in
        // A method ping.PingService doesn't have.
        let _: Ping_Response = try await courier.unary(
            request: ClientRequest(message: ping("x")),
            descriptor: MethodDescriptor(service: Ping_PingService.descriptor, method: "Missing"),
            serializer: ProtobufSerializer<Ping_Request>(),
            deserializer: ProtobufDeserializer<Ping_Response>(),
            options: okOptions
        )
    },
    .pingService(name: "unary_deadline", expected: "DEADLINE_EXCEEDED") { client in
        _ = try await client.send(
            ping("x", delayMilliseconds: 2_000),
            options: CallOptions(timeout: .milliseconds(100))
        )
    },
    .pingService(name: "server_stream", expected: "OK") { client in
        let count = try await client.sendRepeated(ping("r", count: 20), options: okOptions) { response in
            var count = 0
            for try await message in response.messages {
                try check(message.msg == "r", "message \(count): \(message.msg)")
                count += 1
            }
            return count
        }
        try check(count == 20, "\(count) messages")
    },
    .pingService(name: "server_stream_cancel", expected: "CANCELLED") { client in
        // Cancelled by the client after the third of twenty messages, 5 ms apart.
        let call = Task {
            try await client.sendRepeated(ping("r", delayMilliseconds: 5, count: 20), options: okOptions) { response in
                var count = 0
                for try await _ in response.messages {
                    count += 1
                    if count == 3 { withUnsafeCurrentTask { $0?.cancel() } }
                }
            }
        }
        try await call.value
    },
    .pingService(name: "server_stream_deadline", expected: "DEADLINE_EXCEEDED") { client in
        // Twenty messages 30 ms apart under a 100 ms deadline.
        try await client.sendRepeated(
            ping("r", delayMilliseconds: 30, count: 20),
            options: CallOptions(timeout: .milliseconds(100))
        ) { response in
            for try await _ in response.messages {}
        }
    },
    .pingService(name: "client_stream", expected: "OK") { client in
        let response = try await client.sendMany(options: okOptions) { writer in
            for text in ["a", "bb", "ccc", pingText(27_182, seed: 3)] { try await writer.write(ping(text)) }
        }
        try check(response.msg == "a bb ccc " + pingText(27_182, seed: 3), "joined \(response.msg.utf8.count) bytes")
    },
    .pingService(name: "client_stream_cancel", expected: "CANCELLED") { client in
        let call = Task {
            try await client.sendMany(options: okOptions) { _ in
                withUnsafeCurrentTask { $0?.cancel() }
            }
        }
        _ = try await call.value
    },
    .pingService(name: "bidi_ping_pong", expected: "OK") { client in
        let sizes = [27_182, 8, 1_828, 45_904]
        let (requests, continuation) = AsyncStream<Int>.makeStream()
        continuation.yield(0)
        let received = try await client.sendStream(options: okOptions) { writer in
            for await index in requests { try await writer.write(ping(pingText(sizes[index], seed: index))) }
        } onResponse: { response in
            var received: [String] = []
            for try await message in response.messages {
                received.append(message.msg)
                if received.count < sizes.count { continuation.yield(received.count) } else { continuation.finish() }
            }
            continuation.finish()
            return received
        }
        try check(received == sizes.indices.map { pingText(sizes[$0], seed: $0) }, "\(received.count) echoes")
    },
    .pingService(name: "bidi_cancel", expected: "CANCELLED") { client in
        let call = Task {
            try await client.sendStream(options: okOptions) { writer in
                try await writer.write(ping("first"))
                try await Task.sleep(for: .seconds(3600))
            } onResponse: { response in
                var iterator = response.messages.makeAsyncIterator()
                _ = try await iterator.next()
                withUnsafeCurrentTask { $0?.cancel() }
                _ = try await iterator.next()
            }
        }
        try await call.value
    },
    .pingService(name: "bidi_deadline", expected: "DEADLINE_EXCEEDED") { client in
        try await client.sendStream(options: CallOptions(timeout: .milliseconds(50))) { writer in
            try await writer.write(ping("slow", delayMilliseconds: 2_000))
            try await Task.sleep(for: .seconds(3600))
        } onResponse: { response in
            for try await _ in response.messages {}
        }
    },
]
