internal import Courier

/// A request's HEADERS as the server receives them, field by field: the pseudo-headers and call headers
/// the transport owns are matched as bytes (they never become Strings), everything else becomes metadata.
///
/// Pure: no C, no I/O. The stream state machine validates the complete head
/// (``GRPCStreamStateMachine/receiveRequestHead(_:endStream:)``).
struct GRPCRequestHead {
    /// `:path`, interned per connection.
    var path = ""
    var methodIsPOST = false
    var hasGRPCContentType = false
    /// `grpc-timeout`, unparsed.
    var timeoutValue: String?
    /// `grpc-encoding`, unparsed.
    var encoding: String?
    /// `grpc-accept-encoding`, unparsed.
    var acceptEncoding: String?
    /// The custom metadata.
    var metadata = Metadata()
    /// The first metadata value that could not be decoded (a `-bin` value that isn't base64).
    var invalidMetadata: RPCError?
    /// Header bytes so far, counted as SETTINGS_MAX_HEADER_LIST_SIZE counts them (name + value + 32).
    private(set) var listBytes = 0
    let maxListBytes: Int

    init(maxListBytes: Int) {
        self.maxListBytes = maxListBytes
    }

    /// Adds a field; false once the list exceeds the limit (the stream is then reset; the connection and
    /// its other streams are unaffected).
    mutating func add(name: HeaderBytes, value: HeaderBytes, paths: PathInterner) -> Bool {
        listBytes += name.count + value.count + 32
        guard listBytes <= maxListBytes else { return false }
        switch name.count {
        case 5 where name.equals(":path"):
            path = paths.intern(value)
            return true
        case 7 where name.equals(":method"):
            methodIsPOST = value.equals("POST")
            return true
        case 12 where name.equals("content-type"):
            hasGRPCContentType = value.isGRPCContentType
            return true
        case 12 where name.equals("grpc-timeout"):
            timeoutValue = value.string
            return true
        case 13 where name.equals("grpc-encoding"):
            encoding = value.string
            return true
        case 20 where name.equals("grpc-accept-encoding"):
            acceptEncoding = value.string
            return true
        case 2 where name.equals("te"), 7 where name.equals(":scheme"), 10 where name.equals(":authority"),
            10 where name.equals("user-agent"):
            return true  // not used by the server
        default:
            break
        }
        do {
            try GRPCHeaders.addReceived(name: name.string, value: value.string, to: &metadata)
        } catch {
            if invalidMetadata == nil { invalidMetadata = error }
        }
        return true
    }

    /// Whether the client's `grpc-accept-encoding` lists `algorithm`.
    func accepts(_ algorithm: CompressionAlgorithm) -> Bool {
        guard let acceptEncoding else { return false }
        return acceptEncoding.split(separator: ",").contains {
            $0.filter { $0 != " " && $0 != "\t" } == algorithm.name
        }
    }
}

/// The last request path a connection saw: most connections call a few methods over and over, so the
/// path's String is made once and shared instead of allocated per request. Loop-confined, like its
/// connection.
final class PathInterner {
    private var path = ""
    private var bytes = UnsafeMutableBufferPointer<UInt8>(start: nil, count: 0)

    init() {}

    deinit {
        bytes.deallocate()
    }

    /// The path for `value`: the one made last time when the bytes are the same.
    func intern(_ value: HeaderBytes) -> String {
        if value.count == bytes.count, value.count > 0, value.bytesEqual(bytes.baseAddress!) {
            return path
        }
        bytes.deallocate()
        bytes = .allocate(capacity: value.count)
        if value.count > 0 { bytes.baseAddress!.update(from: value.base!, count: value.count) }
        path = value.string
        return path
    }
}
