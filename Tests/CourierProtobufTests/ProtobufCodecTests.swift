import Courier
import CourierInMemory
import CourierProtobuf
import GreeterService
import SwiftProtobuf
import Testing

@Suite("Protobuf codec")
struct ProtobufCodecTests {
    @Test("Round trip, serialized straight into a MessageBuffer with framing headroom")
    func roundTrip() throws {
        let codec = ProtobufCodec<Hello_HelloRequest>()
        let message = Hello_HelloRequest.with { $0.greeting = "héllo" }
        let buffer = try codec.serialize(message)
        #expect(buffer.headroom == MessageBuffer.defaultHeadroom)
        #expect(Array(buffer) == Array(try message.serializedBytes() as [UInt8]))
        #expect(try codec.deserialize(buffer) == message)
    }

    @Test("A NaN double round-trips bit for bit, though the value never equals itself (fuzz-protobuf's finding)")
    func nanRoundTrip() throws {
        // fuzz-protobuf parsed an ORCA report with cpu_utilization = NaN and, comparing with `==`, took the
        // round trip for a change; the codec keeps the bits (Tests/Fuzz/Corpus/fuzz-protobuf/regression-nan-double).
        let codec = ProtobufCodec<Google_Protobuf_DoubleValue>()
        let nan = Double(bitPattern: 0x7FF8_0000_0000_00B0)
        let message = Google_Protobuf_DoubleValue(nan)
        let again = try codec.deserialize(try codec.serialize(message))
        #expect(again != message)  // NaN != NaN
        #expect(again.value.bitPattern == nan.bitPattern)
    }

    @Test("An empty message is zero bytes")
    func empty() throws {
        let buffer = try ProtobufSerializer<Google_Protobuf_Empty>().serialize(Google_Protobuf_Empty())
        #expect(buffer.isEmpty)
        #expect(try ProtobufDeserializer<Google_Protobuf_Empty>().deserialize(buffer) == Google_Protobuf_Empty())
    }

    @Test(
        "Bytes that don't parse throw INTERNAL naming the type, never crash",
        arguments: [
            [0xFF], [0x0A, 0x05, 0x61], [0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F], [0x08], [0x0B],
        ] as [[UInt8]]
    )
    func garbage(bytes: [UInt8]) {
        do {
            _ = try ProtobufDeserializer<Hello_HelloRequest>().deserialize(MessageBuffer(bytes))
            Issue.record("parsed garbage")
        } catch let error as RPCError {
            #expect(error.code == .internal)
            #expect(error.message.contains("hello.HelloRequest"))
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test("Garbage sent to a server is answered with INTERNAL")
    func garbageOverTheWire() async throws {
        let transport = InMemoryTransport()
        try await withCourierServer(transport: transport.server, services: [Greeter()]) { _ in
            let client = CourierClient(transport: transport.client)
            do {
                _ = try await client.unary(
                    request: ClientRequest(message: MessageBuffer([0x0A, 0x09, 0x61])),
                    descriptor: Hello_HelloService.Method.SayHello.descriptor,
                    serializer: RawBytesCodec(),
                    deserializer: RawBytesCodec()
                )
                Issue.record("expected an error")
            } catch let error as RPCError {
                #expect(error.code == .internal)
            }
        }
    }
}

@Suite("Rich error details (google.rpc.Status)")
struct RichErrorTests {
    static let failing = FailingHello {
        try RPCError(
            code: .invalidArgument,
            message: "greeting must not be empty",
            details: [
                ErrorDetail(packing: Hello_HelloResponse.with { $0.reply = "a detail" }),
                ErrorDetail(packing: Google_Protobuf_Duration(seconds: 3)),
            ],
            metadata: ["x-other": "kept"]
        )
    }

    @Test("A server attaches details; the client reads them")
    func details() async throws {
        let transport = InMemoryTransport()
        try await withCourierServer(transport: transport.server, services: [Self.failing]) { _ in
            let client = Hello_HelloService.Client(wrapping: CourierClient(transport: transport.client))
            do {
                _ = try await client.sayHello(Hello_HelloRequest())
                Issue.record("expected an error")
            } catch let error as RPCError {
                #expect(error.code == .invalidArgument)
                let status = try #require(error.statusDetails)
                #expect(status.code == 3)
                #expect(status.message == "greeting must not be empty")
                #expect(error.details.count == 2)
                #expect(error.details[0].unpack(Hello_HelloResponse.self)?.reply == "a detail")
                #expect(error.details[1].unpack(Google_Protobuf_Duration.self)?.seconds == 3)
                #expect(error.details[1].unpack(Hello_HelloResponse.self) == nil)
                #expect(error.metadata.firstString(forKey: "x-other") == "kept")
            }
        }
    }

    @Test("No details, or details that don't parse: empty, no crash")
    func noDetails() {
        #expect(RPCError(code: .internal, message: "x").details.isEmpty)
        var metadata = Metadata()
        metadata.addBinary([0xFF, 0xFF], forKey: RPCError.statusDetailsKey)
        #expect(RPCError(code: .internal, message: "x", metadata: metadata).statusDetails == nil)
    }
}

@Suite("The generated greeter, over the in-memory transport")
struct GreeterTests {
    @Test("All four kinds through the generated client and server")
    func greeter() async throws {
        let transport = InMemoryTransport()
        try await withCourierServer(transport: transport.server, services: [Greeter()]) { _ in
            try await withCourierClient(transport: transport.client) { courier in
                let greeter = Hello_HelloService.Client(wrapping: courier)
                #expect(try await greeter.sayHello(.with { $0.greeting = "Ada" }).reply == "Hello, Ada!")

                let replies = try await greeter.lotsOfReplies(.with { $0.greeting = "Ada" }) { response in
                    var replies: [String] = []
                    for try await reply in response.messages { replies.append(reply.reply) }
                    return replies
                }
                #expect(replies.count == 5)
                #expect(replies.first == "Hello, Ada!")

                let summary = try await greeter.lotsOfGreetings { writer in
                    for name in ["Ada", "Grace"] { try await writer.write(.with { $0.greeting = name }) }
                }
                #expect(summary.reply == "Hello, Ada, Grace!")

                let bidi = try await greeter.bidiHello { writer in
                    for name in ["Ada", "Grace"] { try await writer.write(.with { $0.greeting = name }) }
                } onResponse: { response in
                    var replies: [String] = []
                    for try await reply in response.messages { replies.append(reply.reply) }
                    return replies
                }
                #expect(bidi == ["Hello, Ada!", "Hello, Grace!"])

                // A handler's RPCError reaches the generated client.
                do {
                    _ = try await greeter.lotsOfGreetings { _ in }
                    Issue.record("expected INVALID_ARGUMENT")
                } catch let error as RPCError {
                    #expect(error.code == .invalidArgument)
                }

                // The full form exposes metadata.
                let response = try await greeter.sayHello(
                    request: ClientRequest(message: .with { $0.greeting = "x" }, metadata: ["x-a": "b"])
                ) { $0 }
                #expect(try response.message.reply == "Hello, x!")
            }
        }
    }
}
