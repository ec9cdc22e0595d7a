public import Courier  // NameResolver throws RuntimeError and reports RPCError

/// A target string, parsed as gRPC's naming doc (grpc/grpc doc/naming.md) reads it:
/// `scheme:[//authority/]endpoint`.
///
/// `dns:///example.com:443` has scheme `dns`, an empty authority and the path `/example.com:443`;
/// `unix:relative/path` has no authority and the path `relative/path`. A string whose scheme no
/// resolver is registered for (`localhost:50051`, `example.com:443`, `[::1]:50051`) is the path of a
/// `dns` target with no authority, as in gRPC.
public struct ResolverTarget: Sendable, Hashable, CustomStringConvertible {
    /// The scheme, lower-cased: `dns`, `ipv4`, `unix`, or a custom resolver's.
    public var scheme: String
    /// What is between `//` and the next `/`, or `nil` when the target has no `//`.
    public var authority: String?
    /// The rest: after the authority (with its leading `/`), or everything after `scheme:`.
    public var path: String

    /// Creates a target from its parts.
    ///
    /// - Parameters:
    ///   - scheme: The scheme.
    ///   - authority: The authority, if the target has `//`.
    ///   - path: The rest.
    public init(scheme: String, authority: String? = nil, path: String) {
        self.scheme = scheme
        self.authority = authority
        self.path = path
    }

    /// The path without the `/` that follows an authority: `example.com:443` for `dns:///example.com:443`.
    public var endpoint: String {
        authority != nil && path.hasPrefix("/") ? String(path.dropFirst()) : path
    }

    /// The target as a string: `scheme:[//authority]path`.
    public var description: String {
        "\(scheme):" + (authority.map { "//\($0)" } ?? "") + path
    }

    /// Parses `target`: a scheme that `registry` knows (its own parts), or else a `dns` target whose path
    /// is all of `target`.
    static func parse(_ target: String, registry: NameResolverRegistry) -> ResolverTarget {
        if let colon = target.firstIndex(of: ":") {
            let scheme = target[..<colon].lowercased()
            if isScheme(scheme), registry.resolver(forScheme: scheme) != nil {
                let rest = target[target.index(after: colon)...]
                if rest.hasPrefix("//") {
                    let afterSlashes = rest.dropFirst(2)
                    let slash = afterSlashes.firstIndex(of: "/") ?? afterSlashes.endIndex
                    return ResolverTarget(
                        scheme: scheme,
                        authority: String(afterSlashes[..<slash]),
                        path: String(afterSlashes[slash...])
                    )
                }
                return ResolverTarget(scheme: scheme, path: String(rest))
            }
        }
        return ResolverTarget(scheme: "dns", path: target)
    }

    /// RFC 3986: `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`.
    private static func isScheme(_ text: String) -> Bool {
        guard let first = text.unicodeScalars.first, first.isASCIILetter else { return false }
        return text.unicodeScalars.allSatisfy {
            $0.isASCIILetter || ("0"..."9").contains($0) || $0 == "+" || $0 == "-" || $0 == "."
        }
    }
}

extension Unicode.Scalar {
    fileprivate var isASCIILetter: Bool { ("a"..."z").contains(self) || ("A"..."Z").contains(self) }
}

/// One answer of a name resolver: the addresses the target stands for now.
public struct NameResolutionResult: Sendable, Hashable {
    /// The addresses, in the resolver's order (pick_first tries them in this order, unless it shuffles).
    public var addresses: [SocketAddress]

    /// Creates a result.
    ///
    /// - Parameter addresses: The addresses.
    public init(addresses: [SocketAddress]) {
        self.addresses = addresses
    }
}

/// What a ``NameResolver`` hands the transport for one target: a fixed address list, or a sequence of
/// results the transport consumes while it runs.
///
/// In ``UpdateMode/pull`` mode each `next()` on the sequence is one resolution, made when the transport
/// asks for one: when it first needs addresses, when a connection is lost or gets GOAWAY, or when every
/// address failed, at most once per ``HTTP2ClientTransport/Configuration/minimumResolutionInterval``
/// (30 s by default, as in gRPC), and after a failed resolution again with the connection backoff.
/// In ``UpdateMode/push`` mode the transport reads the sequence from ``HTTP2ClientTransport/connect()``
/// on and applies each result as it comes (a watch on Kubernetes endpoints, say); it never asks.
///
/// A `.failure` element is a failed resolution: while no addresses are known, RPCs fail with its status
/// (wait-for-ready RPCs wait); addresses known from before stay in use. The sequence ending means the
/// resolver has nothing more to say; the last addresses stay in use.
public struct NameResolution: Sendable {
    /// Who decides when to resolve.
    public enum UpdateMode: Sendable, Hashable {
        /// The resolver pushes results when it has them.
        case push
        /// Each `next()` is a resolution the transport asked for.
        case pull
    }

    enum Source: Sendable {
        case fixed([SocketAddress])
        case updates(mode: UpdateMode, makeIterator: @Sendable () -> ResolutionIterator)
    }

    let source: Source

    /// A fixed address list (an IP literal, a Unix socket, a static list): nothing to resolve.
    ///
    /// - Parameter addresses: The addresses.
    public init(addresses: [SocketAddress]) {
        self.source = .fixed(addresses)
    }

    /// Results from a sequence.
    ///
    /// - Parameters:
    ///   - updates: The results; each element an address list or the failure of one resolution.
    ///   - mode: Whether each `next()` is a resolution the transport asks for, or the resolver pushes.
    public init<Updates: AsyncSequence & Sendable>(updates: Updates, mode: UpdateMode)
    where Updates.Element == Result<NameResolutionResult, RPCError>, Updates.Failure == Never {
        self.source = .updates(mode: mode, makeIterator: { TypedResolutionIterator(updates.makeAsyncIterator()) })
    }
}

/// The type-erased iterator of a resolution's sequence (used by one task only).
class ResolutionIterator {
    func next() async -> Result<NameResolutionResult, RPCError>? { nil }
}

private final class TypedResolutionIterator<Iterator: AsyncIteratorProtocol>: ResolutionIterator
where Iterator.Element == Result<NameResolutionResult, RPCError>, Iterator.Failure == Never {
    var iterator: Iterator

    init(_ iterator: Iterator) { self.iterator = iterator }

    override func next() async -> Result<NameResolutionResult, RPCError>? {
        await iterator.next(isolation: nil)
    }
}

/// Turns a ``ResolverTarget`` of one scheme into addresses: the built-in `dns`, `ipv4`, `ipv6`, `unix`
/// and `unix-abstract` resolvers, or one of your own registered in a ``NameResolverRegistry``.
///
/// ``resolution(for:)`` runs when the transport is created and must do no I/O: it checks the target and
/// returns a fixed list, or a sequence whose iteration does the work (see ``NameResolution``).
///
/// A static resolver for `static:///backends`, from a table you keep:
///
/// ```swift
/// struct StaticResolver: NameResolver {
///     let table: [String: [SocketAddress]]
///     var scheme: String { "static" }
///
///     func resolution(for target: ResolverTarget) throws(RuntimeError) -> NameResolution {
///         guard let addresses = table[target.endpoint] else {
///             throw RuntimeError(code: .invalidArgument, message: "No such name: \(target.endpoint)")
///         }
///         return NameResolution(addresses: addresses)
///     }
/// }
///
/// var configuration = HTTP2ClientTransport.Configuration()
/// configuration.resolvers.register(StaticResolver(table: ["backends": addresses]))
/// let transport = try HTTP2ClientTransport(target: "static:///backends", configuration: configuration)
/// ```
///
/// A resolver that watches something (Kubernetes endpoints) returns
/// `NameResolution(updates: stream, mode: .push)` with an `AsyncStream` it feeds.
public protocol NameResolver: Sendable {
    /// The scheme this resolver handles, lower-case (`dns`, `k8s`).
    var scheme: String { get }

    /// Starts the resolution of `target` (no I/O: see ``NameResolver``).
    ///
    /// - Parameter target: The parsed target; its scheme is ``scheme``.
    /// - Returns: The addresses, or the sequence that yields them.
    /// - Throws: `RuntimeError` with `RuntimeError/Code/invalidArgument` for a target this resolver
    ///   can't resolve.
    func resolution(for target: ResolverTarget) throws(RuntimeError) -> NameResolution

    /// The `:authority` RPCs to `target` carry (unless the configuration overrides it). Default: the
    /// target's ``ResolverTarget/endpoint``.
    ///
    /// - Parameter target: The parsed target.
    /// - Returns: The authority.
    func authority(for target: ResolverTarget) -> String
}

extension NameResolver {
    /// The target's ``ResolverTarget/endpoint``.
    public func authority(for target: ResolverTarget) -> String { target.endpoint }
}

/// Name resolvers by scheme. ``defaults`` holds the built-in ones: `dns` (also what a target without a
/// known scheme uses), `ipv4`, `ipv6`, `unix` and `unix-abstract`.
public struct NameResolverRegistry: Sendable {
    private var resolvers: [String: any NameResolver]

    /// An empty registry (a target then needs a resolver you register, and `dns` is unknown).
    public init() {
        self.resolvers = [:]
    }

    /// The built-in resolvers.
    public static var defaults: NameResolverRegistry {
        var registry = NameResolverRegistry()
        registry.register(DNSNameResolver())
        registry.register(IPNameResolver(scheme: "ipv4"))
        registry.register(IPNameResolver(scheme: "ipv6"))
        registry.register(UnixNameResolver(scheme: "unix"))
        registry.register(UnixNameResolver(scheme: "unix-abstract"))
        return registry
    }

    /// Registers `resolver` for its scheme, replacing any resolver registered for it before.
    ///
    /// - Parameter resolver: The resolver.
    public mutating func register(_ resolver: any NameResolver) {
        resolvers[resolver.scheme.lowercased()] = resolver
    }

    /// The resolver for `scheme`, if one is registered.
    ///
    /// - Parameter scheme: A scheme (any case).
    /// - Returns: The resolver, or `nil`.
    public func resolver(forScheme scheme: String) -> (any NameResolver)? {
        resolvers[scheme.lowercased()]
    }
}
