public import Courier  // extends RPCError
public import SwiftProtobuf  // details are Message values and Google_Protobuf_Any

extension RPCError {
    /// The metadata key gRPC uses for rich error details: a serialized `google.rpc.Status`.
    public static let statusDetailsKey = "grpc-status-details-bin"

    /// Creates an error carrying rich details, as grpc-go's `status.WithDetails` does.
    ///
    /// The details travel as a `google.rpc.Status` in the `grpc-status-details-bin` trailer, which
    /// every gRPC implementation can read.
    ///
    /// ```swift
    /// throw try RPCError(code: .invalidArgument, message: "bad name", details: [fieldViolation])
    /// ```
    ///
    /// - Parameters:
    ///   - code: The status code.
    ///   - message: A message for developers.
    ///   - details: Messages describing the error, each packed into a `google.protobuf.Any`.
    ///   - metadata: Other trailing metadata.
    /// - Throws: If a detail can't be serialized.
    public init(
        code: Code,
        message: String,
        details: [any SwiftProtobuf.Message],
        metadata: Metadata = [:]
    ) throws {
        var status = Google_Rpc_Status()
        status.code = Int32(code.rawValue)
        status.message = message
        status.details = try details.map { try Google_Protobuf_Any(message: $0) }
        var metadata = metadata
        metadata.replaceOrAdd(.binary(try status.serializedBytes()), forKey: Self.statusDetailsKey)
        self.init(code: code, message: message, metadata: metadata)
    }

    /// The `google.rpc.Status` in the error's `grpc-status-details-bin` trailer, if there is one that
    /// parses.
    public var statusDetails: Google_Rpc_Status? {
        guard let bytes = metadata[binaryValues: Self.statusDetailsKey].first else { return nil }
        return try? Google_Rpc_Status(serializedBytes: bytes)
    }

    /// The error's rich details, each still packed in a `google.protobuf.Any`; empty if there are none.
    ///
    /// Unpack one as the message type it holds, with swift-protobuf's `init(unpackingAny:)`, or test
    /// its type with `isA(_:)` first. The types are yours: any generated message, such as the
    /// `google.rpc` detail messages (`error_details.proto`) generated into your own target.
    ///
    /// ```swift
    /// for detail in error.details where detail.isA(Hello_HelloResponse.self) {
    ///     let reply = try Hello_HelloResponse(unpackingAny: detail)
    /// }
    /// ```
    public var details: [Google_Protobuf_Any] {
        statusDetails?.details ?? []
    }
}
