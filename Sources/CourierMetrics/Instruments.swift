internal import CoreMetrics
@_spi(CourierInternals) internal import Courier
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

/// The instruments of one method: the started counter, and the end instruments per status, made on first
/// use (swift-metrics' rule: never per RPC). One lock per RPC end, on this method's table; none per message.
final class MethodInstruments: Sendable {
    struct Ended: Sendable {
        let duration: CoreMetrics.Timer
        let sent: Recorder
        let received: Recorder
        let callDuration: CoreMetrics.Timer?
    }

    let started: Counter
    private let make: @Sendable (Status.Code) -> Ended
    private let ends = CourierMutex<[Ended?]>(Array(repeating: nil, count: Status.Code.allCases.count))

    init(started: Counter, make: @escaping @Sendable (Status.Code) -> Ended) {
        self.started = started
        self.make = make
    }

    /// The instruments recording an end with `code`.
    func ended(_ code: Status.Code) -> Ended {
        ends.withLock { ends in
            if let ended = ends[code.rawValue] { return ended }
            let ended = make(code)
            ends[code.rawValue] = ended
            return ended
        }
    }
}

/// The instruments of one side, per method; one lock per RPC start to find them.
final class InstrumentCache: Sendable {
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
    private let methods = CourierMutex<[String: MethodInstruments]>([:])

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

    /// The instruments of `method`.
    func method(_ method: MethodDescriptor) -> MethodInstruments { instruments(forKey: labeler.key(method)) }

    /// The instruments of the methods outside the registered set, `grpc.method` `other`.
    var other: MethodInstruments { instruments(forKey: GRPCMetricName.otherMethod) }

    private func instruments(forKey key: String) -> MethodInstruments {
        methods.withLock { methods in
            if let instruments = methods[key] { return instruments }
            let instruments = make(key)
            methods[key] = instruments
            return instruments
        }
    }

    private func make(_ key: String) -> MethodInstruments {
        let label = MethodLabeler.label(forKey: key)
        let base = [(GRPCMetricName.methodLabel, label)] + extraDimensions
        let started = Counter(label: names.started, dimensions: base, factory: factory)
        let names = self.names
        let factory = self.factory
        return MethodInstruments(started: started) { code in
            let dimensions = base + [(GRPCMetricName.statusLabel, code.description)]
            return MethodInstruments.Ended(
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
        }
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
