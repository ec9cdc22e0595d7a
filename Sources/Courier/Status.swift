/// The outcome of an RPC: a code and a human-readable message.
///
/// Every RPC ends with exactly one status. ``Status/Code/ok`` means success; every other code is an
/// error and is surfaced to Swift code as an ``RPCError``.
public struct Status: Sendable, Hashable, CustomStringConvertible {
    /// The status code.
    public var code: Code
    /// A message for developers; empty when there is nothing to add.
    public var message: String

    /// Creates a status.
    ///
    /// - Parameters:
    ///   - code: The status code.
    ///   - message: A message for developers.
    public init(code: Code, message: String = "") {
        self.code = code
        self.message = message
    }

    /// The successful status, with no message.
    public static let ok = Status(code: .ok)

    public var description: String {
        message.isEmpty ? "\(code)" : "\(code): \(message)"
    }
}

extension Status {
    /// One of the 17 gRPC status codes.
    ///
    /// Values outside the range 0...16 received from a peer are mapped to ``unknown`` by
    /// ``init(rawValue:)``, as the gRPC specification requires.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        /// The numeric value sent on the wire in `grpc-status`.
        public let rawValue: Int

        /// Creates a code from its wire value; `nil` when the value is not one of the 17 codes.
        ///
        /// - Parameter rawValue: The numeric value, 0...16.
        public init?(rawValue: Int) {
            guard (0...16).contains(rawValue) else { return nil }
            self.rawValue = rawValue
        }

        private init(_ value: Int) { self.rawValue = value }

        /// Not an error; returned on success.
        public static let ok = Code(0)
        /// The operation was cancelled, typically by the caller.
        public static let cancelled = Code(1)
        /// Unknown error, including errors raised by handlers that carry no status.
        public static let unknown = Code(2)
        /// The client specified an invalid argument.
        public static let invalidArgument = Code(3)
        /// The deadline expired before the operation could complete.
        public static let deadlineExceeded = Code(4)
        /// Some requested entity was not found.
        public static let notFound = Code(5)
        /// The entity that a client attempted to create already exists.
        public static let alreadyExists = Code(6)
        /// The caller does not have permission to execute the operation.
        public static let permissionDenied = Code(7)
        /// Some resource has been exhausted (a quota, a message size limit, memory).
        public static let resourceExhausted = Code(8)
        /// The system is not in a state required for the operation's execution.
        public static let failedPrecondition = Code(9)
        /// The operation was aborted, typically due to a concurrency issue.
        public static let aborted = Code(10)
        /// The operation was attempted past the valid range.
        public static let outOfRange = Code(11)
        /// The operation is not implemented or not supported by the server.
        public static let unimplemented = Code(12)
        /// An invariant expected by the underlying system was broken.
        public static let `internal` = Code(13)
        /// The service is currently unavailable; retrying may help.
        public static let unavailable = Code(14)
        /// Unrecoverable data loss or corruption.
        public static let dataLoss = Code(15)
        /// The request does not have valid authentication credentials.
        public static let unauthenticated = Code(16)

        /// All 17 codes in wire order.
        public static let allCases: [Code] = (0...16).map { Code($0) }

        /// The name the gRPC specification uses, such as `DEADLINE_EXCEEDED`.
        public var description: String {
            Self.names[rawValue]
        }

        private static let names = [
            "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
            "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
            "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
        ]
    }
}
