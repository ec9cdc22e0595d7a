// The greeter: serve hello.HelloService, or call it with each of the four kinds of RPC.
//
//   swift run greeter                          # serve and call in one process (in-memory transport)
//   swift run greeter serve --port 50051       # serve over HTTP/2 (h2c)
//   swift run greeter greet --target 127.0.0.1:50051 Ada Grace
//
// The client code is the same whichever transport carries it.

import Courier
import CourierHTTP2
import CourierInMemory
import GreeterService
import SwiftProtobuf

#if canImport(Glibc)
import Glibc
#endif

/// Calls each RPC of the greeter once and prints the replies.
nonisolated func greet(_ courier: CourierClient, names: [String]) async throws {
    let greeter = Hello_HelloService.Client(wrapping: courier)
    let options = CallOptions(timeout: .seconds(10))

    let reply = try await greeter.sayHello(.with { $0.greeting = names[0] }, options: options)
    print("SayHello         \(reply.reply)")

    try await greeter.lotsOfReplies(.with { $0.greeting = names[0] }, options: options) { response in
        for try await reply in response.messages { print("LotsOfReplies    \(reply.reply)") }
    }

    let summary = try await greeter.lotsOfGreetings(options: options) { writer in
        for name in names { try await writer.write(.with { $0.greeting = name }) }
    }
    print("LotsOfGreetings  \(summary.reply)")

    try await greeter.bidiHello(options: options) { writer in
        for name in names { try await writer.write(.with { $0.greeting = name }) }
    } onResponse: { response in
        for try await reply in response.messages { print("BidiHello        \(reply.reply)") }
    }
}

nonisolated func inProcess(names: [String]) async throws {
    let transport = InMemoryTransport()
    try await withCourierServer(transport: transport.server, services: [Greeter()]) { _ in
        try await withCourierClient(transport: transport.client) { try await greet($0, names: names) }
    }
}

nonisolated func serve(port: Int) async throws {
    let transport = HTTP2ServerTransport(address: .ipv4(host: "0.0.0.0", port: port))
    let server = CourierServer(transport: transport, services: [Greeter()])
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await server.run() }
        print("greeter listening on \(try await transport.listeningAddress())")
        fflush(nil)  // all streams: the line is a readiness signal for scripts
        try await group.waitForAll()
    }
}

nonisolated func remote(target: String, names: [String]) async throws {
    try await withCourierClient(transport: try HTTP2ClientTransport(target: target)) {
        try await greet($0, names: names)
    }
}

nonisolated func main(_ arguments: [String]) async -> Int32 {
    let defaultNames = ["Ada", "Grace", "Linus"]
    do {
        switch arguments.first {
        case "serve":
            var port = 50051
            if let index = arguments.firstIndex(of: "--port"), index + 1 < arguments.count,
                let value = Int(arguments[index + 1])
            {
                port = value
            }
            try await serve(port: port)
        case "greet":
            guard let index = arguments.firstIndex(of: "--target"), index + 1 < arguments.count else {
                print("usage: greeter greet --target HOST:PORT [name...]")
                return 2
            }
            let names = Array(arguments[(index + 2)...])
            try await remote(target: arguments[index + 1], names: names.isEmpty ? defaultNames : names)
        case "--help", "-h":
            print("usage: greeter [name...] | greeter serve [--port N] | greeter greet --target HOST:PORT [name...]")
        default:
            try await inProcess(names: arguments.isEmpty ? defaultNames : arguments)
        }
        return 0
    } catch let error as RPCError {
        print("greeter: RPC failed: \(error)")
        return 1
    } catch {
        print("greeter: \(error)")
        return 1
    }
}

exit(await main(Array(CommandLine.arguments.dropFirst())))
