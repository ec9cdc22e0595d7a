public import CoreMetrics  // init takes a MetricsFactory
public import Courier  // conforms to ClientInterceptor

/// Records gRFC A66's client instruments for every call: `grpc.client.attempt.started`,
/// `grpc.client.attempt.duration`, `grpc.client.attempt.sent_total_compressed_message_size`,
/// `grpc.client.attempt.rcvd_total_compressed_message_size` and `grpc.client.call.duration` (see
/// ``GRPCMetricName``), labelled with `grpc.method`, `grpc.target` and, once the call has ended,
/// `grpc.status`.
///
/// ```swift
/// let client = CourierClient(
///     transport: try .http2(target: "dns:///ping.example.com:443"),
///     interceptors: [ClientMetricsInterceptor(target: "dns:///ping.example.com:443")]
/// )
/// ```
///
/// The interceptor sees each call once, above retries and hedging; the attempt instruments record each
/// attempt the call makes under a retry or hedging policy (its own duration, status and sizes, a hedge
/// that lost as `CANCELLED`), and `grpc.client.call.duration` the call. Without a policy the call is its
/// one attempt. The call ends when its response body has been read to the end (the generated unary and
/// client-streaming stubs always do); a body abandoned before its end records `CANCELLED` when it is
/// released.
public struct ClientMetricsInterceptor: ClientInterceptor {
    private let instruments: InstrumentCache?

    /// Creates the interceptor.
    ///
    /// - Parameters:
    ///   - target: The `grpc.target` value: the target the client's transport dials, as given to it.
    ///   - services: The services whose methods keep their names in `grpc.method` (fully qualified);
    ///     calls to others are `other`. `nil` (the default) keeps every name: right for generated stubs,
    ///     whose method names are fixed at compile time.
    ///   - factory: Where instruments are made; default: the bootstrapped `MetricsSystem.factory`, read
    ///     here (bootstrap first). With swift-metrics' no-op factory the interceptor records nothing and
    ///     passes calls straight on.
    public init(target: String, services: Set<String>? = nil, factory: (any MetricsFactory)? = nil) {
        let factory = factory ?? MetricsSystem.factory
        self.instruments =
            factory is NOOPMetricsHandler
            ? nil
            : .client(
                factory: factory,
                target: target,
                labeler: MethodLabeler(services: services)
            )
    }

    public func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingClientRequest<Input>,
        context: ClientContext,
        next: ClientInterceptorNext<Input, Output>
    ) async throws -> StreamingClientResponse<Output> {
        guard let instruments else { return try await next(request, context) }
        let start = ContinuousClock.now
        let perMethod = instruments.method(context.descriptor)
        let record: @Sendable (RPCError?) -> Void
        var context = context
        if context.reportsAttempts {
            // Attempts are recorded as they end (below, by the executor); the call's duration here.
            context.attemptObservers.append(AttemptMetrics(perMethod))
            record = { error in
                perMethod.ended(error.map { Status.Code($0.code) } ?? .ok).callDuration?
                    .recordNanoseconds(start.duration(to: .now).nanoseconds)
            }
        } else {
            perMethod.started.increment()
            record = { [context] error in
                let ended = perMethod.ended(error.map { Status.Code($0.code) } ?? .ok)
                let nanoseconds = start.duration(to: .now).nanoseconds
                ended.duration.recordNanoseconds(nanoseconds)
                ended.callDuration?.recordNanoseconds(nanoseconds)
                let counts = context.messageByteCounts ?? RPCMessageByteCounts()
                ended.sent.record(counts.sent)
                ended.received.record(counts.received)
            }
        }
        let response: StreamingClientResponse<Output>
        do {
            response = try await next(request, context)
        } catch {
            record(RPCError(clientError: error))
            throw error
        }
        return response.observingEnd(record)
    }
}

extension ClientMetricsInterceptor: PassThroughReporting {
    /// With a no-op backend: servers and clients leave the interceptor out of their chains.
    package var passesEveryRPCThrough: Bool { instruments == nil }
}

/// Records each attempt of a call with a retry or hedging policy: started, and its duration, status and
/// sizes when it ends.
private struct AttemptMetrics: ClientAttemptObserving {
    let perMethod: MethodInstruments

    init(_ perMethod: MethodInstruments) { self.perMethod = perMethod }

    func attemptStarted(_ number: Int) -> @Sendable (RPCError?, RPCMessageByteCounts?) -> Void {
        perMethod.started.increment()
        let start = ContinuousClock.now
        let perMethod = self.perMethod
        return { error, counts in
            let ended = perMethod.ended(error.map { Status.Code($0.code) } ?? .ok)
            ended.duration.recordNanoseconds(start.duration(to: .now).nanoseconds)
            let counts = counts ?? RPCMessageByteCounts()
            ended.sent.record(counts.sent)
            ended.received.record(counts.received)
        }
    }
}
