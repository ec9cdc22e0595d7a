public import Courier  // conforms to ClientInterceptor
public import Tracing  // init takes a Tracer

/// Makes a client span for every call, per OpenTelemetry's RPC conventions: named
/// `package.Service/Method`, kind client, with `rpc.system` `grpc`, `rpc.service`, `rpc.method`,
/// `server.address`/`server.port` and, at the end, `rpc.grpc.status_code`; any status but OK records the
/// error and sets an error status.
///
/// The span's parent is `ServiceContext.current`: the server span when the call is made inside a handler
/// that ``ServerTracingInterceptor`` traces. The span's context goes to the server in the request metadata
/// through the tracer's propagator (W3C `traceparent` and `tracestate` with swift-otel).
///
/// ```swift
/// let client = CourierClient(
///     transport: try .http2(target: "dns:///ping.example.com:443"),
///     interceptors: [ClientTracingInterceptor(target: "dns:///ping.example.com:443")]
/// )
/// ```
///
/// The span ends when the response body has been read to the end (the generated unary and
/// client-streaming stubs always do); a body abandoned before its end ends the span with `CANCELLED` when
/// it is released.
public struct ClientTracingInterceptor: ClientInterceptor {
    private let tracer: (any Tracer)?
    private let server: PeerAddress?

    /// Creates the interceptor.
    ///
    /// - Parameters:
    ///   - target: The target the client's transport dials (`dns:///host:port`, `host:port`, `ipv4:…`),
    ///     for `server.address` and `server.port`; `nil` leaves them out.
    ///   - tracer: The tracer; default: the bootstrapped `InstrumentationSystem.tracer`, read here (bootstrap
    ///     first). With swift-distributed-tracing's `NoOpTracer` the interceptor passes calls straight on.
    public init(target: String? = nil, tracer: (any Tracer)? = nil) {
        let tracer = tracer ?? InstrumentationSystem.tracer
        self.tracer = tracer is NoOpTracer ? nil : tracer
        self.server = target.map(PeerAddress.init(parsing:))
    }

    public func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingClientRequest<Input>,
        context: ClientContext,
        next: ClientInterceptorNext<Input, Output>
    ) async throws -> StreamingClientResponse<Output> {
        guard let tracer else { return try await next(request, context) }
        let parent = ServiceContext.current ?? .topLevel
        let descriptor = context.descriptor
        let span = tracer.startSpan(String(descriptor.path.dropFirst()), context: parent, ofKind: .client)
        if span.isRecording {
            let server = self.server
            span.updateAttributes { attributes in
                attributes[RPCAttribute.system] = "grpc"
                attributes[RPCAttribute.service] = descriptor.service.fullyQualifiedService
                attributes[RPCAttribute.method] = descriptor.method
                if let server {
                    attributes[RPCAttribute.serverAddress] = server.address
                    if let port = server.port { attributes[RPCAttribute.serverPort] = port }
                }
            }
        }
        var request = request
        tracer.inject(span.context, into: &request.metadata, using: MetadataInjector())
        let response: StreamingClientResponse<Output>
        do {
            response = try await next(request, context)
        } catch {
            span.end(with: RPCError(clientError: error), isError: { _ in true })
            throw error
        }
        return response.observingEnd { error in span.end(with: error, isError: { _ in true }) }
    }
}

extension ClientTracingInterceptor: PassThroughReporting {
    /// With a no-op backend: servers and clients leave the interceptor out of their chains.
    package var passesEveryRPCThrough: Bool { tracer == nil }
}
