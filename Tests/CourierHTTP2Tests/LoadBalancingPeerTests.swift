import Courier
import Foundation
import Synchronization
import Testing

@testable import CourierHTTP2

/// One grpcio backend of `Peers/grpcio_lb_backend.py`, listening on `address`.
struct LBBackend: Sendable {
    let name: String
    let address: SocketAddress
    let peer: PeerProcess
}

/// Starts a grpcio backend on each of `hosts` (named `b0`, `b1`, ...), hands them to `body`, then stops
/// those still running.
func withLBBackends<R: Sendable>(
    _ hosts: [String],
    _ body: ([LBBackend]) async throws -> R
) async throws -> R {
    var backends: [LBBackend] = []
    do {
        for (index, host) in hosts.enumerated() {
            let peer = try PeerProcess("grpcio_lb_backend.py", [host, "b\(index)"])
            backends.append(LBBackend(name: "b\(index)", address: .ipv4(host: host, port: 0), peer: peer))
            let port = try await peer.number(after: "PORT")
            backends[index] = LBBackend(
                name: "b\(index)",
                address: host.contains(":") ? .ipv6(host: host, port: port) : .ipv4(host: host, port: port),
                peer: peer
            )
        }
        let result = try await body(backends)
        for backend in backends { await backend.peer.stop() }
        return result
    } catch {
        for backend in backends { await backend.peer.stop() }
        throw error
    }
}

/// The loopback hosts the tests spread backends over: 127.0.0.1 to 127.0.0.3 (all of 127/8 is loopback on
/// Linux) and ::1 where the machine has it.
let loopbackHosts: [String] = ["127.0.0.1", "127.0.0.2", "127.0.0.3"] + (hasIPv6Loopback ? ["::1"] : [])

let hasIPv6Loopback: Bool = {
    let fd = socket(AF_INET6, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var address = sockaddr_in6()
    address.sin6_family = sa_family_t(AF_INET6)
    address.sin6_addr = in6addr_loopback
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) == 0
        }
    }
}()

/// A resolver whose results the test pushes (`test-push:///anything`), or hands out one per request in
/// pull mode (`test-pull:///anything`); `yield` feeds both.
struct ControlledResolver: NameResolver {
    let scheme: String
    let mode: NameResolution.UpdateMode
    let updates: AsyncStream<Result<NameResolutionResult, RPCError>>
    let continuation: AsyncStream<Result<NameResolutionResult, RPCError>>.Continuation

    init(mode: NameResolution.UpdateMode) {
        self.mode = mode
        self.scheme = mode == .push ? "test-push" : "test-pull"
        (updates, continuation) = AsyncStream.makeStream()
    }

    func resolution(for target: ResolverTarget) throws(RuntimeError) -> NameResolution {
        NameResolution(updates: updates, mode: mode)
    }

    func yield(_ backends: [LBBackend]) {
        continuation.yield(.success(NameResolutionResult(addresses: backends.map(\.address))))
    }
}

/// Calls `Get` and splits its answer into the backend's name and the client's address as the backend sees
/// it (one per connection).
func get(_ client: CourierClient) async throws -> (name: String, connection: String) {
    let reply = try await client.unary(
        request: ClientRequest(message: []),
        descriptor: method("Get"),
        serializer: codec,
        deserializer: codec
    )
    let parts = String(decoding: reply, as: UTF8.self).split(separator: " ", maxSplits: 1)
    return (String(parts[0]), parts.count > 1 ? String(parts[1]) : "")
}

/// `count` sequential `Get`s: the backends' names and, per name, the connections it saw.
func spread(
    _ client: CourierClient,
    _ count: Int
) async throws -> (names: [String: Int], connections: [String: Set<String>]) {
    var names: [String: Int] = [:]
    var connections: [String: Set<String>] = [:]
    for _ in 0..<count {
        let (name, connection) = try await get(client)
        names[name, default: 0] += 1
        connections[name, default: []].insert(connection)
    }
    return (names, connections)
}

/// Calls `Hold`: the backend answers once its stdin says `release`.
func hold(_ client: CourierClient) async -> Result<String, RPCError> {
    do {
        let reply = try await client.unary(
            request: ClientRequest(message: []),
            descriptor: method("Hold"),
            serializer: codec,
            deserializer: codec
        )
        return .success(String(String(decoding: reply, as: UTF8.self).split(separator: " ")[0]))
    } catch let error as RPCError {
        return .failure(error)
    } catch {
        return .failure(RPCError(code: .unknown, message: "\(error)"))
    }
}

/// A transport dialling `test-push:///fleet` through `resolver`, balancing with `policy`.
func fleetTransport(_ resolver: ControlledResolver, _ policy: LoadBalancingPolicy) throws -> HTTP2ClientTransport {
    var configuration = HTTP2ClientTransport.Configuration()
    configuration.resolvers.register(resolver)
    configuration.loadBalancing = policy
    return try HTTP2ClientTransport(target: "test-push:///fleet", configuration: configuration)
}

@Suite("Load balancing over grpcio backends on loopback addresses")
struct LoadBalancingPeerTests {
    @Test("round_robin spreads RPCs evenly over every backend (127.0.0.1-3 and ::1), one connection each")
    func roundRobinSpreads() async throws {
        try await withLBBackends(loopbackHosts) { backends in
            let resolver = ControlledResolver(mode: .push)
            resolver.yield(backends)
            let transport = try fleetTransport(resolver, .roundRobin)
            try await withCourierClient(transport: transport) { client in
                _ = try await get(client)
                let ready = try await transport.waitForCounters { $0.connectionsReady >= backends.count }
                let states = await transport.subchannelStates.map(\.state)
                #expect(ready != nil, "not every subchannel got ready: \(states)")
                let rounds = 10
                let (names, connections) = try await spread(client, rounds * backends.count)
                #expect(names == Dictionary(uniqueKeysWithValues: backends.map { ($0.name, rounds) }))
                for backend in backends {
                    #expect(connections[backend.name]?.count == 1, "\(backend.name): \(connections)")
                }
                #expect(await transport.counters.connectionAttempts == backends.count)
            }
        }
    }

    @Test("round_robin chosen by a service config in JSON, over an ipv4: target list")
    func roundRobinFromServiceConfig() async throws {
        try await withLBBackends(Array(loopbackHosts.prefix(3))) { backends in
            let list = backends.map { backend -> String in
                guard case .ipv4(let host, let port) = backend.address else { return "" }
                return "\(host):\(port)"
            }
            let transport = try HTTP2ClientTransport(target: "ipv4:" + list.joined(separator: ","))
            let configuration = CourierClient.Configuration(
                serviceConfig: try ServiceConfig(json: #"{"loadBalancingConfig": [{"round_robin": {}}]}"#)
            )
            try await withCourierClient(transport: transport, configuration: configuration) { client in
                _ = try await get(client)
                #expect(try await transport.waitForCounters { $0.connectionsReady >= 3 } != nil)
                let (names, _) = try await spread(client, 30)
                #expect(names == ["b0": 10, "b1": 10, "b2": 10])
            }
        }
    }

    @Test("pick_first (the default) sends every RPC over one connection to the first backend")
    func pickFirstSticks() async throws {
        try await withLBBackends(loopbackHosts) { backends in
            let resolver = ControlledResolver(mode: .push)
            resolver.yield(backends)
            let transport = try fleetTransport(resolver, .pickFirst())
            try await withCourierClient(transport: transport) { client in
                let (names, connections) = try await spread(client, 20)
                #expect(names == ["b0": 20])
                #expect(connections["b0"]?.count == 1)
                let counters = await transport.counters
                #expect(counters.connectionAttempts == 1)
                #expect(counters.connectionsReady == 1)
            }
        }
    }

    @Test("A backend killed mid-load fails only the RPCs on it; new RPCs go to the others at once")
    func backendKilledMidLoad() async throws {
        try await withLBBackends(Array(loopbackHosts.prefix(3))) { backends in
            let resolver = ControlledResolver(mode: .push)
            resolver.yield(backends)
            let transport = try fleetTransport(resolver, .roundRobin)
            try await withCourierClient(transport: transport) { client in
                _ = try await get(client)
                #expect(try await transport.waitForCounters { $0.connectionsReady >= 3 } != nil)
                let (results, resultsIn) = AsyncStream<Result<String, RPCError>>.makeStream()
                try await withThrowingDiscardingTaskGroup { group in
                    // Six held RPCs: round robin over three ready subchannels puts two on each.
                    for _ in 0..<6 {
                        group.addTask { resultsIn.yield(await hold(client)) }
                    }
                    for backend in backends {
                        let held = await backend.peer.line(startingWith: "HOLD 2")
                        try #require(held != nil, "\(backend.name): \(backend.peer.output)")
                    }
                    await backends[1].peer.kill()
                    var iterator = results.makeAsyncIterator()
                    for _ in 0..<2 {
                        let result = await iterator.next()
                        guard case .failure(let error) = result else {
                            Issue.record("an RPC on the killed backend ended with \(String(describing: result))")
                            continue
                        }
                        #expect(error.code == .unavailable, "\(error)")
                    }
                    // New RPCs go to the two others, none fails.
                    let (names, _) = try await spread(client, 10)
                    #expect(names["b1"] == nil)
                    #expect(names["b0", default: 0] + names["b2", default: 0] == 10)
                    #expect(names["b0", default: 0] >= 1 && names["b2", default: 0] >= 1, "\(names)")
                    // The RPCs held on the others were not disturbed.
                    backends[0].peer.send("release")
                    backends[2].peer.send("release")
                    var held: [String: Int] = [:]
                    for _ in 0..<4 {
                        let result = await iterator.next()
                        guard case .success(let name) = result else {
                            Issue.record("an RPC on a live backend ended with \(String(describing: result))")
                            continue
                        }
                        held[name, default: 0] += 1
                    }
                    #expect(held == ["b0": 2, "b2": 2])
                    resultsIn.finish()
                }
            }
        }
    }

    @Test("Address-list updates from a resolver: new addresses are added, removed ones drained, others undisturbed")
    func addressListUpdates() async throws {
        try await withLBBackends(Array(loopbackHosts.prefix(3))) { backends in
            let resolver = ControlledResolver(mode: .push)
            resolver.yield(Array(backends.prefix(2)))
            let transport = try fleetTransport(resolver, .roundRobin)
            try await withCourierClient(transport: transport) { client in
                _ = try await get(client)
                #expect(try await transport.waitForCounters { $0.connectionsReady >= 2 } != nil)
                let before = try await spread(client, 10)
                #expect(before.names == ["b0": 5, "b1": 5])

                // One RPC held on each of b0 and b1 across the updates.
                async let heldFirst = hold(client)
                async let heldSecond = hold(client)
                #expect(await backends[0].peer.line(startingWith: "HOLD 1") != nil)
                #expect(await backends[1].peer.line(startingWith: "HOLD 1") != nil)

                // b2 joins: it gets RPCs, b0 and b1 keep their connections.
                resolver.yield(backends)
                #expect(
                    try await transport.waitForCounters { $0.resolutionResults >= 2 && $0.connectionsReady >= 3 } != nil
                )
                let added = try await spread(client, 30)
                #expect(added.names == ["b0": 10, "b1": 10, "b2": 10])
                #expect(added.connections["b0"] == before.connections["b0"])
                #expect(added.connections["b1"] == before.connections["b1"])

                // b0 leaves: no new RPCs go to it, b1 and b2 keep their connections, and its held RPC
                // finishes on the draining connection.
                resolver.yield(Array(backends.suffix(2)))
                #expect(try await transport.waitForCounters { $0.subchannelsShutDown >= 1 } != nil)
                let removed = try await spread(client, 20)
                #expect(removed.names == ["b1": 10, "b2": 10])
                #expect(removed.connections["b1"] == before.connections["b1"])
                #expect(removed.connections["b2"] == added.connections["b2"])
                backends[0].peer.send("release")
                backends[1].peer.send("release")
                let held = Set([await heldFirst, await heldSecond].compactMap { try? $0.get() })
                #expect(held == ["b0", "b1"])
                #expect(await transport.counters.connectionAttempts == 3)
            }
        }
    }

    @Test("A lost connection asks a pull-mode resolver again; its new answer is used")
    func reResolutionOnConnectionLoss() async throws {
        try await withLBBackends(Array(loopbackHosts.prefix(2))) { backends in
            let resolver = ControlledResolver(mode: .pull)
            resolver.yield([backends[0]])
            var configuration = HTTP2ClientTransport.Configuration()
            configuration.resolvers.register(resolver)
            configuration.minimumResolutionInterval = .zero
            let transport = try HTTP2ClientTransport(target: "test-pull:///fleet", configuration: configuration)
            try await withCourierClient(transport: transport) { client in
                #expect(try await get(client).name == "b0")
                #expect(await transport.counters.resolutions == 1)
                await backends[0].peer.kill()
                // The transport asks again when the connection goes; the test answers with b1.
                let asked = try await transport.waitForCounters { $0.resolutions >= 2 }
                #expect(asked != nil)
                resolver.yield([backends[1]])
                #expect(try await transport.waitForCounters { $0.resolutionResults >= 2 } != nil)
                #expect(try await get(client).name == "b1")
                #expect(try await get(client).name == "b1")
            }
        }
    }

    @Test("Connectivity: IDLE until an RPC, CONNECTING, READY; a killed backend: TRANSIENT_FAILURE; SHUTDOWN last")
    func connectivity() async throws {
        try await withLBBackends(["127.0.0.1"]) { backends in
            let port = try #require(backends[0].address.port)
            let transport = try HTTP2ClientTransport(target: "127.0.0.1:\(port)")
            #expect(transport.connectivityState == .idle)
            let changes = transport.connectivityStateChanges()
            let watcher = Task {
                var seen: [ConnectivityState] = []
                for await state in changes { seen.append(state) }
                return seen
            }
            try await withCourierClient(transport: transport) { client in
                _ = try await get(client)
                #expect(transport.connectivityState == .ready)
                await backends[0].peer.kill()
                let left = await transport.waitForStateChange(from: .ready)
                #expect(left != .ready && left != .shutdown, "\(left)")
                // The only address now refuses: an RPC fails UNAVAILABLE, the transport is in transient failure.
                let error = await #expect(throws: RPCError.self) { try await get(client) }
                #expect(error?.code == .unavailable, "\(String(describing: error))")
                var state = transport.connectivityState
                while state != .transientFailure, state != .shutdown {
                    state = await transport.waitForStateChange(from: state)
                }
                #expect(state == .transientFailure)
            }
            let seen = await watcher.value
            #expect(Array(seen.prefix(3)) == [.idle, .connecting, .ready], "\(seen)")
            #expect(seen.contains(.transientFailure), "\(seen)")
            #expect(seen.last == .shutdown, "\(seen)")
            #expect(transport.connectivityState == .shutdown)
        }
    }
}
