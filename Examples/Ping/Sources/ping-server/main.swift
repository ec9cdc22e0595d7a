// ping-server: ping.PingService for Knative Serving (or any container platform).
//
//   PORT=8080 ping-server
//
// Environment:
//   PORT                 the port to listen on, on all interfaces (default 8080); cleartext HTTP/2 (h2c),
//                        as Knative's queue-proxy speaks to a container port named h2c
//   PING_DRAIN_SECONDS   on SIGTERM/SIGINT, how long in-flight RPCs may take to finish (default 20, below
//                        Knative's 30 s termination grace period)
//   PING_AUTH_TOKEN      when set, RPCs need `authorization: Bearer <token>` (health checks stay open)
//   PING_LOG_LEVEL       trace, debug, info (default), notice, warning, error, critical
//   PING_HOST            the IPv4 address to listen on (default 0.0.0.0, all interfaces)
//   PING_TLS_CERT, PING_TLS_KEY
//                        PEM files: serve TLS (h2 by ALPN) instead of h2c, where no proxy terminates TLS
//   PING_STATS_FILE      keep `connections=N streams=M` (open connections, live streams) in this file,
//                        rewritten every 200 ms: for dev/soak.sh
//
// Serves grpc.health.v1.Health (Check and Watch) for Kubernetes gRPC probes; NOT_SERVING once draining.
// Runs in a swift-service-lifecycle ServiceGroup: on SIGTERM or SIGINT, health NOT_SERVING, stop
// accepting, send GOAWAY, let in-flight RPCs finish within the grace period, exit 0.

import ConnectionStats
import Courier
import CourierHTTP2
import CourierHealth
import CourierReflection
import CourierServiceLifecycle
import Logging
import PingService
import ServiceLifecycle
import UnixSignals

#if canImport(Glibc)
import Glibc
#endif

let environment = ProcessEnvironment()
LoggingSystem.bootstrap { label in
    var handler = StreamLogHandler.standardOutput(label: label)
    handler.logLevel = Logger.Level(rawValue: environment["PING_LOG_LEVEL"] ?? "info") ?? .info
    return handler
}
let logger = Logger(label: "ping-server")

/// The process environment, one variable at a time (`getenv`; nothing in this process sets variables). Copying
/// the whole environment into a dictionary first was ≈2.6 % of a cold start's CPU: the first use of
/// `Dictionary<String, String>` and a hash per variable (Benchmarks/ColdStart/README.md).
struct ProcessEnvironment: Sendable {
    /// The variable's value; nil when it is unset or empty.
    subscript(_ name: String) -> String? {
        guard let value = getenv(name) else { return nil }
        let text = String(cString: value)
        return text.isEmpty ? nil : text
    }
}

/// Logs the address once the transport listens; then done (the group ignores its return).
/// `CustomStringConvertible` (here and in `StatsPublisher`): `ServiceGroup` names each service by
/// `"\(service)"`, which otherwise describes the struct field by field through reflection before `listen`.
struct ListeningAnnouncement: Service, CustomStringConvertible {
    let transport: HTTP2ServerTransport
    let metadata: Logger.Metadata
    var description: String { "ListeningAnnouncement" }

    func run() async throws {
        let address = try await transport.listeningAddress()
        var metadata = self.metadata
        metadata["address"] = "\(address)"
        logger.info("listening", metadata: metadata)
    }
}

/// Publishes the connection and stream counts (`PING_STATS_FILE`) until the shutdown begins.
struct StatsPublisher: Service, CustomStringConvertible {
    let stats: ConnectionStats
    let path: String
    var description: String { "StatsPublisher" }

    func run() async throws {
        await cancelWhenGracefulShutdown { await stats.publish(to: path) }
    }
}

func serve() async throws -> Int32 {
    let port: Int
    if let text = environment["PORT"] {
        guard let value = Int(text), (0...65535).contains(value) else {
            logger.critical("PORT must be a port number", metadata: ["PORT": "\(text)"])
            return 2
        }
        port = value
    } else {
        port = 8080
        logger.info("PORT is not set; using 8080")
    }
    let drainSeconds = environment["PING_DRAIN_SECONDS"].flatMap(Double.init) ?? 20
    let host = environment["PING_HOST"] ?? "0.0.0.0"
    var configuration = HTTP2ServerTransport.Configuration()
    switch (environment["PING_TLS_CERT"], environment["PING_TLS_KEY"]) {
    case (let certificate?, let key?):
        configuration.tls = .server(certificateChainFile: certificate, privateKeyFile: key)
    case (nil, nil):
        break
    default:
        logger.critical("PING_TLS_CERT and PING_TLS_KEY go together")
        return 2
    }
    let stats = ConnectionStats()
    let statsFile = environment["PING_STATS_FILE"]
    if statsFile != nil { configuration.connectionObserver = stats }
    let token = environment["PING_AUTH_TOKEN"]

    let health = HealthService()
    health.setStatus(.serving, forService: "ping.PingService")
    var interceptors: [any ServerInterceptor] = [RequestLoggingInterceptor(logger: logger)]
    if let token {
        interceptors.append(
            BearerTokenServerInterceptor(
                validator: .staticTokens([token]),
                requiresAuthentication: { $0.service.fullyQualifiedService != "grpc.health.v1.Health" }
            )
        )
    }
    let transport = HTTP2ServerTransport(address: .ipv4(host: host, port: port), configuration: configuration)
    // Server reflection (`grpcurl -plaintext localhost:8080 list`); behind the token like PingService.
    let reflection = try ReflectionService(fileDescriptorProtos: [
        Ping_PingService.fileDescriptorProtos, Grpc_Health_V1_Health.fileDescriptorProtos,
    ])
    let services: [any RegistrableRPCService] = [PingService(), health, reflection]
    let server = CourierServer(transport: transport, services: services, interceptors: interceptors)

    // SIGTERM or SIGINT: health NOT_SERVING, then the library drains: GOAWAY (two-phase) on every
    // connection, and when the grace period has passed the RPCs still running are cancelled.
    let service = CourierServerService(server, grace: .milliseconds(Int64(drainSeconds * 1000))) {
        health.markAllNotServing()
        logger.info(
            "draining: no new connections, GOAWAY sent, in-flight RPCs may finish",
            metadata: ["grace_seconds": "\(drainSeconds)"]
        )
    }
    let announcement = ListeningAnnouncement(
        transport: transport,
        metadata: [
            "h2c": "\(configuration.tls == nil)", "auth": "\(token == nil ? "off" : "bearer token")",
            "drain_seconds": "\(drainSeconds)",
            "io": "\(IOBackend.automatic)", "io_reason": "\(IOBackend.automaticReason)",
        ]
    )
    var groupServices: [ServiceGroupConfiguration.ServiceConfiguration] = [
        .init(service: announcement, successTerminationBehavior: .ignore),
        .init(service: service),
    ]
    if let statsFile {
        groupServices.append(
            .init(service: StatsPublisher(stats: stats, path: statsFile), successTerminationBehavior: .ignore)
        )
    }
    let group = ServiceGroup(
        configuration: ServiceGroupConfiguration(
            services: groupServices,
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: Logger(label: "ping-server.lifecycle", factory: { _ in SwiftLogNoOpLogHandler() })
        )
    )
    try await group.run()
    logger.info("stopped: every RPC has finished or was cancelled at the end of the grace period")
    return 0
}

do {
    exit(try await serve())
} catch {
    logger.critical("failed", metadata: ["error": "\(error)"])
    exit(1)
}
