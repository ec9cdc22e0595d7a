// bench-server: grpc.testing.BenchmarkService over CourierHTTP2, for comparisons with other gRPC stacks.
//
//   swift build -c release --product bench-server
//   taskset -c 0 .build/release/bench-server --port 50051 --loops 1
//
// Flags: --port N (default $PORT, else 50051), --loops N (event loops; default one per core). The I/O
// backend follows COURIER_IO (uring or epoll; automatic by default). Prints one line once listening.

import Courier
import CourierHTTP2
import InteropTestService

#if canImport(Glibc)
import Glibc
#endif

var port = getenv("PORT").flatMap { Int(String(cString: $0)) } ?? 50051
var loops: Int?
var arguments = CommandLine.arguments.dropFirst().makeIterator()
while let argument = arguments.next() {
    switch argument {
    case "--port": port = arguments.next().flatMap(Int.init) ?? port
    case "--loops": loops = arguments.next().flatMap(Int.init)
    default:
        print("usage: bench-server [--port N] [--loops N]")
        exit(2)
    }
}

var configuration = HTTP2ServerTransport.Configuration()
if let loops { configuration.loops = loops }
let transport = HTTP2ServerTransport(address: .ipv4(host: "0.0.0.0", port: port), configuration: configuration)
let server = CourierServer(transport: transport, services: [BenchmarkService()])
try await withThrowingTaskGroup(of: Void.self) { group in
    group.addTask { try await server.run() }
    let address = try await transport.listeningAddress()
    print("bench-server listening on \(address) loops=\(configuration.loops) io=\(IOBackend.automatic)")
    fflush(nil)
    try await group.waitForAll()
}
