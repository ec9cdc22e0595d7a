// A greeter with all four RPC kinds, served and called in one process over the in-memory transport.
//
//   swift run in-memory-greeter
//
// The protobuf greeter (Examples/Greeter) generates this boilerplate from a .proto file; here the
// service is registered by hand with a UTF-8 string codec, to show the core API on its own.

import Courier
import CourierInMemory

/// Messages are plain strings, sent as UTF-8.
struct StringCodec: MessageCodec {
    func serialize(_ message: String) throws -> MessageBuffer { MessageBuffer(message.utf8) }
    func deserialize(_ buffer: MessageBuffer) throws -> String { String(decoding: buffer, as: UTF8.self) }
}

enum HelloService {
    static let descriptor = ServiceDescriptor(package: "hello", service: "HelloService")
    static let sayHello = MethodDescriptor(service: descriptor, method: "SayHello")
    static let lotsOfReplies = MethodDescriptor(service: descriptor, method: "LotsOfReplies")
    static let lotsOfGreetings = MethodDescriptor(service: descriptor, method: "LotsOfGreetings")
    static let bidiHello = MethodDescriptor(service: descriptor, method: "BidiHello")
}

struct Greeter: RegistrableRPCService {
    func registerMethods(with router: inout RPCRouter) {
        let codec = StringCodec()
        router.registerUnary(forMethod: HelloService.sayHello, deserializer: codec, serializer: codec) { request, _ in
            ServerResponse(message: "Hello, \(request.message)!")
        }
        router.registerServerStreaming(forMethod: HelloService.lotsOfReplies, deserializer: codec, serializer: codec) {
            request,
            _ in
            StreamingServerResponse { writer in
                for greeting in ["Hello", "Bonjour", "Hola"] {
                    try await writer.write("\(greeting), \(request.message)!")
                }
                return [:]
            }
        }
        router.registerClientStreaming(forMethod: HelloService.lotsOfGreetings, deserializer: codec, serializer: codec)
        {
            request,
            _ in
            var names: [String] = []
            for try await name in request.messages { names.append(name) }
            return ServerResponse(message: "Hello, \(names.joined(separator: " and "))!")
        }
        router.registerBidirectionalStreaming(forMethod: HelloService.bidiHello, deserializer: codec, serializer: codec)
        {
            request,
            _ in
            StreamingServerResponse { writer in
                for try await name in request.messages { try await writer.write("Hello, \(name)!") }
                return [:]
            }
        }
    }
}

let codec = StringCodec()
let transport = InMemoryTransport()
try await withCourierServer(transport: transport.server, services: [Greeter()]) { _ in
    try await withCourierClient(transport: transport.client) { client in
        let reply = try await client.unary(
            request: ClientRequest(message: "Courier"),
            descriptor: HelloService.sayHello,
            serializer: codec,
            deserializer: codec,
            options: CallOptions(timeout: .seconds(5))
        )
        print("SayHello        -> \(reply)")

        try await client.serverStreaming(
            request: ClientRequest(message: "Courier"),
            descriptor: HelloService.lotsOfReplies,
            serializer: codec,
            deserializer: codec
        ) { response in
            for try await reply in response.messages { print("LotsOfReplies   -> \(reply)") }
        }

        let joined = try await client.clientStreaming(
            request: StreamingClientRequest<String> { writer in
                try await writer.write(contentsOf: ["Ada", "Grace", "Linus"])
            },
            descriptor: HelloService.lotsOfGreetings,
            serializer: codec,
            deserializer: codec
        ) { try $0.message }
        print("LotsOfGreetings -> \(joined)")

        try await client.bidirectionalStreaming(
            request: StreamingClientRequest<String> { writer in
                for name in ["Ada", "Grace"] { try await writer.write(name) }
            },
            descriptor: HelloService.bidiHello,
            serializer: codec,
            deserializer: codec
        ) { response in
            for try await reply in response.messages { print("BidiHello       -> \(reply)") }
        }
    }
}
