// observed-ping-server: ping-server (Examples/Ping) exporting traces and metrics to an OpenTelemetry
// collector over OTLP/gRPC with swift-otel.
//
//   OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317 OTEL_SERVICE_NAME=ping PORT=8080 observed-ping-server
//
// The same flags as ping-server: PORT, PING_DRAIN_SECONDS, PING_AUTH_TOKEN, PING_LOG_LEVEL, health, and the
// drain on SIGTERM. With OTEL_EXPORTER_OTLP_ENDPOINT set, swift-otel is bootstrapped (the standard OTEL_*
// variables configure it: OTEL_SERVICE_NAME, OTEL_METRIC_EXPORT_INTERVAL, OTEL_TRACES_SAMPLER, …; the
// protocol defaults to grpc here) and every RPC gets a server span and gRFC A66 metrics; without it, the
// interceptors record into swift-metrics' and swift-distributed-tracing's no-op defaults.

import Courier
import CourierHTTP2
import CourierHealth
import CourierMetrics
import CourierServiceLifecycle
import CourierTracing
import Logging
import OTel
import PingService
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// The process environment, read once.
func readEnvironment() -> [String: String] {
    var values: [String: String] = [:]
    var pointer = environ
    while let entry = pointer.pointee {
        let text = String(cString: entry)
        if let equals = text.firstIndex(of: "=") {
            values[String(text[..<equals])] = String(text[text.index(after: equals)...])
        }
        pointer += 1
    }
    return values
}

let environment = readEnvironment().filter { !$0.value.isEmpty }
let logLevel = Logger.Level(rawValue: environment["PING_LOG_LEVEL"] ?? "info") ?? .info
LoggingSystem.bootstrap { label in
    var handler = StreamLogHandler.standardOutput(label: label)
    handler.logLevel = logLevel
    return handler
}
let logger = Logger(label: "observed-ping-server")

/// Logs the address once the transport listens; then done (the group ignores its return).
struct ListeningAnnouncement: Service {
    let transport: HTTP2ServerTransport
    let metadata: Logger.Metadata

    func run() async throws {
        let address = try await transport.listeningAddress()
        var metadata = self.metadata
        metadata["address"] = "\(address)"
        logger.info("listening", metadata: metadata)
    }
}

func serve() async throws -> Int32 {
    guard let port = environment["PORT"].map({ Int($0) }) ?? 8080, (0...65535).contains(port) else {
        logger.critical("PORT must be a port number")
        return 2
    }
    let drainSeconds = environment["PING_DRAIN_SECONDS"].flatMap(Double.init) ?? 20
    let token = environment["PING_AUTH_TOKEN"]

    // OpenTelemetry: metrics and traces over OTLP/gRPC when an endpoint is configured. Logs stay on stdout.
    var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
    if environment["OTEL_EXPORTER_OTLP_ENDPOINT"] != nil {
        var otel = OTel.Configuration.default
        otel.logs.enabled = false
        otel.traces.otlpExporter.protocol = .grpc
        otel.metrics.otlpExporter.protocol = .grpc
        let observability = try OTel.bootstrap(configuration: otel)
        services.append(.init(service: observability))
    }

    let health = HealthService()
    health.setStatus(.serving, forService: "ping.PingService")
    var interceptors: [any ServerInterceptor] = [
        ServerTracingInterceptor(),
        ServerMetricsInterceptor(),
        RequestLoggingInterceptor(logger: logger),
    ]
    if let token {
        interceptors.append(
            BearerTokenServerInterceptor(
                validator: .staticTokens([token]),
                requiresAuthentication: { $0.service.fullyQualifiedService != "grpc.health.v1.Health" }
            )
        )
    }
    var configuration = HTTP2ServerTransport.Configuration()
    configuration.logger = logger
    configuration.connectionObserver = ConnectionMetrics(side: .server)
    let transport = HTTP2ServerTransport(address: .ipv4(host: "0.0.0.0", port: port), configuration: configuration)
    let server = CourierServer(transport: transport, services: [PingService(), health], interceptors: interceptors)

    let service = CourierServerService(server, grace: .milliseconds(Int64(drainSeconds * 1000))) {
        health.markAllNotServing()
        logger.info("draining: no new connections, GOAWAY sent, in-flight RPCs may finish")
    }
    let announcement = ListeningAnnouncement(
        transport: transport,
        metadata: [
            "h2c": "true", "auth": "\(token == nil ? "off" : "bearer token")", "drain_seconds": "\(drainSeconds)",
            "otlp": "\(environment["OTEL_EXPORTER_OTLP_ENDPOINT"] ?? "off")",
        ]
    )
    // The server last: a group shuts down in reverse order, so the exporter flushes after the drain.
    services += [.init(service: announcement, successTerminationBehavior: .ignore), .init(service: service)]
    let group = ServiceGroup(
        configuration: ServiceGroupConfiguration(
            services: services,
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: Logger(label: "observed-ping-server.lifecycle", factory: { _ in SwiftLogNoOpLogHandler() })
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
