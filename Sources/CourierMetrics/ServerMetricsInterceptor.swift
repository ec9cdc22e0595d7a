public import CoreMetrics  // init takes a MetricsFactory
public import Courier  // conforms to ServerInterceptor

/// Records gRFC A66's server instruments for every RPC: `grpc.server.call.started`,
/// `grpc.server.call.duration`, `grpc.server.call.sent_total_compressed_message_size` and
/// `grpc.server.call.rcvd_total_compressed_message_size` (see ``GRPCMetricName``), labelled with
/// `grpc.method` and, once the RPC has ended, `grpc.status`.
///
/// ```swift
/// let server = CourierServer(
///     transport: transport,
///     services: [Greeter()],
///     interceptors: [ServerMetricsInterceptor()]
/// )
/// ```
///
/// Put it first, so that it also sees RPCs that later interceptors reject. An RPC to a method the server
/// doesn't serve (answered `UNIMPLEMENTED` before any interceptor runs) is counted under `grpc.method`
/// `other`, as gRFC A66 requires, so a scanner probing random names adds no series; it is seen only when
/// the interceptor applies to every method (`.all`). `services` narrows the named methods further.
/// The duration runs from the interceptor's start to the end of the response's producer; sizes are what
/// the transport counted (`ServerContext.messageByteCounts`), zero for a transport that doesn't count.
public struct ServerMetricsInterceptor: ServerInterceptor {
    private let instruments: InstrumentCache?

    /// Creates the interceptor.
    ///
    /// - Parameters:
    ///   - services: The services whose methods keep their names in `grpc.method` (fully qualified, such
    ///     as `ping.v1.PingService`); others are `other`. `nil` (the default) keeps every name.
    ///   - factory: Where instruments are made; default: the bootstrapped `MetricsSystem.factory`, read
    ///     here (bootstrap first). With swift-metrics' no-op factory the interceptor records nothing and
    ///     passes calls straight on.
    public init(services: Set<String>? = nil, factory: (any MetricsFactory)? = nil) {
        let factory = factory ?? MetricsSystem.factory
        self.instruments =
            factory is NOOPMetricsHandler
            ? nil
            : .server(
                factory: factory,
                labeler: MethodLabeler(services: services)
            )
    }

    public func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: ServerInterceptorNext<Input, Output>
    ) async throws -> StreamingServerResponse<Output> {
        guard let instruments else { return try await next(request, context) }
        let start = ContinuousClock.now
        let perMethod = instruments.method(context.descriptor)
        perMethod.started.increment()
        let record: @Sendable (RPCError?) -> Void = { error in
            let ended = perMethod.ended(error.map { Status.Code($0.code) } ?? .ok)
            ended.duration.recordNanoseconds(start.duration(to: .now).nanoseconds)
            let counts = context.messageByteCounts ?? RPCMessageByteCounts()
            ended.sent.record(counts.sent)
            ended.received.record(counts.received)
        }
        let response: StreamingServerResponse<Output>
        do {
            response = try await next(request, context)
        } catch {
            record(RPCError(serverError: error))
            throw error
        }
        return response.observingEnd(record)
    }
}

extension ServerMetricsInterceptor: PassThroughReporting {
    /// With a no-op backend: servers and clients leave the interceptor out of their chains.
    package var passesEveryRPCThrough: Bool { instruments == nil }
}

extension ServerMetricsInterceptor: UnregisteredMethodObserving {
    /// An RPC to a method nobody serves: started and ended, `UNIMPLEMENTED`, under `grpc.method` `other`.
    package func observeUnregisteredMethod(path: String, peer: String, duration: Duration) {
        guard let instruments else { return }
        let other = instruments.other
        other.started.increment()
        let ended = other.ended(.unimplemented)
        ended.duration.recordNanoseconds(duration.nanoseconds)
        ended.sent.record(0)
        ended.received.record(0)
    }
}
