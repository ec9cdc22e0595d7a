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

// Rich details: any messages, packed into the grpc-status-details-bin trailer that every gRPC client reads.
func rejected() throws -> RPCError {
    try RPCError(
        code: .failedPrecondition,
        message: "The account is locked.",
        details: [
            Grpc_Testing_EchoStatus.with {
                $0.code = 9
                $0.message = "locked until tomorrow"
            }
        ]
    )
}

// On the client, the same error arrives: code, message, trailers as metadata, and the details.
func report(_ error: RPCError) throws {
    print(error.code, error.message, error.metadata)
    for detail in error.details where detail.isA(Grpc_Testing_EchoStatus.self) {
        let status = try Grpc_Testing_EchoStatus(unpackingAny: detail)
        print("detail: \(status.message)")
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
