public import SwiftProtobuf  // details wrap generated messages and Google_Protobuf_Any

/// One detail of a rich error: one of the standard `google.rpc` error-detail messages
/// (`google/rpc/error_details.proto`), or any other message, packed.
///
/// Attach details to an ``Courier/RPCError`` with ``Courier/RPCError/init(code:message:details:metadata:)``;
/// they travel in the `grpc-status-details-bin` trailer as a `google.rpc.Status`, which grpc-go, grpc
/// C++, grpc-java and grpcio read and write. Read them back with ``Courier/RPCError/details``:
///
/// ```swift
/// for detail in error.details {
///     if let info = detail.errorInfo { print(info.reason, info.domain) }
///     if let retry = detail.retryInfo { print("retry after", retry.retryDelay.seconds, "s") }
/// }
/// ```
///
/// A detail whose type URL names one of the ten standard messages is that kind (``errorInfo``, …);
/// anything else stays packed (``packed``, ``unpack(_:)``).
public struct ErrorDetail: Sendable, Hashable {
    private enum Wrapped: Sendable, Hashable {
        case errorInfo(Google_Rpc_ErrorInfo)
        case retryInfo(Google_Rpc_RetryInfo)
        case debugInfo(Google_Rpc_DebugInfo)
        case quotaFailure(Google_Rpc_QuotaFailure)
        case preconditionFailure(Google_Rpc_PreconditionFailure)
        case badRequest(Google_Rpc_BadRequest)
        case requestInfo(Google_Rpc_RequestInfo)
        case resourceInfo(Google_Rpc_ResourceInfo)
        case help(Google_Rpc_Help)
        case localizedMessage(Google_Rpc_LocalizedMessage)
        /// Anything else: the type URL and serialized bytes as they came.
        case other(Google_Protobuf_Any)
    }

    private let wrapped: Wrapped

    private init(_ wrapped: Wrapped) {
        self.wrapped = wrapped
    }

    /// Why the error happened: a machine-readable reason in a domain, with metadata.
    ///
    /// - Parameter info: The detail.
    public static func errorInfo(_ info: Google_Rpc_ErrorInfo) -> Self { Self(.errorInfo(info)) }

    /// Why the error happened, from its parts.
    ///
    /// - Parameters:
    ///   - reason: An `UPPER_SNAKE_CASE` reason, unique within `domain`.
    ///   - domain: The service or organisation that names the reason, such as `"pubsub.googleapis.com"`.
    ///   - metadata: More about the error, by key.
    public static func errorInfo(reason: String, domain: String, metadata: [String: String] = [:]) -> Self {
        .errorInfo(
            .with {
                $0.reason = reason
                $0.domain = domain
                $0.metadata = metadata
            }
        )
    }

    /// When the client may retry.
    ///
    /// - Parameter info: The detail.
    public static func retryInfo(_ info: Google_Rpc_RetryInfo) -> Self { Self(.retryInfo(info)) }

    /// When the client may retry: after `delay`.
    ///
    /// - Parameter delay: How long to wait before retrying.
    public static func retryInfo(delay: Duration) -> Self {
        let (seconds, attoseconds) = delay.components
        return .retryInfo(
            .with {
                $0.retryDelay = Google_Protobuf_Duration(seconds: seconds, nanos: Int32(attoseconds / 1_000_000_000))
            }
        )
    }

    /// Debugging information: a stack trace and detail, for developers, not end users.
    ///
    /// - Parameter info: The detail.
    public static func debugInfo(_ info: Google_Rpc_DebugInfo) -> Self { Self(.debugInfo(info)) }

    /// Which quota was exceeded.
    ///
    /// - Parameter failure: The detail.
    public static func quotaFailure(_ failure: Google_Rpc_QuotaFailure) -> Self { Self(.quotaFailure(failure)) }

    /// Which preconditions failed.
    ///
    /// - Parameter failure: The detail.
    public static func preconditionFailure(_ failure: Google_Rpc_PreconditionFailure) -> Self {
        Self(.preconditionFailure(failure))
    }

    /// Which fields of the request were bad, and why.
    ///
    /// - Parameter request: The detail.
    public static func badRequest(_ request: Google_Rpc_BadRequest) -> Self { Self(.badRequest(request)) }

    /// Which fields of the request were bad, and why, from pairs.
    ///
    /// - Parameter fieldViolations: Each bad field's path (`"address.street"`) and what is wrong with it.
    public static func badRequest(fieldViolations: [(field: String, description: String)]) -> Self {
        .badRequest(
            .with {
                $0.fieldViolations = fieldViolations.map { violation in
                    .with {
                        $0.field = violation.field
                        $0.description_p = violation.description
                    }
                }
            }
        )
    }

    /// The request the client should quote in a bug report.
    ///
    /// - Parameter info: The detail.
    public static func requestInfo(_ info: Google_Rpc_RequestInfo) -> Self { Self(.requestInfo(info)) }

    /// The resource the error is about.
    ///
    /// - Parameter info: The detail.
    public static func resourceInfo(_ info: Google_Rpc_ResourceInfo) -> Self { Self(.resourceInfo(info)) }

    /// Links to documentation.
    ///
    /// - Parameter help: The detail.
    public static func help(_ help: Google_Rpc_Help) -> Self { Self(.help(help)) }

    /// A message for the end user, in a locale.
    ///
    /// - Parameter message: The detail.
    public static func localizedMessage(_ message: Google_Rpc_LocalizedMessage) -> Self {
        Self(.localizedMessage(message))
    }

    /// A message for the end user, from its parts.
    ///
    /// - Parameters:
    ///   - locale: A BCP-47 locale, such as `"en-US"`.
    ///   - message: The message in that locale.
    public static func localizedMessage(locale: String, message: String) -> Self {
        .localizedMessage(
            .with {
                $0.locale = locale
                $0.message = message
            }
        )
    }

    /// A packed detail; one of the standard messages becomes that kind, if its bytes parse.
    ///
    /// - Parameter any: The packed message.
    public init(_ any: Google_Protobuf_Any) {
        let name = any.typeURL.split(separator: "/").last.map(String.init) ?? ""
        func decode<M: SwiftProtobuf.Message>(_: M.Type) -> M? {
            name == M.protoMessageName ? try? M(serializedBytes: any.value) : nil
        }
        if let m = decode(Google_Rpc_ErrorInfo.self) {
            self.init(.errorInfo(m))
        } else if let m = decode(Google_Rpc_RetryInfo.self) {
            self.init(.retryInfo(m))
        } else if let m = decode(Google_Rpc_DebugInfo.self) {
            self.init(.debugInfo(m))
        } else if let m = decode(Google_Rpc_QuotaFailure.self) {
            self.init(.quotaFailure(m))
        } else if let m = decode(Google_Rpc_PreconditionFailure.self) {
            self.init(.preconditionFailure(m))
        } else if let m = decode(Google_Rpc_BadRequest.self) {
            self.init(.badRequest(m))
        } else if let m = decode(Google_Rpc_RequestInfo.self) {
            self.init(.requestInfo(m))
        } else if let m = decode(Google_Rpc_ResourceInfo.self) {
            self.init(.resourceInfo(m))
        } else if let m = decode(Google_Rpc_Help.self) {
            self.init(.help(m))
        } else if let m = decode(Google_Rpc_LocalizedMessage.self) {
            self.init(.localizedMessage(m))
        } else {
            self.init(.other(any))
        }
    }

    /// Packs any message as a detail, such as a message of your own API; one of the standard messages
    /// becomes that kind.
    ///
    /// - Parameter message: The message.
    /// - Throws: If the message can't be serialized (a proto2 message missing a required field).
    public init(packing message: some SwiftProtobuf.Message) throws {
        self.init(try Self.pack(message))
    }

    private static func pack(_ message: some SwiftProtobuf.Message) throws -> Google_Protobuf_Any {
        // Serialized now, so that writing the status later cannot fail.
        var any = Google_Protobuf_Any()
        any.typeURL = "type.googleapis.com/" + type(of: message).protoMessageName
        any.value = try message.serializedBytes()
        return any
    }

    /// The detail packed as a `google.protobuf.Any` (type URL `type.googleapis.com/google.rpc.…` for the
    /// standard kinds), as it travels in a `google.rpc.Status`.
    public var packed: Google_Protobuf_Any {
        // The standard messages are proto3: serializing them cannot fail.
        switch wrapped {
        case .errorInfo(let m): (try? Self.pack(m)) ?? Google_Protobuf_Any()
        case .retryInfo(let m): (try? Self.pack(m)) ?? Google_Protobuf_Any()
        case .debugInfo(let m): (try? Self.pack(m)) ?? Google_Protobuf_Any()
        case .quotaFailure(let m): (try? Self.pack(m)) ?? Google_Protobuf_Any()
        case .preconditionFailure(let m): (try? Self.pack(m)) ?? Google_Protobuf_Any()
        case .badRequest(let m): (try? Self.pack(m)) ?? Google_Protobuf_Any()
        case .requestInfo(let m): (try? Self.pack(m)) ?? Google_Protobuf_Any()
        case .resourceInfo(let m): (try? Self.pack(m)) ?? Google_Protobuf_Any()
        case .help(let m): (try? Self.pack(m)) ?? Google_Protobuf_Any()
        case .localizedMessage(let m): (try? Self.pack(m)) ?? Google_Protobuf_Any()
        case .other(let any): any
        }
    }

    /// The detail as a message of type `M`, if it is one (by its type URL) and its bytes parse.
    ///
    /// - Parameter type: The message type, such as one of your own API's.
    /// - Returns: The message, or `nil`.
    public func unpack<M: SwiftProtobuf.Message>(_ type: M.Type) -> M? {
        let any = packed
        guard any.typeURL.split(separator: "/").last.map(String.init) == M.protoMessageName else { return nil }
        return try? M(serializedBytes: any.value)
    }

    /// The `ErrorInfo`, if this is one.
    public var errorInfo: Google_Rpc_ErrorInfo? {
        if case .errorInfo(let m) = wrapped { m } else { nil }
    }

    /// The `RetryInfo`, if this is one.
    public var retryInfo: Google_Rpc_RetryInfo? {
        if case .retryInfo(let m) = wrapped { m } else { nil }
    }

    /// The `DebugInfo`, if this is one.
    public var debugInfo: Google_Rpc_DebugInfo? {
        if case .debugInfo(let m) = wrapped { m } else { nil }
    }

    /// The `QuotaFailure`, if this is one.
    public var quotaFailure: Google_Rpc_QuotaFailure? {
        if case .quotaFailure(let m) = wrapped { m } else { nil }
    }

    /// The `PreconditionFailure`, if this is one.
    public var preconditionFailure: Google_Rpc_PreconditionFailure? {
        if case .preconditionFailure(let m) = wrapped { m } else { nil }
    }

    /// The `BadRequest`, if this is one.
    public var badRequest: Google_Rpc_BadRequest? {
        if case .badRequest(let m) = wrapped { m } else { nil }
    }

    /// The `RequestInfo`, if this is one.
    public var requestInfo: Google_Rpc_RequestInfo? {
        if case .requestInfo(let m) = wrapped { m } else { nil }
    }

    /// The `ResourceInfo`, if this is one.
    public var resourceInfo: Google_Rpc_ResourceInfo? {
        if case .resourceInfo(let m) = wrapped { m } else { nil }
    }

    /// The `Help`, if this is one.
    public var help: Google_Rpc_Help? {
        if case .help(let m) = wrapped { m } else { nil }
    }

    /// The `LocalizedMessage`, if this is one.
    public var localizedMessage: Google_Rpc_LocalizedMessage? {
        if case .localizedMessage(let m) = wrapped { m } else { nil }
    }
}
