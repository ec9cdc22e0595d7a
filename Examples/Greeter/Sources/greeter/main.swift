// The greeter's client: exercises each of the four kinds against the greeter service.
//
//   swift run greeter [name...]
//
// It serves the greeter and calls it in one process, over the in-memory transport; with the HTTP/2
// transport, the same client code dials a greeter on another machine.

import Courier
import CourierInMemory
import GreeterService
import SwiftProtobuf
#if canImport(Glibc)
import Glibc
#endif

let names = CommandLine.arguments.dropFirst().isEmpty ? ["Ada", "Grace", "Linus"] : Array(CommandLine.arguments.dropFirst())

nonisolated func greet(_ names: [String]) async throws {
    let transport = InMemoryTransport()
    try await withCourierServer(transport: transport.server, services: [Greeter()]) { _ in
        try await withCourierClient(transport: transport.client) { courier in
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
    }
}

do {
    try await greet(names)
} catch let error as RPCError {
    print("greeter: RPC failed: \(error)")
    exit(1)
}
