import Courier
import CourierInMemory
import Testing

@Suite("Metadata and status reach the other side unchanged")
struct MetadataRoundTripTests {
    let codec = UTF8Codec()

    var requestMetadata: Metadata {
        var metadata: Metadata = ["x-echo-initial": "initial value"]
        metadata.addString("second value", forKey: "X-Echo-Initial")
        metadata.addBinary([0xAB, 0xAB, 0xAB], forKey: "x-echo-trailing-bin")
        metadata.addBinary([0x00, 0xFF, 0x10], forKey: "x-echo-trailing-bin")
        return metadata
    }

    @Test("Unary: request, response and trailing metadata, ASCII and binary")
    func unary() async throws {
        try await withTestRPC { client in
            let response = try await client.unary(
                request: ClientRequest(message: "m", metadata: requestMetadata),
                descriptor: Echo.get,
                serializer: codec,
                deserializer: codec
            ) { $0 }
            #expect(try response.message == "m")
            #expect(response.metadata[stringValues: "x-echo-initial"] == ["initial value", "second value"])
            #expect(
                response.trailingMetadata[binaryValues: "x-echo-trailing-bin"] == [
                    [0xAB, 0xAB, 0xAB], [0x00, 0xFF, 0x10],
                ]
            )
        }
    }

    @Test("Bidirectional: response and trailing metadata through body parts")
    func bidirectional() async throws {
        try await withTestRPC { client in
            let request = StreamingClientRequest<String>(metadata: requestMetadata) { writer in
                try await writer.write("a")
            }
            let (initial, trailing) = try await client.bidirectionalStreaming(
                request: request,
                descriptor: Echo.update,
                serializer: codec,
                deserializer: codec
            ) { response -> (Metadata, Metadata) in
                var trailing: Metadata = [:]
                for try await part in try response.accepted.get().bodyParts {
                    if case .trailingMetadata(let metadata) = part { trailing = metadata }
                }
                return (response.metadata, trailing)
            }
            #expect(initial[stringValues: "x-echo-initial"] == ["initial value", "second value"])
            #expect(trailing[binaryValues: "x-echo-trailing-bin"] == [[0xAB, 0xAB, 0xAB], [0x00, 0xFF, 0x10]])
        }
    }

    @Test("Invalid request metadata fails the call with INTERNAL before it is sent")
    func invalidRequestMetadata() async throws {
        let handled = Counter()
        let service = ClosureService { router in
            router.registerUnary(forMethod: Echo.get, deserializer: UTF8Codec(), serializer: UTF8Codec()) {
                request,
                _ in
                handled.increment()
                return ServerResponse(message: request.message)
            }
        }
        try await withTestRPC(services: [service]) { client in
            for metadata: Metadata in [["bad key": "v"], ["x-ok": "line\nbreak"], ["no-bin-suffix": .binary([1])]] {
                await expectRPCError(.internal) {
                    _ = try await client.unary(
                        request: ClientRequest(message: "m", metadata: metadata),
                        descriptor: Echo.get,
                        serializer: codec,
                        deserializer: codec
                    )
                }
            }
        }
        #expect(handled.current == 0)
    }
}
