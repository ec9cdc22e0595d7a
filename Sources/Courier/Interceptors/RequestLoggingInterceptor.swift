public import Logging  // the interceptor takes a Logger

/// Logs one line per RPC when it ends: the method, the peer, the status and the duration.
///
/// ```swift
/// let server = CourierServer(
///     transport: transport,
///     services: [Greeter()],
///     interceptors: [RequestLoggingInterceptor(logger: logger)]
/// )
/// ```
///
/// The message is always `rpc`; the data are metadata under OpenTelemetry's names where they exist:
/// `rpc.method` (the path), `rpc.grpc.status_code` (the name, such as `NOT_FOUND`),
/// `network.peer.address` (the transport's peer, such as `ipv4:10.0.0.7:51234`) and
/// `courier.duration_ms`. Successes and client-side failures log at `info`, server-side failures
/// (`UNKNOWN`, `INTERNAL`, `DATA_LOSS`) at `warning`. No request metadata is logged unless named in
/// `metadataKeys`, and even then never `authorization`, `cookie` nor a `-bin` value, so tokens and binary
/// payloads stay out of the logs; messages are never logged.
///
/// Put it first, so that it also sees what later interceptors (such as authentication) decide. An RPC to
/// a method the server doesn't serve gets its line too (`UNIMPLEMENTED`, the path cut at 256 bytes) when
/// the interceptor applies to every method.
public struct RequestLoggingInterceptor: ServerInterceptor {
    private let logger: Logger
    private let metadataKeys: [String]

    /// Keys never logged, whatever `metadataKeys` says.
    static let secretKeys: Set<String> = ["authorization", "cookie", "proxy-authorization"]

    /// Creates the interceptor.
    ///
    /// - Parameters:
    ///   - logger: Where the lines go.
    ///   - metadataKeys: Request metadata to log with each line (lowercase keys, such as `x-request-id`),
    ///     under `rpc.request.metadata.<key>`; `authorization`, `cookie` and `-bin` keys are skipped.
    public init(logger: Logger, metadataKeys: [String] = []) {
        self.logger = logger
        self.metadataKeys = metadataKeys.map { $0.lowercased() }.filter {
            !Self.secretKeys.contains($0) && !$0.hasSuffix("-bin")
        }
    }

    public func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: ServerInterceptorNext<Input, Output>
    ) async throws -> StreamingServerResponse<Output> {
        let start = ContinuousClock.now
        let logger = self.logger
        var requestMetadata: Logger.Metadata = [:]
        for key in metadataKeys {
            if let value = request.metadata.firstString(forKey: key) {
                requestMetadata["rpc.request.metadata.\(key)"] = "\(value)"
            }
        }
        let fixed = requestMetadata
        let log: @Sendable (RPCError?) -> Void = { error in
            Self.log(
                logger,
                metadata: fixed,
                path: context.descriptor.path,
                peer: context.peer,
                code: error.map { Status.Code($0.code) } ?? .ok,
                duration: start.duration(to: .now)
            )
        }
        let response: StreamingServerResponse<Output>
        do {
            response = try await next(request, context)
        } catch {
            log(RPCError(serverError: error))
            throw error
        }
        return response.observingEnd(log)
    }

    /// Logs one RPC's line.
    private static func log(
        _ logger: Logger,
        metadata fixed: Logger.Metadata,
        path: String,
        peer: String,
        code: Status.Code,
        duration: Duration
    ) {
        let milliseconds =
            Double(duration.components.seconds) * 1e3 + Double(duration.components.attoseconds) / 1e15
        let serverFault = code == .unknown || code == .internal || code == .dataLoss
        var metadata = fixed
        metadata["rpc.method"] = "\(path)"
        metadata["rpc.grpc.status_code"] = "\(code)"
        metadata["network.peer.address"] = "\(peer)"
        metadata["courier.duration_ms"] = "\((milliseconds * 1000).rounded() / 1000)"
        logger.log(level: serverFault ? .warning : .info, "rpc", metadata: metadata)
    }
}

extension RequestLoggingInterceptor: UnregisteredMethodObserving {
    /// An RPC to a method nobody serves: its line, `UNIMPLEMENTED`, with the path cut at 256 bytes.
    package func observeUnregisteredMethod(path: String, peer: String, duration: Duration) {
        let shown = path.utf8.count > 256 ? String(decoding: path.utf8.prefix(256), as: UTF8.self) : path
        Self.log(logger, metadata: [:], path: shown, peer: peer, code: .unimplemented, duration: duration)
    }
}
