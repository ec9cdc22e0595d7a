public import Courier  // the carrier is Metadata
public import Tracing  // conforms to Extractor and Injector

/// Reads a propagated context (W3C `traceparent`, `tracestate`, or whatever the bootstrapped instrument
/// propagates) from request metadata.
public struct MetadataExtractor: Extractor {
    /// Creates an extractor.
    public init() {}

    /// The first string value of `key`, if any.
    ///
    /// - Parameters:
    ///   - key: The header name.
    ///   - carrier: The metadata.
    /// - Returns: The value.
    public func extract(key: String, from carrier: Metadata) -> String? {
        carrier.firstString(forKey: key)
    }
}

/// Writes a context into request metadata for the bootstrapped instrument, replacing earlier values.
public struct MetadataInjector: Injector {
    /// Creates an injector.
    public init() {}

    /// Sets `key` to `value`.
    ///
    /// - Parameters:
    ///   - value: The header value.
    ///   - key: The header name.
    ///   - carrier: The metadata.
    public func inject(_ value: String, forKey key: String, into carrier: inout Metadata) {
        carrier.replaceOrAdd(.string(value), forKey: key)
    }
}

/// The OpenTelemetry RPC attribute names Courier's spans carry.
enum RPCAttribute {
    static let system = "rpc.system"
    static let service = "rpc.service"
    static let method = "rpc.method"
    static let statusCode = "rpc.grpc.status_code"
    static let serverAddress = "server.address"
    static let serverPort = "server.port"
    static let peerAddress = "network.peer.address"
    static let peerPort = "network.peer.port"
    static let networkType = "network.type"
}

/// A peer or target split into address and port: `ipv4:127.0.0.1:5000`, `ipv6:[::1]:5000`,
/// `dns:///example.com:443`, `example.com:443`, `unix:/path`.
struct PeerAddress: Equatable {
    var address: String
    var port: Int?

    init(address: String, port: Int?) {
        self.address = address
        self.port = port
    }

    init(parsing description: String) {
        var rest = Substring(description)
        for scheme in ["dns:///", "ipv4:", "ipv6:", "unix://", "unix:"] where rest.hasPrefix(scheme) {
            rest = rest.dropFirst(scheme.count)
            if scheme.hasPrefix("unix") {
                self.init(address: String(rest), port: nil)
                return
            }
            break
        }
        if rest.hasPrefix("["), let close = rest.firstIndex(of: "]") {
            let host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            self.init(address: String(host), port: after.hasPrefix(":") ? Int(after.dropFirst()) : nil)
            return
        }
        if let colon = rest.lastIndex(of: ":"), rest.firstIndex(of: ":") == colon,
            let port = Int(rest[rest.index(after: colon)...])
        {
            self.init(address: String(rest[..<colon]), port: port)
            return
        }
        self.init(address: String(rest), port: nil)
    }
}

extension Status.Code {
    /// Whether a server span with this status is an error, per OpenTelemetry's gRPC conventions.
    var isServerError: Bool {
        switch self {
        case .unknown, .deadlineExceeded, .unimplemented, .internal, .unavailable, .dataLoss: true
        default: false
        }
    }
}

extension Span {
    /// Records how the RPC ended and ends the span.
    func end(with error: RPCError?, isError: (Status.Code) -> Bool) {
        let code = error.map { Status.Code($0.code) } ?? .ok
        attributes[RPCAttribute.statusCode] = code.rawValue
        if let error, isError(code) {
            recordError(error)
            setStatus(SpanStatus(code: .error, message: "\(code): \(error.message)"))
        }
        end()
    }
}
