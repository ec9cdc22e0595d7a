// The key-value server: kv.KeyValue over HTTP/2 (h2c), its store in one actor.
//
//   swift run kv-server [--port 50052] [--loops N] [--store loop|plain|global]
//
// --store loop (the default) runs the store's actor on the event loop serving the RPCs: a handler calls
// it without a thread hop. --store plain keeps it a plain actor, and --store global calls that plain actor
// from Swift's global executor (a thread hop each way): both for comparison (Benchmarks/KeyValue).

import Courier
import CourierHTTP2
import KeyValueService

#if canImport(Glibc)
import Glibc
#endif

nonisolated func main() async throws {
    var port = 50052
    var loops: Int?
    var placement = KeyValueService.Placement.loop
    var arguments = CommandLine.arguments.dropFirst()
    while let argument = arguments.popFirst() {
        switch (argument, arguments.popFirst()) {
        case ("--port", let value?) where Int(value) != nil: port = Int(value)!
        case ("--loops", let value?) where Int(value) != nil: loops = Int(value)!
        case ("--store", let value?) where KeyValueService.Placement(rawValue: value) != nil:
            placement = KeyValueService.Placement(rawValue: value)!
        default:
            print("usage: kv-server [--port PORT] [--loops N] [--store loop|plain|global]")
            exit(2)
        }
    }
    var configuration = HTTP2ServerTransport.Configuration()
    if let loops { configuration.loops = loops }
    let transport = HTTP2ServerTransport(address: .ipv4(host: "127.0.0.1", port: port), configuration: configuration)
    let server = CourierServer(transport: transport, services: [KeyValueService(placement: placement)])
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await server.run() }
        print("kv-server listening on \(try await transport.listeningAddress()), store: \(placement.rawValue)")
        fflush(nil)  // the line is a readiness signal for scripts
        try await group.waitForAll()
    }
}

try await main()
