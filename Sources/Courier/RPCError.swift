/// An error that ends an RPC with a non-OK status.
///
/// Handlers throw `RPCError` to choose the status the client sees; clients receive one whenever an RPC
/// fails. Its ``metadata`` travels as trailing metadata. Any other error thrown by a server handler is
/// sent as ``Code/unknown`` without its text (it is logged at debug level instead), so internal details
/// never leak to clients. Types that know their status conform to ``RPCErrorConvertible``.
public struct RPCError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The status code; never OK.
    public var code: Code
    /// A message for developers.
    public var message: String
    /// Trailing metadata sent (or received) with the error.
    public var metadata: Metadata
    /// The error that caused this one, if any. Local only: it never crosses the wire.
    public var cause: (any Error)?

    /// Creates an error.
    ///
    /// If `cause` is itself an `RPCError` with the same code, it is flattened: its message is used when
    /// `message` is empty, and its own cause becomes this error's cause.
    ///
    /// - Parameters:
    ///   - code: The status code.
    ///   - message: A message for developers.
    ///   - metadata: Trailing metadata to send with the status.
    ///   - cause: The underlying error, kept locally for diagnostics.
    public init(code: Code, message: String, metadata: Metadata = [:], cause: (any Error)? = nil) {
        if let rpcCause = cause as? RPCError, rpcCause.code == code {
            self.code = code
            self.message = message.isEmpty ? rpcCause.message : message
            var merged = rpcCause.metadata
            merged.add(contentsOf: metadata)
            self.metadata = merged
            self.cause = rpcCause.cause
        } else {
            self.code = code
            self.message = message
            self.metadata = metadata
            self.cause = cause
        }
    }

    /// Creates an error from a non-OK status; `nil` if the status is OK.
    ///
    /// - Parameters:
    ///   - status: The status received or to be sent.
    ///   - metadata: Its trailing metadata.
    public init?(status: Status, metadata: Metadata = [:]) {
        guard let code = Code(status.code) else { return nil }
        self.init(code: code, message: status.message, metadata: metadata)
    }

    /// The status this error is sent as.
    public var status: Status {
        Status(code: Status.Code(code), message: message)
    }

    public var description: String {
        var text = message.isEmpty ? "\(code)" : "\(code): \(message)"
        if let cause {
            // A message that already carries its cause's text says it once.
            let causeText = String(describing: cause)
            if !message.contains(causeText) { text += " (cause: \(String(reflecting: cause)))" }
        }
        return text
    }

    /// Equality compares code, message and metadata; the local-only ``cause`` is ignored.
    public static func == (lhs: RPCError, rhs: RPCError) -> Bool {
        lhs.code == rhs.code && lhs.message == rhs.message && lhs.metadata == rhs.metadata
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(code)
        hasher.combine(message)
        hasher.combine(metadata)
    }
}

extension RPCError {
    /// The status code of an error: every ``Status/Code`` except OK.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        /// The wire value, 1...16.
        public var rawValue: Int { wrapped.rawValue }
        private let wrapped: Status.Code

        /// The error code for a status code; `nil` for ``Status/Code/ok``.
        ///
        /// - Parameter code: A status code.
        public init?(_ code: Status.Code) {
            guard code != .ok else { return nil }
            self.wrapped = code
        }

        private init(unchecked code: Status.Code) { self.wrapped = code }

        /// See ``Status/Code/cancelled``.
        public static let cancelled = Code(unchecked: .cancelled)
        /// See ``Status/Code/unknown``.
        public static let unknown = Code(unchecked: .unknown)
        /// See ``Status/Code/invalidArgument``.
        public static let invalidArgument = Code(unchecked: .invalidArgument)
        /// See ``Status/Code/deadlineExceeded``.
        public static let deadlineExceeded = Code(unchecked: .deadlineExceeded)
        /// See ``Status/Code/notFound``.
        public static let notFound = Code(unchecked: .notFound)
        /// See ``Status/Code/alreadyExists``.
        public static let alreadyExists = Code(unchecked: .alreadyExists)
        /// See ``Status/Code/permissionDenied``.
        public static let permissionDenied = Code(unchecked: .permissionDenied)
        /// See ``Status/Code/resourceExhausted``.
        public static let resourceExhausted = Code(unchecked: .resourceExhausted)
        /// See ``Status/Code/failedPrecondition``.
        public static let failedPrecondition = Code(unchecked: .failedPrecondition)
        /// See ``Status/Code/aborted``.
        public static let aborted = Code(unchecked: .aborted)
        /// See ``Status/Code/outOfRange``.
        public static let outOfRange = Code(unchecked: .outOfRange)
        /// See ``Status/Code/unimplemented``.
        public static let unimplemented = Code(unchecked: .unimplemented)
        /// See ``Status/Code/internal``.
        public static let `internal` = Code(unchecked: .internal)
        /// See ``Status/Code/unavailable``.
        public static let unavailable = Code(unchecked: .unavailable)
        /// See ``Status/Code/dataLoss``.
        public static let dataLoss = Code(unchecked: .dataLoss)
        /// See ``Status/Code/unauthenticated``.
        public static let unauthenticated = Code(unchecked: .unauthenticated)

        public var description: String { wrapped.description }
    }
}

extension Status.Code {
    /// The status code of an error code.
    ///
    /// - Parameter code: An error code.
    public init(_ code: RPCError.Code) {
        self = Status.Code(rawValue: code.rawValue)!
    }
}

/// A type that knows which ``RPCError`` it should be sent as.
///
/// A server handler that throws a conforming error sends ``rpcError`` instead of `UNKNOWN`.
public protocol RPCErrorConvertible: Error {
    /// The error to send to the client.
    var rpcError: RPCError { get }
}

extension RPCError {
    /// Converts any error into the `RPCError` a server sends for it.
    ///
    /// `RPCError`s pass through; ``RPCErrorConvertible`` errors convert themselves; `CancellationError`
    /// becomes `CANCELLED`; anything else becomes `UNKNOWN` with a fixed message, keeping the original
    /// as the local-only ``cause``.
    ///
    /// - Parameter error: The error a handler threw.
    package init(serverError error: any Error) {
        switch error {
        case let rpcError as RPCError:
            self = rpcError
        case let convertible as any RPCErrorConvertible:
            self = convertible.rpcError
        case is CancellationError:
            self = RPCError(code: .cancelled, message: "The RPC was cancelled.", cause: error)
        default:
            self = RPCError(code: .unknown, message: "The handler threw an error.", cause: error)
        }
    }
}
