// grpc-swift-bench-server: grpc.testing.BenchmarkService on grpc-swift 2 (GRPCCore 2.4.3) with its SwiftNIO
// HTTP/2 transport (grpc-swift-nio-transport 2.9.2), the peer Courier's benchmarks compare against.
// The service is registered by hand on the router (no generated grpc-swift stubs needed); the messages are
// the grpc.testing ones Courier commits.
//
//   grpc-swift-bench-server [--port N] [--threads N] [--tuned]
//
// --threads: NIO event-loop threads (default 1: the benchmarks give every server one I/O thread).
// Defaults are grpc-swift's own (64 KiB window, 100 µs flush coalescing); --tuned uses an 8 MiB window
// (grpc-swift's client default) and turns flush coalescing off. Prints one line once listening.

import BenchMessages
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import GRPCProtobuf
import NIOPosix

var port = ProcessInfo.processInfo.environment["PORT"].flatMap(Int.init) ?? 50051
var threads = 1
var tuned = false
var arguments = CommandLine.arguments.dropFirst().makeIterator()
while let argument = arguments.next() {
    switch argument {
    case "--port": port = arguments.next().flatMap(Int.init) ?? port
    case "--threads": threads = arguments.next().flatMap(Int.init) ?? threads
    case "--tuned": tuned = true
    default:
        print("usage: grpc-swift-bench-server [--port N] [--threads N] [--tuned]")
        exit(2)
    }
}

func response(to request: Grpc_Testing_SimpleRequest) -> Grpc_Testing_SimpleResponse {
    .with { $0.payload = .with { $0.body = Data(count: Int(max(0, request.responseSize))) } }
}

struct BenchmarkService: RegistrableRPCService {
    static func method(_ name: String) -> MethodDescriptor {
        MethodDescriptor(fullyQualifiedService: "grpc.testing.BenchmarkService", method: name)
    }

    func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
        let deserializer = ProtobufDeserializer<Grpc_Testing_SimpleRequest>()
        let serializer = ProtobufSerializer<Grpc_Testing_SimpleResponse>()
        router.registerHandler(
            forMethod: Self.method("UnaryCall"),
            deserializer: deserializer,
            serializer: serializer
        ) { request, _ in
            let single = try await ServerRequest(stream: request)
            return StreamingServerResponse(single: ServerResponse(message: response(to: single.message)))
        }
        // Ping-pong: one response per request until the client half-closes.
        router.registerHandler(
            forMethod: Self.method("StreamingCall"),
            deserializer: deserializer,
            serializer: serializer
        ) { request, _ in
            StreamingServerResponse { writer in
                for try await message in request.messages { try await writer.write(response(to: message)) }
                return [:]
            }
        }
        // Consumes every request, then answers once.
        router.registerHandler(
            forMethod: Self.method("StreamingFromClient"),
            deserializer: deserializer,
            serializer: serializer
        ) { request, _ in
            var last = Grpc_Testing_SimpleRequest()
            for try await message in request.messages { last = message }
            return StreamingServerResponse(single: ServerResponse(message: response(to: last)))
        }
        // Sends until the client cancels.
        router.registerHandler(
            forMethod: Self.method("StreamingFromServer"),
            deserializer: deserializer,
            serializer: serializer
        ) { request, _ in
            let single = try await ServerRequest(stream: request)
            let message = response(to: single.message)
            return StreamingServerResponse { writer in
                while !Task.isCancelled { try await writer.write(message) }
                throw CancellationError()
            }
        }
        router.registerHandler(
            forMethod: Self.method("StreamingBothWays"),
            deserializer: deserializer,
            serializer: serializer
        ) { request, _ in
            StreamingServerResponse { writer in
                for try await message in request.messages { try await writer.write(response(to: message)) }
                return [:]
            }
        }
    }
}

let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
let config = HTTP2ServerTransport.Posix.Config.defaults { config in
    if tuned {
        config.http2.targetWindowSize = 8 * 1024 * 1024
        config.connection.flushCoalescing = nil
    }
}
let transport = HTTP2ServerTransport.Posix(
    address: .ipv4(host: "0.0.0.0", port: port),
    transportSecurity: .plaintext,
    config: config,
    eventLoopGroup: group
)
let server = GRPCServer(transport: transport, services: [BenchmarkService()])
try await withThrowingDiscardingTaskGroup { tasks in
    tasks.addTask { try await server.serve() }
    if let address = try await transport.listeningAddress.ipv4 {
        print(
            "grpc-swift-bench-server listening on \(address.host):\(address.port) threads=\(threads) \(tuned ? "tuned" : "defaults")"
        )
        fflush(nil)
    }
}
