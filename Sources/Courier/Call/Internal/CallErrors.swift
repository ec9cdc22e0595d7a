/// The errors the core's call paths raise for a peer that breaks a call's shape: each rule is written
/// once, here, and shared by the streaming paths and the unary fast paths of both sides.
extension RPCError {
    /// A unary side of a call carried no message: `INTERNAL`.
    @usableFromInline
    static func noMessage(_ kind: MessageKind) -> RPCError {
        RPCError(code: .internal, message: "Expected one \(kind.lowercased) message, received none.")
    }

    /// A unary side of a call carried more than one message: `INTERNAL`.
    @usableFromInline
    static func moreThanOneMessage(_ kind: MessageKind) -> RPCError {
        RPCError(code: .internal, message: "Expected one \(kind.lowercased) message, received more.")
    }

    /// The server sent a message before its response metadata: `INTERNAL`.
    @usableFromInline
    static var messageBeforeMetadata: RPCError {
        RPCError(code: .internal, message: "Received a response message before response metadata.")
    }

    /// The server sent response metadata twice: `INTERNAL`.
    @usableFromInline
    static var metadataTwice: RPCError {
        RPCError(code: .internal, message: "Received response metadata twice.")
    }

    /// The response ended without a status: `INTERNAL`.
    @usableFromInline
    static var endedWithoutStatus: RPCError {
        RPCError(code: .internal, message: "The response ended without a status.")
    }

    /// Reading the response failed with an error that is not an ``RPCError``: `UNKNOWN`.
    @usableFromInline
    static func readingResponseFailed(_ cause: any Error) -> RPCError {
        RPCError(code: .unknown, message: "Reading the response failed.", cause: cause)
    }

    /// The RPC was cancelled locally (task cancellation, leaving its scope): `CANCELLED`.
    @usableFromInline
    static var cancelledLocally: RPCError {
        RPCError(code: .cancelled, message: "The RPC was cancelled.")
    }

    /// The call's deadline passed: `DEADLINE_EXCEEDED`.
    static var deadlineExceeded: RPCError {
        RPCError(code: .deadlineExceeded, message: "Deadline exceeded.")
    }

    /// The call's deadline passed while it waited for a connection whose last attempt failed for `reason`.
    @usableFromInline
    static func deadlineExceeded(waitingForConnection reason: String?) -> RPCError {
        guard let reason else { return .deadlineExceeded }
        return RPCError(
            code: .deadlineExceeded,
            message: "Deadline exceeded while waiting for a connection; the last attempt failed: \(reason)"
        )
    }
}

extension MessageKind {
    /// "request" or "response", for messages.
    var lowercased: String {
        switch self {
        case .request: "request"
        case .response: "response"
        }
    }
}
