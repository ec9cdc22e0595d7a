// Errors: status codes, messages, trailers, and rich details (google.rpc.Status).
import Courier
import CourierProtobuf
import GRPCTestingProtos
import SwiftProtobuf

// A handler throws an RPCError to send that status; any other error is sent as UNKNOWN, without its text.
func lookUp(_ name: String) throws -> String {
    guard !name.isEmpty else {
        throw RPCError(code: .invalidArgument, message: "A name is required.", metadata: ["x-field": "name"])
    }
    return name
}

// Rich details: the standard google.rpc messages (or any message, packed), in the grpc-status-details-bin
// trailer that every gRPC client reads.
func rejected() -> RPCError {
    RPCError(
        code: .failedPrecondition,
        message: "The account is locked.",
        details: [
            .errorInfo(reason: "ACCOUNT_LOCKED", domain: "accounts.example.com", metadata: ["account": "42"]),
            .retryInfo(delay: .seconds(3600)),
            .localizedMessage(locale: "en-US", message: "Your account is locked until tomorrow."),
        ]
    )
}

// A message of your own API travels the same way.
func rejectedWithOwnDetail() throws -> RPCError {
    RPCError(
        code: .aborted,
        message: "Try again.",
        details: [try ErrorDetail(packing: Grpc_Testing_EchoStatus.with { $0.message = "busy" })]
    )
}

// On the client, the same error arrives: code, message, trailers as metadata, and the details.
func report(_ error: RPCError) {
    print(error.code, error.message, error.metadata)
    for detail in error.details {
        if let info = detail.errorInfo {
            print("reason: \(info.reason) in \(info.domain)")
        } else if let retry = detail.retryInfo {
            print("retry in \(retry.retryDelay.seconds) s")
        } else if let status = detail.unpack(Grpc_Testing_EchoStatus.self) {
            print("detail: \(status.message)")
        }
    }
}

// Your own error types can say which status they are.
enum InventoryError: Error, RPCErrorConvertible {
    case outOfStock(String)

    var rpcError: RPCError {
        switch self {
        case .outOfStock(let item): RPCError(code: .resourceExhausted, message: "\(item) is out of stock.")
        }
    }
}
