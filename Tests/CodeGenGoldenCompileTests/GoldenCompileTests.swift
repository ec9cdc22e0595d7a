import Courier
import CourierInMemory
import Foundation
import SwiftProtobuf
import Testing

/// Implements the golden file's services: proof that every naming edge case compiles and works.
struct Kinds: CGKinds.ServiceProtocol {
    func get(request: ServerRequest<CGOuter.Inner>, context: ServerContext) async throws -> ServerResponse<CGOuter> {
        ServerResponse(message: .with { $0.inner = request.message })
    }

    func list(
        request: ServerRequest<Google_Protobuf_Empty>,
        context: ServerContext
    ) async throws -> StreamingServerResponse<Codegen_Other_Item> {
        StreamingServerResponse { writer in
            for id in 1...3 { try await writer.write(.with { $0.id = Int32(id) }) }
            return [:]
        }
    }

    func upload(
        request: StreamingServerRequest<Codegen_Other_Item>,
        context: ServerContext
    ) async throws -> ServerResponse<Google_Protobuf_Empty> {
        for try await _ in request.messages {}
        return ServerResponse(message: Google_Protobuf_Empty())
    }

    func chat(
        request: StreamingServerRequest<CGOuter>,
        context: ServerContext
    ) async throws -> StreamingServerResponse<CGOuter> {
        StreamingServerResponse { writer in
            for try await message in request.messages { try await writer.write(message) }
            return [:]
        }
    }

    func return_(request: ServerRequest<CGOuter>, context: ServerContext) async throws -> ServerResponse<CGOuter> {
        ServerResponse(message: request.message)
    }

    func type(request: ServerRequest<CGOuter>, context: ServerContext) async throws -> ServerResponse<CGOuter> {
        ServerResponse(message: .with { $0.inner.value = "Type" })
    }

    func getThing(request: ServerRequest<CGOuter>, context: ServerContext) async throws -> ServerResponse<CGOuter> {
        ServerResponse(message: .with { $0.inner.value = "get_thing" })
    }

    func getThing2(request: ServerRequest<CGOuter>, context: ServerContext) async throws -> ServerResponse<CGOuter> {
        ServerResponse(message: .with { $0.inner.value = "GetThing" })
    }
}

struct Pinger: CGPinger.ServiceProtocol {
    func ping(request: ServerRequest<CGSecond>, context: ServerContext) async throws -> ServerResponse<CGSecond> {
        ServerResponse(message: request.message)
    }
}

@Suite("Generated code for every naming edge case compiles and calls the right methods")
struct GoldenCompileTests {
    @Test("Each generated method reaches its handler")
    func calls() async throws {
        let transport = InMemoryTransport()
        try await withCourierServer(transport: transport.server, services: [Kinds(), Pinger()]) { _ in
            try await withCourierClient(transport: transport.client) { courier in
                let kinds = CGKinds.Client(wrapping: courier)
                #expect(try await kinds.get(.with { $0.value = "v" }).inner.value == "v")
                let ids = try await kinds.list(Google_Protobuf_Empty()) { response in
                    var ids: [Int32] = []
                    for try await item in response.messages { ids.append(item.id) }
                    return ids
                }
                #expect(ids == [1, 2, 3])
                _ = try await kinds.upload { writer in try await writer.write(.with { $0.id = 9 }) }
                let echoed = try await kinds.chat { writer in
                    try await writer.write(.with { $0.inner.value = "c" })
                } onResponse: { response in
                    var values: [String] = []
                    for try await message in response.messages { values.append(message.inner.value) }
                    return values
                }
                #expect(echoed == ["c"])
                #expect(try await kinds.return_(.with { $0.inner.value = "r" }).inner.value == "r")
                #expect(try await kinds.type(CGOuter()).inner.value == "Type")
                #expect(try await kinds.getThing(CGOuter()).inner.value == "get_thing")
                #expect(try await kinds.getThing2(CGOuter()).inner.value == "GetThing")
                #expect(CGKinds.Method.Type_.descriptor.path == "/codegen.test.Kinds/Type")
                #expect(CGKinds.Method.GetThing2.descriptor.path == "/codegen.test.Kinds/GetThing")
                #expect(CGKinds.Method.descriptors.count == 8)

                let pinger = CGPinger.Client(wrapping: courier)
                _ = try await pinger.ping(CGSecond())
            }
        }
    }
}

@Suite("The golden file's reflection data")
struct GoldenReflectionDataTests {
    @Test("The file's descriptor, then its imports', each once; the second service shares the first's")
    func descriptors() throws {
        let files = try CGKinds.fileDescriptorProtos.map { text in
            let bytes = try #require(Data(base64Encoded: text), "not base64: \(text.prefix(40))")
            return try Google_Protobuf_FileDescriptorProto(serializedBytes: bytes)
        }
        #expect(files.map(\.name) == ["codegen_test.proto", "codegen_other.proto", "google/protobuf/empty.proto"])
        #expect(files[0].service.map(\.name) == ["Kinds", "Pinger"])
        #expect(!files[0].hasSourceCodeInfo)
        #expect(CGPinger.fileDescriptorProtos == CGKinds.fileDescriptorProtos)
    }
}
