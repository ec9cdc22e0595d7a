// bench-server: grpc.testing.BenchmarkService over CourierHTTP2, for comparisons with other gRPC stacks.
//
//   swift build -c release --product bench-server
//   taskset -c 0 .build/release/bench-server --port 50051 --loops 1
//
// Flags: --port N (default $PORT, else 50051), --loops N (event loops; default one per core),
// --interceptors none|noop|observability (default none; noop: one pass-through interceptor, so the cost of
// the interceptor path alone shows; observability: CourierMetrics' and CourierTracing's server
// interceptors on swift-metrics' and swift-distributed-tracing's no-op backends). The I/O backend follows
// COURIER_IO (uring or epoll; automatic by default). Prints one line once listening.

import Courier
import CourierHTTP2
import CourierMetrics
import CourierTracing
import InteropTestService

#if canImport(Glibc)
import Glibc
#endif

var port = getenv("PORT").flatMap { Int(String(cString: $0)) } ?? 50051
var loops: Int?
var interceptorSet = "none"
var arguments = CommandLine.arguments.dropFirst().makeIterator()
while let argument = arguments.next() {
    switch argument {
    case "--port": port = arguments.next().flatMap(Int.init) ?? port
    case "--loops": loops = arguments.next().flatMap(Int.init)
    case "--interceptors": interceptorSet = arguments.next() ?? "none"
    default:
        print("usage: bench-server [--port N] [--loops N] [--interceptors none|noop|observability]")
        exit(2)
    }
}

var configuration = HTTP2ServerTransport.Configuration()
if let loops { configuration.loops = loops }
let transport = HTTP2ServerTransport(address: .ipv4(host: "0.0.0.0", port: port), configuration: configuration)
/// Passes every RPC on unchanged.
struct PassThroughInterceptor: ServerInterceptor {
    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: ServerInterceptorNext<Input, Output>
    ) async throws -> StreamingServerResponse<Output> {
        try await next(request, context)
    }
}

let interceptors: [any ServerInterceptor]
switch interceptorSet {
case "none": interceptors = []
case "noop": interceptors = [PassThroughInterceptor()]
case "observability": interceptors = [ServerTracingInterceptor(), ServerMetricsInterceptor()]
default:
    print("--interceptors takes none, noop or observability")
    exit(2)
}
let server = CourierServer(transport: transport, services: [BenchmarkService()], interceptors: interceptors)
try await withThrowingTaskGroup(of: Void.self) { group in
    group.addTask { try await server.run() }
    let address = try await transport.listeningAddress()
    print(
        "bench-server listening on \(address) loops=\(configuration.loops) io=\(IOBackend.automatic)"
            + " interceptors=\(interceptorSet)"
    )
    fflush(nil)
    try await group.waitForAll()
}
