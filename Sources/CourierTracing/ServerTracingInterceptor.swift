public import Courier  // conforms to ServerInterceptor
public import Tracing  // init takes a Tracer

/// Makes a server span for every RPC, per OpenTelemetry's RPC conventions: named
/// `package.Service/Method`, kind server, with `rpc.system` `grpc`, `rpc.service`, `rpc.method`,
/// `network.peer.address`/`network.peer.port` and, at the end, `rpc.grpc.status_code`; the error and an
/// error status for the codes the conventions call server errors.
///
/// The span's parent is the context the client propagated in the request metadata (W3C `traceparent`
/// and `tracestate` with swift-otel's default propagator), extracted through the tracer. The handler —
/// and the producer of a streaming response — run with the span's context as
/// `ServiceContext.current`, so a client call made while handling the RPC (through
/// ``ClientTracingInterceptor``) is the span's child without any code in the handler.
///
/// ```swift
/// let server = CourierServer(
///     transport: transport,
///     services: [Greeter()],
///     interceptors: [ServerTracingInterceptor()]
/// )
/// ```
public struct ServerTracingInterceptor: ServerInterceptor {
    private let tracer: (any Tracer)?

    /// Creates the interceptor.
    ///
    /// - Parameter tracer: The tracer; default: the bootstrapped `InstrumentationSystem.tracer`, read here
    ///   (bootstrap first). With swift-distributed-tracing's `NoOpTracer` the interceptor passes RPCs
    ///   straight on.
    public init(tracer: (any Tracer)? = nil) {
        let tracer = tracer ?? InstrumentationSystem.tracer
        self.tracer = tracer is NoOpTracer ? nil : tracer
    }

    public func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: ServerInterceptorNext<Input, Output>
    ) async throws -> StreamingServerResponse<Output> {
        guard let tracer else { return try await next(request, context) }
        var parent = ServiceContext.current ?? .topLevel
        tracer.extract(request.metadata, into: &parent, using: MetadataExtractor())
        let descriptor = context.descriptor
        let span = tracer.startSpan(String(descriptor.path.dropFirst()), context: parent, ofKind: .server)
        if span.isRecording {
            let peer = PeerAddress(parsing: context.peer)
            span.updateAttributes { attributes in
                attributes[RPCAttribute.system] = "grpc"
                attributes[RPCAttribute.service] = descriptor.service.fullyQualifiedService
                attributes[RPCAttribute.method] = descriptor.method
                attributes[RPCAttribute.peerAddress] = peer.address
                if let port = peer.port { attributes[RPCAttribute.peerPort] = port }
            }
        }
        let spanContext = span.context
        let response: StreamingServerResponse<Output>
        do {
            response = try await ServiceContext.withValue(spanContext) { try await next(request, context) }
        } catch {
            span.end(with: RPCError(serverError: error), isError: \.isServerError)
            throw error
        }
        var traced = response
        if case .success(var contents) = response.accepted {
            let producer = contents.producer
            contents.producer = { writer in
                try await ServiceContext.withValue(spanContext) { try await producer(writer) }
            }
            traced.accepted = .success(contents)
        }
        return traced.observingEnd { error in span.end(with: error, isError: \.isServerError) }
    }
}

extension ServerTracingInterceptor: PassThroughReporting {
    /// With a no-op backend: servers and clients leave the interceptor out of their chains.
    package var passesEveryRPCThrough: Bool { tracer == nil }
}
