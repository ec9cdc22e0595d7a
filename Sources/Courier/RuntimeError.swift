/// An error wider than one RPC: a lifecycle or configuration mistake, or a transport that failed as a whole.
///
/// ``RPCError`` is what an RPC ends with and what crosses the wire; `RuntimeError` is what the code that
/// *runs* clients and servers meets: running a server twice, a target that doesn't parse, a TLS file that
/// can't be read, an address already in use. It never becomes a gRPC status.
///
/// ```swift
/// do {
///     try await server.run()
/// } catch let error as RuntimeError where error.code == .transportError {
///     logger.error("could not serve", metadata: ["error": "\(error)"])
/// }
/// ```
public struct RuntimeError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of mistake or failure this is.
    public var code: Code
    /// What went wrong, for a developer or an operator.
    public var message: String
    /// The error underneath, if any (an ``RPCError``, a system error).
    public var cause: (any Error)?

    /// Creates an error.
    ///
    /// - Parameters:
    ///   - code: The kind of error.
    ///   - message: What went wrong.
    ///   - cause: The underlying error.
    public init(code: Code, message: String, cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String {
        guard let cause else { return "\(code): \(message)" }
        let causeText = String(describing: cause)
        // A message that already carries its cause's text says it once.
        return message.contains(causeText) ? "\(code): \(message)" : "\(code): \(message) (cause: \(causeText))"
    }

    /// Equality compares code and message; the ``cause`` is ignored.
    public static func == (lhs: RuntimeError, rhs: RuntimeError) -> Bool {
        lhs.code == rhs.code && lhs.message == rhs.message
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(code)
        hasher.combine(message)
    }
}

extension RuntimeError {
    /// The kind of a ``RuntimeError``. New kinds may be added; a `switch` over codes needs a `default`.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Wrapped: String, Sendable, Hashable {
            case invalidArgument = "invalid argument"
            case invalidConfiguration = "invalid configuration"
            case serverIsAlreadyRunning = "server is already running"
            case clientIsAlreadyRunning = "client is already running"
            case transportIsAlreadyRunning = "transport is already running"
            case transportError = "transport error"
        }

        private let wrapped: Wrapped
        private init(_ wrapped: Wrapped) { self.wrapped = wrapped }

        /// An argument is invalid, such as a target that doesn't parse.
        public static let invalidArgument = Code(.invalidArgument)
        /// A configuration can't be used: a TLS file that can't be read, values that contradict each other.
        public static let invalidConfiguration = Code(.invalidConfiguration)
        /// ``CourierServer/run()`` was called while the server runs or after it ran.
        public static let serverIsAlreadyRunning = Code(.serverIsAlreadyRunning)
        /// ``CourierClient/run()`` was called while the client runs or after it ran.
        public static let clientIsAlreadyRunning = Code(.clientIsAlreadyRunning)
        /// A transport was started twice (`listen()` or `connect()` called again).
        public static let transportIsAlreadyRunning = Code(.transportIsAlreadyRunning)
        /// A transport failed as a whole: it could not listen (address in use), start its threads, …
        public static let transportError = Code(.transportError)

        public var description: String { wrapped.rawValue }
    }
}
