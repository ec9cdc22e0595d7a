internal import CoreMetrics
internal import Courier
internal import Synchronization

/// The instrument names of gRFC A66 ("OpenTelemetry Metrics") and the attribute names it labels them with.
///
/// Durations are `swift-metrics` timers (A66: histograms in seconds, `s`; the timers prefer seconds for
/// display); message sizes are aggregating recorders (A66: histograms in bytes, `By`); the `started`
/// instruments are counters (`{attempt}`, `{call}`).
public enum GRPCMetricName {
    /// Client attempts started; labels `grpc.method`, `grpc.target`.
    public static let clientAttemptStarted = "grpc.client.attempt.started"
    /// Client attempt duration, seconds; labels `grpc.method`, `grpc.target`, `grpc.status`.
    public static let clientAttemptDuration = "grpc.client.attempt.duration"
    /// Request message bytes per attempt, compressed, without framing; same labels.
    public static let clientAttemptSentTotalCompressedMessageSize =
        "grpc.client.attempt.sent_total_compressed_message_size"
    /// Response message bytes per attempt, compressed, without framing; same labels.
    public static let clientAttemptReceivedTotalCompressedMessageSize =
        "grpc.client.attempt.rcvd_total_compressed_message_size"
    /// Client call duration (all attempts), seconds; labels `grpc.method`, `grpc.target`, `grpc.status`.
    public static let clientCallDuration = "grpc.client.call.duration"
    /// Server calls started; label `grpc.method`.
    public static let serverCallStarted = "grpc.server.call.started"
    /// Response message bytes per call, compressed, without framing; labels `grpc.method`, `grpc.status`.
    public static let serverCallSentTotalCompressedMessageSize = "grpc.server.call.sent_total_compressed_message_size"
    /// Request message bytes per call, compressed, without framing; labels `grpc.method`, `grpc.status`.
    public static let serverCallReceivedTotalCompressedMessageSize =
        "grpc.server.call.rcvd_total_compressed_message_size"
    /// Server call duration, seconds; labels `grpc.method`, `grpc.status`.
    public static let serverCallDuration = "grpc.server.call.duration"

    /// The attribute naming the method, `package.Service/Method` (or `other`).
    public static let methodLabel = "grpc.method"
    /// The attribute naming the status code, such as `OK` or `DEADLINE_EXCEEDED`.
    public static let statusLabel = "grpc.status"
    /// The attribute naming the client's target, such as `dns:///example.com:443`.
    public static let targetLabel = "grpc.target"
    /// The value of `grpc.method` for a method outside the registered set.
    public static let otherMethod = "other"
}

/// The instruments of one side, made once per method and status and reused (swift-metrics' rule: never
/// per RPC). One lock per RPC end to find them; none per message.
final class InstrumentCache: Sendable {
    struct Ended {
        let duration: CoreMetrics.Timer
        let sent: Recorder
        let received: Recorder
        let callDuration: CoreMetrics.Timer?
    }

    private struct PerMethod {
        let label: String
        let started: Counter
        var ended: [Ended?] = Array(repeating: nil, count: Status.Code.allCases.count)
    }

    private struct Names {
        let started: String
        let duration: String
        let sent: String
        let received: String
        let callDuration: String?
    }

    private let factory: any MetricsFactory
    private let names: Names
    private let extraDimensions: [(String, String)]
    private let labeler: MethodLabeler
    private let methods = Mutex<[String: PerMethod]>([:])

    private init(
        factory: any MetricsFactory,
        names: Names,
        extraDimensions: [(String, String)],
        labeler: MethodLabeler
    ) {
        self.labeler = labeler
        self.factory = factory
        self.names = names
        self.extraDimensions = extraDimensions
    }

    static func server(factory: any MetricsFactory, labeler: MethodLabeler) -> InstrumentCache {
        InstrumentCache(
            factory: factory,
            names: Names(
                started: GRPCMetricName.serverCallStarted,
                duration: GRPCMetricName.serverCallDuration,
                sent: GRPCMetricName.serverCallSentTotalCompressedMessageSize,
                received: GRPCMetricName.serverCallReceivedTotalCompressedMessageSize,
                callDuration: nil
            ),
            extraDimensions: [],
            labeler: labeler
        )
    }

    static func client(factory: any MetricsFactory, target: String, labeler: MethodLabeler) -> InstrumentCache {
        InstrumentCache(
            factory: factory,
            names: Names(
                started: GRPCMetricName.clientAttemptStarted,
                duration: GRPCMetricName.clientAttemptDuration,
                sent: GRPCMetricName.clientAttemptSentTotalCompressedMessageSize,
                received: GRPCMetricName.clientAttemptReceivedTotalCompressedMessageSize,
                callDuration: GRPCMetricName.clientCallDuration
            ),
            extraDimensions: [(GRPCMetricName.targetLabel, target)],
            labeler: labeler
        )
    }

    /// The started counter of `method`.
    func started(_ method: MethodDescriptor) -> Counter {
        let key = labeler.key(method)
        return methods.withLock { methods in
            if let perMethod = methods[key] { return perMethod.started }
            let perMethod = makePerMethod(key)
            methods[key] = perMethod
            return perMethod.started
        }
    }

    /// The instruments recording the end of an RPC of `method` with `code`.
    func ended(_ method: MethodDescriptor, _ code: Status.Code) -> Ended {
        let key = labeler.key(method)
        return methods.withLock { methods in
            if let ended = methods[key]?.ended[code.rawValue] { return ended }
            var perMethod = methods[key] ?? makePerMethod(key)
            let dimensions =
                [(GRPCMetricName.methodLabel, perMethod.label)] + extraDimensions
                + [(GRPCMetricName.statusLabel, code.description)]
            let ended = Ended(
                duration: CoreMetrics.Timer(
                    label: names.duration,
                    dimensions: dimensions,
                    preferredDisplayUnit: .seconds,
                    factory: factory
                ),
                sent: Recorder(label: names.sent, dimensions: dimensions, aggregate: true, factory: factory),
                received: Recorder(label: names.received, dimensions: dimensions, aggregate: true, factory: factory),
                callDuration: names.callDuration.map {
                    CoreMetrics.Timer(
                        label: $0,
                        dimensions: dimensions,
                        preferredDisplayUnit: .seconds,
                        factory: factory
                    )
                }
            )
            perMethod.ended[code.rawValue] = ended
            methods[key] = perMethod
            return ended
        }
    }

    private func makePerMethod(_ key: String) -> PerMethod {
        let label = MethodLabeler.label(forKey: key)
        let started = Counter(
            label: names.started,
            dimensions: [(GRPCMetricName.methodLabel, label)] + extraDimensions,
            factory: factory
        )
        return PerMethod(label: label, started: started)
    }
}

/// Which methods get their own `grpc.method` value; the rest are `other` (gRFC A66: a scanner calling
/// random method names must not create series without bound).
struct MethodLabeler: Sendable {
    /// The services whose methods are named; `nil` names every method.
    let services: Set<String>?

    /// The cache key of `method`: its path, or `other`.
    func key(_ method: MethodDescriptor) -> String {
        if let services, !services.contains(method.service.fullyQualifiedService) {
            return GRPCMetricName.otherMethod
        }
        return method.path
    }

    /// The `grpc.method` value of a key: `package.Service/Method` (the path without its slash), or `other`.
    static func label(forKey key: String) -> String {
        key.hasPrefix("/") ? String(key.dropFirst()) : key
    }
}

extension Duration {
    /// Whole nanoseconds, clamped to `Int64`.
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (product, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        guard !overflow else { return seconds < 0 ? .min : .max }
        return product &+ attoseconds / 1_000_000_000
    }
}
