public import Courier  // extends RPCError
internal import SwiftProtobuf

extension RPCError {
    /// The metadata key gRPC uses for rich error details: a serialized `google.rpc.Status`.
    public static let statusDetailsKey = "grpc-status-details-bin"

    /// Creates an error carrying rich details, as grpc-go's `status.WithDetails` does.
    ///
    /// The details travel as a `google.rpc.Status` (the code, the message, each detail packed in a
    /// `google.protobuf.Any`) in the `grpc-status-details-bin` trailer, which every gRPC implementation
    /// can read.
    ///
    /// ```swift
    /// throw RPCError(
    ///     code: .invalidArgument,
    ///     message: "The name is empty.",
    ///     details: [.badRequest(fieldViolations: [("name", "must not be empty")])]
    /// )
    /// ```
    ///
    /// - Parameters:
    ///   - code: The status code.
    ///   - message: A message for developers.
    ///   - details: The details: standard `google.rpc` ones, or any message packed with
    ///     ``ErrorDetail/init(packing:)``.
    ///   - metadata: Other trailing metadata; a `grpc-status-details-bin` entry in it is replaced.
    public init(code: Code, message: String, details: [ErrorDetail], metadata: Metadata = [:]) {
        var status = Google_Rpc_Status()
        status.code = Int32(code.rawValue)
        status.message = message
        status.details = details.map(\.packed)
        var metadata = metadata
        // Every Any is already serialized (ErrorDetail packs eagerly), so this cannot fail.
        if let bytes: [UInt8] = try? status.serializedBytes() {
            metadata.replaceOrAdd(.binary(bytes), forKey: Self.statusDetailsKey)
        }
        self.init(code: code, message: message, metadata: metadata)
    }

    /// The `google.rpc.Status` in the error's `grpc-status-details-bin` trailer, if there is one that
    /// parses.
    public var statusDetails: Google_Rpc_Status? {
        guard let bytes = metadata[binaryValues: Self.statusDetailsKey].first else { return nil }
        return try? Google_Rpc_Status(serializedBytes: bytes)
    }

    /// The error's rich details, from its `grpc-status-details-bin` trailer; empty if there are none or
    /// the trailer doesn't parse.
    ///
    /// The standard `google.rpc` details come typed (``ErrorDetail/errorInfo``, …); read any other
    /// message with ``ErrorDetail/unpack(_:)``.
    ///
    /// ```swift
    /// for detail in error.details {
    ///     if let badRequest = detail.badRequest {
    ///         for violation in badRequest.fieldViolations { print(violation.field, violation.description_p) }
    ///     } else if let status = detail.unpack(Grpc_Testing_EchoStatus.self) {
    ///         print(status.message)
    ///     }
    /// }
    /// ```
    public var details: [ErrorDetail] {
        statusDetails?.details.map(ErrorDetail.init) ?? []
    }
}
