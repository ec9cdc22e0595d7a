// interop-server: grpc.testing.TestService over Courier's HTTP/2 transport, with the flags of the
// official interop servers.
//
//   interop-server --port 50051
//
// Flags: --port N (or --port=N; default 50051). TLS flags arrive with the TLS transport.

import Courier
import CourierHTTP2
import InteropTestService
#if canImport(Glibc)
import Glibc
#endif

nonisolated func parsePort(_ arguments: [String]) -> Int? {
    var port = 50051
    var index = 0
    while index < arguments.count {
        let argument = arguments[index]
        if argument.hasPrefix("--port=") {
            guard let value = Int(argument.dropFirst("--port=".count)) else { return nil }
            port = value
        } else if argument == "--port", index + 1 < arguments.count {
            guard let value = Int(arguments[index + 1]) else { return nil }
            port = value
            index += 1
        } else if argument == "--help" || argument == "-h" {
            return nil
        } else {
            print("interop-server: unknown flag \(argument)")
            return nil
        }
        index += 1
    }
    return (0...65535).contains(port) ? port : nil
}

nonisolated func serve(port: Int) async throws {
    let transport = HTTP2ServerTransport(address: .ipv4(host: "0.0.0.0", port: port))
    let server = CourierServer(transport: transport, services: [TestService()])
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await server.run() }
        let address = try await transport.listeningAddress()
        print("interop-server listening on \(address)")
        fflush(nil)  // all streams: the line is a readiness signal for scripts
        try await group.waitForAll()
    }
}

guard let port = parsePort(Array(CommandLine.arguments.dropFirst())) else {
    print("usage: interop-server [--port N]")
    exit(2)
}
try await serve(port: port)
