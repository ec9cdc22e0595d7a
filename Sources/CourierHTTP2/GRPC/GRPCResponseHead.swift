internal import Courier

/// One HEADERS block of a response as the client receives it, field by field: response headers,
/// trailers, or a Trailers-Only response (the stream state machine tells them apart).
///
/// Pure: no C, no I/O.
struct GRPCResponseHead {
    var status: Int?
    /// Whether the block had a gRPC `content-type` (checked on the bytes: no string is made).
    var hasGRPCContentType = false
    var grpcStatus: String?
    var grpcMessage: String?
    var grpcEncoding: String?
    var metadata = Metadata()
    /// The first metadata value that could not be decoded (a `-bin` value that isn't base64).
    var invalidMetadata: RPCError?
    /// Header bytes so far, counted as SETTINGS_MAX_HEADER_LIST_SIZE counts them (name + value + 32).
    private(set) var listBytes = 0

    init() {}

    /// Adds a field; false once the block exceeds `maxListBytes`.
    mutating func add(name: HeaderBytes, value: HeaderBytes, maxListBytes: Int) -> Bool {
        listBytes += name.count + value.count + 32
        guard listBytes <= maxListBytes else { return false }
        switch name.count {
        case 7 where name.equals(":status"):
            status = Int(value.string)
        case 11 where name.equals("grpc-status"):
            grpcStatus = value.string
        case 12 where name.equals("content-type"):
            hasGRPCContentType = value.isGRPCContentType
        case 12 where name.equals("grpc-message"):
            grpcMessage = value.string
        case 13 where name.equals("grpc-encoding"):
            grpcEncoding = value.string
        default:
            do {
                try GRPCHeaders.addReceived(name: name.string, value: value.string, to: &metadata)
            } catch {
                if invalidMetadata == nil { invalidMetadata = error }
            }
        }
        return true
    }

    /// Adds a field given as strings (tests).
    mutating func add(name: String, value: String, maxListBytes: Int = .max) -> Bool {
        var name = name
        var value = value
        return name.withUTF8 { name in
            value.withUTF8 { value in
                add(
                    name: HeaderBytes(base: name.baseAddress, count: name.count),
                    value: HeaderBytes(base: value.baseAddress, count: value.count),
                    maxListBytes: maxListBytes
                )
            }
        }
    }

    /// The status of a block that ends the response (trailers, or a Trailers-Only response).
    var trailerStatus: Status {
        guard let grpcStatus else {
            return Status(code: .unknown, message: "The response ended without a grpc-status.")
        }
        guard let code = GRPCHeaders.parseStatusCode(grpcStatus) else {
            return Status(code: .unknown, message: "Invalid grpc-status '\(grpcStatus.prefix(16))'.")
        }
        return Status(code: code, message: GRPCStatusMessage.decode(grpcMessage ?? ""))
    }
}
