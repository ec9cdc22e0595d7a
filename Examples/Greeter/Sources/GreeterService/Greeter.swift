public import Courier  // Greeter is a Courier service
internal import SwiftProtobuf

/// The greeter: `hello.HelloService`, all four kinds of RPC.
public struct Greeter: Hello_HelloService.ServiceProtocol {
    /// Creates the greeter.
    public init() {}

    public func sayHello(
        request: ServerRequest<Hello_HelloRequest>,
        context: ServerContext
    ) async throws -> ServerResponse<Hello_HelloResponse> {
        ServerResponse(message: .with { $0.reply = "Hello, \(request.message.greeting)!" })
    }

    public func lotsOfReplies(
        request: ServerRequest<Hello_HelloRequest>,
        context: ServerContext
    ) async throws -> StreamingServerResponse<Hello_HelloResponse> {
        let name = request.message.greeting
        return StreamingServerResponse { writer in
            for greeting in ["Hello", "Bonjour", "Hola", "Ciao", "Hallo"] {
                try await writer.write(.with { $0.reply = "\(greeting), \(name)!" })
            }
            return [:]
        }
    }

    public func lotsOfGreetings(
        request: StreamingServerRequest<Hello_HelloRequest>,
        context: ServerContext
    ) async throws -> ServerResponse<Hello_HelloResponse> {
        var names: [String] = []
        for try await message in request.messages { names.append(message.greeting) }
        guard !names.isEmpty else {
            throw RPCError(code: .invalidArgument, message: "Send at least one greeting.")
        }
        return ServerResponse(message: .with { $0.reply = "Hello, \(names.joined(separator: ", "))!" })
    }

    public func bidiHello(
        request: StreamingServerRequest<Hello_HelloRequest>,
        context: ServerContext
    ) async throws -> StreamingServerResponse<Hello_HelloResponse> {
        StreamingServerResponse { writer in
            for try await message in request.messages {
                try await writer.write(.with { $0.reply = "Hello, \(message.greeting)!" })
            }
            return [:]
        }
    }
}
