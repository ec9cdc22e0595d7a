internal import Courier

/// The gRPC-over-HTTP/2 mapping of headers (grpc/grpc doc/PROTOCOL-HTTP2.md).
enum GRPCHeaders {
    /// Header names the transport owns: never copied into or out of user metadata.
    static let reserved: Set<String> = [
        "content-type", "te", "grpc-timeout", "grpc-encoding", "grpc-accept-encoding", "grpc-status",
        "grpc-message", "grpc-message-type", "user-agent", "host", "connection", "keep-alive",
        "proxy-connection", "transfer-encoding", "upgrade", "content-length",
    ]

    /// The `grpc-accept-encoding` Courier sends: every algorithm it implements.
    static let acceptEncoding = CompressionAlgorithm.all.map(\.name).joined(separator: ",")

    /// Whether a `content-type` is gRPC's: `application/grpc`, optionally followed by `+format` or `;params`.
    /// The same check as the transports make on received bytes (``HeaderBytes/isGRPCContentType``).
    static func isGRPCContentType(_ value: some StringProtocol) -> Bool {
        var value = String(value)
        return value.withUTF8 { HeaderBytes(base: $0.baseAddress, count: $0.count).isGRPCContentType }
    }

    /// Adds a received header to metadata, unless the transport owns it. `-bin` values are base64
    /// (padded or not), possibly several joined by commas.
    ///
    /// - Throws: ``RPCError`` `INTERNAL` for a `-bin` value that isn't base64.
    static func addReceived(name: String, value: String, to metadata: inout Metadata) throws(RPCError) {
        guard !name.hasPrefix(":"), !reserved.contains(name) else { return }
        if name.hasSuffix("-bin") {
            for part in value.split(separator: ",", omittingEmptySubsequences: false) {
                let trimmed = part.drop { $0 == " " }
                guard let bytes = Base64.decode(trimmed) else {
                    throw RPCError(code: .internal, message: "Invalid base64 in metadata '\(name)'.")
                }
                metadata.addBinary(bytes, forKey: name)
            }
        } else {
            metadata.addString(value, forKey: name)
        }
    }

    /// The header fields for user metadata, reserved names skipped, `-bin` values base64-encoded.
    static func fields(for metadata: Metadata) -> [(name: String, value: String)] {
        var fields: [(name: String, value: String)] = []
        fields.reserveCapacity(metadata.count)
        for element in metadata where !reserved.contains(element.key) {
            switch element.value {
            // HTTP/2 forbids leading and trailing whitespace in a value; gRPC allows trimming it.
            case .string(let value): fields.append((element.key, trimmed(value)))
            case .binary(let bytes): fields.append((element.key, Base64.encode(bytes)))
            }
        }
        return fields
    }

    static func trimmed(_ value: String) -> String {
        guard value.utf8.first == 0x20 || value.utf8.last == 0x20 || value.utf8.first == 0x09 || value.utf8.last == 0x09
        else { return value }
        return String(value.drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }

    /// The status a client reports for a response without `grpc-status` (the spec's HTTP-to-gRPC table).
    static func status(forHTTPStatus status: Int) -> Status {
        let code: Status.Code
        switch status {
        case 400: code = .internal
        case 401: code = .unauthenticated
        case 403: code = .permissionDenied
        case 404: code = .unimplemented
        case 429, 502, 503, 504: code = .unavailable
        case 431: code = .internal
        default: code = .unknown
        }
        return Status(code: code, message: "Received HTTP status \(status) without a gRPC status.")
    }

    /// Parses `grpc-status`: decimal, no sign; values outside 0...16 are UNKNOWN.
    static func parseStatusCode(_ value: some StringProtocol) -> Status.Code? {
        guard !value.isEmpty, value.utf8.count <= 10, value.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
            let number = Int(value)
        else { return nil }
        return Status.Code(rawValue: number) ?? .unknown
    }
}
