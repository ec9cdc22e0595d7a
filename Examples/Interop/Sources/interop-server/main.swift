// interop-server: grpc.testing.TestService over Courier's HTTP/2 transport, with the flags of the
// official interop servers.
//
//   interop-server --port 50051
//
// Flags: --port N (or --port=N; default 50051; 0: any free port, printed); --host A (the IPv4 address to
// listen on, default 0.0.0.0); --use_tls --tls_cert_file F --tls_key_file F; connection
// management with grpc-go's names, in milliseconds: --keepalive_time_ms, --keepalive_timeout_ms,
// --max_connection_idle_ms, --max_connection_age_ms, --max_connection_age_grace_ms, --keepalive_min_time_ms,
// --keepalive_permit_without_calls. Not an official flag: --stats_file F, where the server keeps one line,
// `connections=N streams=M`, with its open connections and live streams (rewritten every 200 ms, for
// dev/soak.sh, which reads it from outside the process). On SIGTERM (or SIGINT) it shuts down gracefully — the two-phase GOAWAY on
// every connection, running RPCs finish — and exits 0.

import ConnectionStats
import Courier
import CourierHTTP2
import CourierHealth
import CourierReflection
import Dispatch
import GRPCTestingProtos
import InteropTestService

#if canImport(Glibc)
import Glibc
#endif

struct Options {
    var host = "0.0.0.0"
    var port = 50051
    var useTLS = false
    var certificateFile: String?
    var keyFile: String?
    var statsFile: String?
    var transport = HTTP2ServerTransport.Configuration()
}

/// A millisecond flag's value.
nonisolated func milliseconds(_ value: String?) -> Duration? {
    guard let value, let number = Int64(value), number >= 0 else { return nil }
    return .milliseconds(number)
}

nonisolated func parse(_ arguments: [String]) -> Options? {
    var options = Options()
    var index = 0
    while index < arguments.count {
        var flag = arguments[index]
        var value: String?
        if let equals = flag.firstIndex(of: "=") {
            value = String(flag[flag.index(after: equals)...])
            flag = String(flag[..<equals])
        } else if index + 1 < arguments.count, !arguments[index + 1].hasPrefix("--") {
            value = arguments[index + 1]
            index += 1
        }
        switch flag {
        case "--port":
            guard let port = value.flatMap(Int.init), (0...65535).contains(port) else { return nil }
            options.port = port
        case "--host":
            guard let value else { return nil }
            options.host = value
        case "--use_tls": options.useTLS = value == nil || value == "true"
        case "--tls_cert_file": options.certificateFile = value
        case "--tls_key_file": options.keyFile = value
        case "--stats_file":
            guard let value else { return nil }
            options.statsFile = value
        case "--keepalive_time_ms":
            guard let time = milliseconds(value) else { return nil }
            options.transport.keepaliveTime = time
        case "--keepalive_timeout_ms":
            guard let timeout = milliseconds(value) else { return nil }
            options.transport.keepaliveTimeout = timeout
        case "--max_connection_idle_ms":
            guard let idle = milliseconds(value) else { return nil }
            options.transport.maxConnectionIdle = idle
        case "--max_connection_age_ms":
            guard let age = milliseconds(value) else { return nil }
            options.transport.maxConnectionAge = age
        case "--max_connection_age_grace_ms":
            guard let grace = milliseconds(value) else { return nil }
            options.transport.maxConnectionAgeGrace = grace
        case "--keepalive_min_time_ms":
            guard let minimum = milliseconds(value) else { return nil }
            options.transport.minPingInterval = minimum
        case "--keepalive_permit_without_calls":
            options.transport.permitPingsWithoutStreams = value == nil || value == "true"
        default:
            print("interop-server: unknown flag \(flag)")
            return nil
        }
        index += 1
    }
    if options.useTLS, options.certificateFile == nil || options.keyFile == nil {
        print("interop-server: --use_tls needs --tls_cert_file and --tls_key_file")
        return nil
    }
    return options
}

/// SIGTERM or SIGINT: the first one delivered.
nonisolated func terminationSignal() async {
    let (stream, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingOldest(1))
    let sources = [SIGTERM, SIGINT].map { number in
        signal(number, SIG_IGN)  // handled by the dispatch source instead
        let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
        source.setEventHandler { continuation.yield() }
        source.resume()
        return source
    }
    for await _ in stream { break }
    _ = sources  // kept alive until the signal came
}

nonisolated func serve(_ options: Options) async throws {
    var configuration = options.transport
    if options.useTLS, let certificate = options.certificateFile, let key = options.keyFile {
        configuration.tls = .server(certificateChainFile: certificate, privateKeyFile: key)
    }
    let counter = ConnectionStats()
    if options.statsFile != nil { configuration.connectionObserver = counter }
    let transport = HTTP2ServerTransport(
        address: .ipv4(host: options.host, port: options.port),
        configuration: configuration
    )
    // Health and reflection too, so that grpcurl and probes work against it.
    let reflection = try ReflectionService(fileDescriptorProtos: [
        Grpc_Testing_TestService.fileDescriptorProtos, Grpc_Health_V1_Health.fileDescriptorProtos,
    ])
    let services: [any RegistrableRPCService] = [TestService.Registration(), HealthService(), reflection]
    let server = CourierServer(transport: transport, services: services)
    try await withThrowingTaskGroup(of: Bool.self) { group in
        group.addTask {
            try await server.run()
            return true
        }
        if let statsFile = options.statsFile {
            group.addTask {
                await counter.publish(to: statsFile)
                return false
            }
        }
        group.addTask {
            await terminationSignal()
            print("interop-server: signalled; shutting down gracefully")
            fflush(nil)
            server.beginGracefulShutdown()
            return false
        }
        let address = try await transport.listeningAddress()
        print(
            "interop-server listening on \(address)\(options.useTLS ? " (TLS)" : "") io=\(IOBackend.automatic) (\(IOBackend.automaticReason))"
        )
        fflush(nil)  // all streams: the line is a readiness signal for scripts
        // Until run() returns: every RPC has finished.
        while let serverStopped = try await group.next(), !serverStopped {}
        group.cancelAll()
        print("interop-server: stopped")
        fflush(nil)
    }
}

guard let options = parse(Array(CommandLine.arguments.dropFirst())) else {
    print(
        "usage: interop-server [--port N] [--host A] [--use_tls --tls_cert_file F --tls_key_file F] [--keepalive_time_ms N]"
            + " [--keepalive_timeout_ms N] [--max_connection_idle_ms N] [--max_connection_age_ms N]"
            + " [--max_connection_age_grace_ms N] [--keepalive_min_time_ms N] [--keepalive_permit_without_calls]"
            + " [--stats_file F]"
    )
    exit(2)
}
do {
    try await serve(options)
} catch {
    print("interop-server: \(error)")
    exit(1)
}
