import Courier
import Testing

@testable import CourierHTTP2

/// The addresses a target stands for without resolution, or `nil` for a name to resolve.
func fixedAddresses(_ target: String, registry: NameResolverRegistry = .defaults) throws -> [SocketAddress]? {
    if case .fixed(let addresses) = try ClientTarget.parse(target, registry: registry).resolution.source {
        return addresses
    }
    return nil
}

/// Whether `target` is a name resolved by a pull-mode resolver.
func isPulled(_ target: String) throws -> Bool {
    if case .updates(.pull, _) = try ClientTarget.parse(target).resolution.source { return true }
    return false
}

@Suite("Client targets (gRPC's naming doc) and the resolver registry")
struct ClientTargetTests {
    @Test(
        "URIs split into scheme, authority and path",
        arguments: [
            ("dns:///example.com:443", ResolverTarget(scheme: "dns", authority: "", path: "/example.com:443")),
            ("dns://8.8.8.8/example.com", ResolverTarget(scheme: "dns", authority: "8.8.8.8", path: "/example.com")),
            ("dns:example.com", ResolverTarget(scheme: "dns", path: "example.com")),
            ("DNS:example.com", ResolverTarget(scheme: "dns", path: "example.com")),
            ("unix:///tmp/s", ResolverTarget(scheme: "unix", authority: "", path: "/tmp/s")),
            ("unix:relative/s", ResolverTarget(scheme: "unix", path: "relative/s")),
            ("ipv4:10.0.0.1,10.0.0.2:80", ResolverTarget(scheme: "ipv4", path: "10.0.0.1,10.0.0.2:80")),
            // No registered scheme: the whole string is a DNS name, as in gRPC.
            ("localhost:50051", ResolverTarget(scheme: "dns", path: "localhost:50051")),
            ("[::1]:50051", ResolverTarget(scheme: "dns", path: "[::1]:50051")),
            ("k8s:///svc", ResolverTarget(scheme: "dns", path: "k8s:///svc")),
        ]
    )
    func uriParts(target: String, expected: ResolverTarget) {
        #expect(ResolverTarget.parse(target, registry: .defaults) == expected)
    }

    @Test("The endpoint drops the slash after an authority; description round-trips")
    func endpoint() {
        let target = ResolverTarget.parse("dns:///example.com:443", registry: .defaults)
        #expect(target.endpoint == "example.com:443")
        #expect(target.description == "dns:///example.com:443")
        #expect(ResolverTarget.parse("unix:rel", registry: .defaults).endpoint == "rel")
    }

    @Test(
        "Addresses known without resolution",
        arguments: [
            ("127.0.0.1:80", [SocketAddress.ipv4(host: "127.0.0.1", port: 80)]),
            ("dns:///127.0.0.1:80", [.ipv4(host: "127.0.0.1", port: 80)]),
            ("dns:127.0.0.1", [.ipv4(host: "127.0.0.1", port: 443)]),
            ("[::1]:9", [.ipv6(host: "::1", port: 9)]),
            ("ipv4:10.0.0.1", [.ipv4(host: "10.0.0.1", port: 443)]),
            (
                "ipv4:127.0.0.1:1,127.0.0.2:2,127.0.0.3",
                [
                    .ipv4(host: "127.0.0.1", port: 1), .ipv4(host: "127.0.0.2", port: 2),
                    .ipv4(host: "127.0.0.3", port: 443),
                ]
            ),
            ("ipv6:::1", [.ipv6(host: "::1", port: 443)]),
            ("ipv6:[::1]:8080", [.ipv6(host: "::1", port: 8080)]),
            (
                "ipv6:[::1]:1,[fe80::1],2001:db8::1",
                [.ipv6(host: "::1", port: 1), .ipv6(host: "fe80::1", port: 443), .ipv6(host: "2001:db8::1", port: 443)]
            ),
            ("unix:/tmp/a.sock", [.unix(path: "/tmp/a.sock")]),
            ("unix:relative.sock", [.unix(path: "relative.sock")]),
            ("unix:///tmp/b.sock", [.unix(path: "/tmp/b.sock")]),
            ("unix-abstract:courier", [.unixAbstract(name: "courier")]),
            ("unix-abstract:with/slash", [.unixAbstract(name: "with/slash")]),
        ]
    )
    func fixed(target: String, expected: [SocketAddress]) throws {
        #expect(try fixedAddresses(target) == expected)
    }

    @Test(
        "Names are resolved later, by DNS in pull mode",
        arguments: ["localhost:50051", "dns:///example.com", "dns:example.com:80", "localhost"]
    )
    func names(target: String) throws {
        #expect(try isPulled(target))
    }

    @Test(
        "The default :authority",
        arguments: [
            ("localhost:50051", "localhost:50051"), ("dns:///example.com:443", "example.com:443"),
            ("dns:///example.com", "example.com"), ("[::1]:9", "[::1]:9"), ("ipv4:10.0.0.1:5,10.0.0.2:6", "10.0.0.1:5"),
            ("ipv6:[::1]:8080", "[::1]:8080"), ("unix:/tmp/a", "localhost"), ("unix-abstract:x", "localhost"),
        ]
    )
    func authority(target: String, expected: String) throws {
        #expect(try ClientTarget.parse(target).authority == expected)
    }

    @Test(
        "Targets that don't parse: INVALID_ARGUMENT at creation, with the reason",
        arguments: [
            ("", "missing host"), ("127.0.0.1:", "bad port"), ("127.0.0.1:99999", "bad port"), (":80", "missing host"),
            ("[::1", "unterminated"), ("[::1]x", "after ']'"), ("::1:80", "brackets"), ("unix:", "no path"),
            ("unix:///", "no path"), ("unix://host/tmp/s", "no authority"), ("dns://8.8.8.8/example.com", "DNS server"),
            ("ipv4:", "empty address"), ("ipv4:10.0.0.1,", "empty address"), ("ipv4:example.com:80", "not an IPv4"),
            ("ipv4:[::1]:80", "not an IPv4"), ("ipv6:127.0.0.1", "not an IPv6"), ("ipv6:[::1]:0", "bad port"),
            ("ipv4:10.0.0.1:http", "bad port"),
        ]
    )
    func invalid(target: String, reason: String) {
        let error = #expect(throws: RuntimeError.self) { _ = try ClientTarget.parse(target) }
        #expect(error?.code == .invalidArgument)
        #expect(error?.message.contains(reason) == true, "\(String(describing: error))")
    }

    struct StaticResolver: NameResolver {
        let table: [String: [SocketAddress]]
        var scheme: String { "static" }

        func resolution(for target: ResolverTarget) throws(RuntimeError) -> NameResolution {
            guard let addresses = table[target.endpoint] else {
                throw RuntimeError(code: .invalidArgument, message: "No such name: \(target.endpoint)")
            }
            return NameResolution(addresses: addresses)
        }
    }

    @Test("A resolver registered for a scheme resolves its targets (the documentation's example)")
    func registry() throws {
        let backends: [SocketAddress] = [.ipv4(host: "127.0.0.1", port: 1), .ipv6(host: "::1", port: 2)]
        var configuration = HTTP2ClientTransport.Configuration()
        configuration.resolvers.register(StaticResolver(table: ["backends": backends]))
        _ = try HTTP2ClientTransport(target: "static:///backends", configuration: configuration)
        #expect(try fixedAddresses("static:///backends", registry: configuration.resolvers) == backends)
        #expect(try fixedAddresses("STATIC:backends", registry: configuration.resolvers) == backends)
        #expect(try ClientTarget.parse("static:///backends", registry: configuration.resolvers).authority == "backends")
        let error = #expect(throws: RuntimeError.self) {
            _ = try HTTP2ClientTransport(target: "static:///nothing", configuration: configuration)
        }
        #expect(error?.message == "No such name: nothing")
        // Without the registration the scheme is unknown, so the target is a DNS name (which doesn't parse).
        #expect(throws: RuntimeError.self) { _ = try HTTP2ClientTransport(target: "static:///backends") }
    }

    @Test("An empty registry knows no scheme, not even dns")
    func emptyRegistry() {
        let error = #expect(throws: RuntimeError.self) {
            _ = try ClientTarget.parse("localhost:1", registry: NameResolverRegistry())
        }
        #expect(error?.message.contains("no resolver for the scheme 'dns'") == true)
    }
}
