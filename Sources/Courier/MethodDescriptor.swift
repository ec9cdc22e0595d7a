/// Names a service: its fully-qualified protobuf name, such as `hello.HelloService`.
public struct ServiceDescriptor: Sendable, Hashable, CustomStringConvertible {
    /// The fully-qualified name: the proto package, a dot, and the service name.
    public var fullyQualifiedService: String

    /// Creates a descriptor.
    ///
    /// - Parameter fullyQualifiedService: For example `grpc.health.v1.Health`.
    public init(fullyQualifiedService: String) {
        self.fullyQualifiedService = fullyQualifiedService
    }

    /// Creates a descriptor from a proto package and a service name.
    ///
    /// - Parameters:
    ///   - package: The proto package; empty when the file has none.
    ///   - service: The service's name.
    public init(package: String, service: String) {
        self.fullyQualifiedService = package.isEmpty ? service : "\(package).\(service)"
    }

    public var description: String { fullyQualifiedService }
}

/// Names a method of a service; its ``path`` is the HTTP/2 `:path`, `/package.Service/Method`.
public struct MethodDescriptor: Sendable, Hashable, CustomStringConvertible {
    /// The service the method belongs to.
    public var service: ServiceDescriptor {
        didSet { path = Self.path(service, method) }
    }
    /// The method's name, such as `SayHello`.
    public var method: String {
        didSet { path = Self.path(service, method) }
    }
    /// The request path, `/package.Service/Method` (kept, not rebuilt: every call sends it).
    public private(set) var path: String

    /// Creates a descriptor.
    ///
    /// - Parameters:
    ///   - service: The service.
    ///   - method: The method's name.
    public init(service: ServiceDescriptor, method: String) {
        self.service = service
        self.method = method
        self.path = Self.path(service, method)
    }

    private static func path(_ service: ServiceDescriptor, _ method: String) -> String {
        "/\(service.fullyQualifiedService)/\(method)"
    }

    /// Creates a descriptor from a fully-qualified service name and a method name.
    ///
    /// - Parameters:
    ///   - fullyQualifiedService: For example `hello.HelloService`.
    ///   - method: For example `SayHello`.
    public init(fullyQualifiedService: String, method: String) {
        self.init(service: ServiceDescriptor(fullyQualifiedService: fullyQualifiedService), method: method)
    }

    /// Parses a request path of the form `/package.Service/Method`.
    ///
    /// - Parameter path: The `:path` of a request.
    /// - Returns: `nil` unless the path is a slash, a non-empty service, a slash and a non-empty method.
    public init?(path: String) {
        let utf8 = path.utf8
        guard utf8.first == UInt8(ascii: "/") else { return nil }
        let rest = path.utf8.dropFirst()
        guard let slash = rest.firstIndex(of: UInt8(ascii: "/")) else { return nil }
        let service = Substring(rest[rest.startIndex..<slash])
        let method = Substring(rest[rest.index(after: slash)...])
        guard !service.isEmpty, !method.isEmpty, !method.utf8.contains(UInt8(ascii: "/")) else { return nil }
        self.init(fullyQualifiedService: String(service), method: String(method))
    }

    public var description: String { path }
}
