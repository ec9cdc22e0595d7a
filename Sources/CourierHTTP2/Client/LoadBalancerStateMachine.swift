internal import Courier

/// The connectivity state of a client transport, or of one of its subchannels (gRPC's channel states,
/// grpc/grpc doc/connectivity-semantics-and-api.md).
public enum ConnectivityState: Sendable, Hashable, CustomStringConvertible {
    /// No connection and none being made: the next RPC starts one (also before ``HTTP2ClientTransport/connect()``,
    /// and after an idle timeout).
    case idle
    /// Resolving the target or connecting; RPCs wait.
    case connecting
    /// At least one connection takes RPCs.
    case ready
    /// Resolution or every connection attempt failed; the transport retries with backoff. RPCs fail
    /// with `UNAVAILABLE` unless they wait for ready.
    case transientFailure
    /// The transport has stopped.
    case shutdown

    /// `IDLE`, `CONNECTING`, `READY`, `TRANSIENT_FAILURE`, `SHUTDOWN`.
    public var description: String {
        switch self {
        case .idle: "IDLE"
        case .connecting: "CONNECTING"
        case .ready: "READY"
        case .transientFailure: "TRANSIENT_FAILURE"
        case .shutdown: "SHUTDOWN"
        }
    }
}

/// The load-balancing policy of a client transport: which connections carry the RPCs.
public struct LoadBalancingPolicy: Sendable, Hashable, CustomStringConvertible {
    enum Kind: Hashable {
        case pickFirst(shuffleAddressList: Bool)
        case roundRobin
    }

    let kind: Kind

    /// gRPC's default: one connection, to the first address that answers (the resolver's order, or a
    /// random one with `shuffleAddressList`, which spreads many clients over the addresses, gRFC A62).
    ///
    /// - Parameter shuffleAddressList: Whether to shuffle each address list before trying it.
    /// - Returns: The policy.
    public static func pickFirst(shuffleAddressList: Bool = false) -> Self {
        Self(kind: .pickFirst(shuffleAddressList: shuffleAddressList))
    }

    /// A connection to every address; RPCs take the ready ones in turn. An address whose connection
    /// failed is skipped and reconnected with its own backoff.
    public static let roundRobin = Self(kind: .roundRobin)

    /// The policy a service config's `loadBalancingConfig` names: the first entry this transport
    /// supports (`pick_first`, with `shuffleAddressList`, or `round_robin`), as gRPC chooses; `nil` when
    /// none is supported.
    ///
    /// - Parameter configs: The service config's policies, in its order of preference.
    /// - Returns: The policy, or `nil`.
    static func choosing(from configs: [LoadBalancingConfig]) -> LoadBalancingPolicy? {
        for config in configs {
            switch config.policyName {
            case "pick_first": return .pickFirst(shuffleAddressList: config.shuffleAddressList)
            case "round_robin": return .roundRobin
            default: continue
            }
        }
        return nil
    }

    /// `pick_first` or `round_robin`: the service config's names.
    public var description: String {
        switch kind {
        case .pickFirst: "pick_first"
        case .roundRobin: "round_robin"
        }
    }
}

/// Subchannels and the load-balancing policy over them, as a value: events in (addresses resolved, a
/// subchannel's connection ready, failed or gone, a backoff elapsed, an RPC on an idle transport),
/// actions out (connect a subchannel, shut one down, arm its backoff, a new picker, a resolution
/// request, a new connectivity state). ``ClientConnectionManager`` performs the actions.
///
/// A **subchannel** is one connection at a time to an address list (its own connectivity state and its
/// own connection backoff):
///
/// ```
///  idle ─connect─▶ connecting ─ready─▶ ready ─GOAWAY, lost, idle timeout─▶ idle
///                      └─failed─▶ transientFailure ─backoff elapsed─▶ idle          (any) ─▶ shutdown
/// ```
///
/// - **pick_first** has one subchannel over the whole address list (its connection tries each address
///   in order, with a connect timeout each, as grpc-go's pick_first did before gRFC A61). It connects
///   when the first RPC arrives; after a failure it reconnects when its backoff elapses; when its
///   connection goes away the transport is idle again and the next RPC connects. A new address list
///   keeps a ready connection whose address is still in it, and replaces the subchannel otherwise.
/// - **round_robin** has one subchannel per address, all connected once the first RPC arrives. The
///   picker holds the ready ones; one that fails is skipped and reconnects after its backoff; one that
///   is lost or gets GOAWAY reconnects at once. A new address list keeps the subchannels of the
///   addresses still in it (their connections undisturbed), adds the new ones and shuts the rest down
///   (their RPCs finish first). Idle-timed-out subchannels stay idle; when none is ready or connecting
///   the transport is idle and the next RPC connects them all.
///
/// Re-resolution is requested when a ready connection is lost or gets GOAWAY, and when a connection
/// attempt fails (the manager rate-limits it).
struct LoadBalancerStateMachine {
    struct SubchannelID: Hashable, Comparable, CustomStringConvertible {
        let raw: Int
        static func < (a: Self, b: Self) -> Bool { a.raw < b.raw }
        var description: String { "subchannel \(raw)" }
    }

    struct Subchannel: Equatable {
        enum State: Equatable {
            case idle
            case connecting
            case ready
            case transientFailure(RPCError)
            case shutdown
        }

        let id: SubchannelID
        /// The addresses its connection tries, in order.
        var addresses: [SocketAddress]
        fileprivate(set) var state: State = .idle
        /// The address its connection is connected to, while ready.
        fileprivate(set) var connectedAddress: SocketAddress?
        fileprivate var backoff: ConnectionBackoff.Iterator
    }

    /// How the manager hands out RPCs.
    enum Picker: Equatable {
        /// Nothing connects: keep the RPC and tell the machine (``exitIdle()``).
        case idle
        /// Connecting: keep the RPC until the picker changes.
        case queue
        /// Nothing can connect now: fail the RPC with this (wait-for-ready RPCs stay queued).
        case fail(RPCError)
        /// Open the RPC on one of these (round robin), each ready.
        case ready([SubchannelID])
    }

    /// Why a ready subchannel's connection went away.
    enum Disconnect: Equatable {
        /// The server sent GOAWAY (the connection drains its streams).
        case goAway
        /// The connection was lost (a failure, keepalive) or closed.
        case lost
        /// The connection went unused for the idle timeout.
        case idle
    }

    enum Action: Equatable {
        /// Start a connection for the subchannel to its addresses; its connect timeout is at least
        /// `backoffFloor` (grpc/grpc doc/connection-backoff.md).
        case connect(SubchannelID, [SocketAddress], backoffFloor: Duration)
        /// Forget the subchannel: its connection (if any) takes no new RPCs and closes once its RPCs
        /// have finished; its backoff timer (if any) is cancelled.
        case shutDown(SubchannelID)
        /// Arm the subchannel's backoff timer; ``backoffElapsed(_:)`` when it fires.
        case armBackoff(SubchannelID, Duration)
        /// Hand out RPCs this way from now on.
        case updatePicker(Picker)
        /// Ask the resolver for fresh addresses (rate-limited by the manager).
        case requestResolution
        /// The transport's connectivity state changed.
        case connectivityChanged(ConnectivityState)
    }

    let policy: LoadBalancingPolicy
    let backoff: ConnectionBackoff
    private(set) var subchannels: [SubchannelID: Subchannel] = [:]
    /// The subchannels in address-list order.
    private(set) var order: [SubchannelID] = []
    private(set) var picker: Picker = .idle
    private(set) var state: ConnectivityState = .idle
    /// The last address list.
    private(set) var addresses: [SocketAddress]?
    /// Whether an RPC has asked for connections since the transport was last idle.
    private(set) var active = false
    private var nextID = 0
    /// Why the last resolution failed (cleared by a successful one).
    private var resolutionError: RPCError?
    /// Why the last connection attempt failed.
    private var lastError: RPCError?
    private var isShutDown = false

    init(policy: LoadBalancingPolicy, backoff: ConnectionBackoff) {
        self.policy = policy
        self.backoff = backoff
    }

    // MARK: Events

    /// An RPC found the transport idle (the picker is ``Picker/idle``).
    mutating func exitIdle() -> [Action] {
        guard !isShutDown, !active else { return [] }
        active = true
        var actions: [Action] = []
        if addresses == nil || order.isEmpty { actions.append(.requestResolution) }
        return finish(actions)
    }

    /// The resolver produced an address list.
    mutating func addressesResolved(_ list: [SocketAddress]) -> [Action] {
        guard !isShutDown else { return [] }
        var unique: [SocketAddress] = []
        for address in list where !unique.contains(address) { unique.append(address) }
        addresses = unique
        resolutionError = nil
        var actions: [Action] = []
        switch policy.kind {
        case .pickFirst:
            if let id = order.first, var subchannel = subchannels[id] {
                if subchannel.state == .ready, let connected = subchannel.connectedAddress, unique.contains(connected) {
                    // The connection stays; a later reconnect uses the new list.
                    subchannel.addresses = unique
                    subchannels[id] = subchannel
                    return finish(actions)
                }
                remove(id, &actions)
            }
            if !unique.isEmpty {
                let id = add(unique)
                if active { connect(id, &actions) }
            }
        case .roundRobin:
            for id in order {
                guard let subchannel = subchannels[id], let address = subchannel.addresses.first else { continue }
                if !unique.contains(address) { remove(id, &actions) }
            }
            var kept: [SocketAddress: SubchannelID] = [:]
            for id in order { if let address = subchannels[id]?.addresses.first { kept[address] = id } }
            var newOrder: [SubchannelID] = []
            for address in unique {
                if let id = kept[address] {
                    newOrder.append(id)
                } else {
                    let id = add([address])
                    newOrder.append(id)
                    if active { connect(id, &actions) }
                }
            }
            order = newOrder
        }
        return finish(actions)
    }

    /// A resolution failed. Known addresses stay in use; without any, RPCs fail with `error`.
    mutating func resolutionFailed(_ error: RPCError) -> [Action] {
        guard !isShutDown else { return [] }
        resolutionError = error
        return finish([])
    }

    /// The subchannel's connection is ready (the server's SETTINGS arrived), connected to `address`.
    mutating func subchannelReady(_ id: SubchannelID, address: SocketAddress) -> [Action] {
        guard var subchannel = subchannels[id], subchannel.state == .connecting else { return [] }
        subchannel.state = .ready
        subchannel.connectedAddress = address
        subchannel.backoff = backoff.makeIterator()
        subchannels[id] = subchannel
        lastError = nil
        return finish([])
    }

    /// The subchannel's connection attempt failed (every address it tried).
    mutating func subchannelConnectFailed(_ id: SubchannelID, error: RPCError) -> [Action] {
        guard var subchannel = subchannels[id], subchannel.state == .connecting else { return [] }
        let delay = subchannel.backoff.next()
        subchannel.state = .transientFailure(error)
        subchannels[id] = subchannel
        lastError = error
        return finish([.armBackoff(id, delay), .requestResolution])
    }

    /// The subchannel's backoff timer fired.
    mutating func backoffElapsed(_ id: SubchannelID) -> [Action] {
        guard var subchannel = subchannels[id], case .transientFailure = subchannel.state else { return [] }
        subchannel.state = .idle
        subchannels[id] = subchannel
        var actions: [Action] = []
        // Both policies reconnect after a failure while RPCs want connections.
        if active { connect(id, &actions) }
        return finish(actions)
    }

    /// The subchannel's ready connection went away.
    mutating func subchannelDisconnected(_ id: SubchannelID, _ reason: Disconnect) -> [Action] {
        guard var subchannel = subchannels[id], subchannel.state == .ready else { return [] }
        subchannel.state = .idle
        subchannel.connectedAddress = nil
        subchannels[id] = subchannel
        var actions: [Action] = reason == .idle ? [] : [.requestResolution]
        switch policy.kind {
        case .pickFirst:
            active = false  // the next RPC connects again
        case .roundRobin:
            if reason != .idle, active { connect(id, &actions) }
            let busy = order.contains { id in
                switch subchannels[id]?.state {
                case .ready?, .connecting?: true
                default: false
                }
            }
            if !busy { active = false }
        }
        return finish(actions)
    }

    /// The transport stops: every subchannel shuts down.
    mutating func shutDown() -> [Action] {
        guard !isShutDown else { return [] }
        isShutDown = true
        var actions: [Action] = []
        for id in order { remove(id, &actions) }
        order = []
        picker = .fail(RPCError(code: .unavailable, message: "The client transport is closed."))
        state = .shutdown
        actions.append(.updatePicker(picker))
        actions.append(.connectivityChanged(.shutdown))
        return actions
    }

    // MARK: Helpers

    private mutating func add(_ addresses: [SocketAddress]) -> SubchannelID {
        let id = SubchannelID(raw: nextID)
        nextID += 1
        subchannels[id] = Subchannel(id: id, addresses: addresses, backoff: backoff.makeIterator())
        if case .pickFirst = policy.kind { order = [id] } else { order.append(id) }
        return id
    }

    private mutating func remove(_ id: SubchannelID, _ actions: inout [Action]) {
        guard subchannels.removeValue(forKey: id) != nil else { return }
        order.removeAll { $0 == id }
        actions.append(.shutDown(id))
    }

    private mutating func connect(_ id: SubchannelID, _ actions: inout [Action]) {
        guard var subchannel = subchannels[id], subchannel.state == .idle else { return }
        subchannel.state = .connecting
        subchannels[id] = subchannel
        actions.append(.connect(id, subchannel.addresses, backoffFloor: subchannel.backoff.upcoming))
    }

    /// Appends a new picker and connectivity state, when they changed.
    private mutating func finish(_ actions: [Action]) -> [Action] {
        guard !isShutDown else { return actions }
        var actions = actions
        // RPCs want connections and none is ready or being made: connect what is idle.
        let busy = order.contains { id in
            switch subchannels[id]?.state {
            case .ready?, .connecting?: true
            default: false
            }
        }
        if active, !busy { for id in order where subchannels[id]?.state == .idle { connect(id, &actions) } }
        let (newPicker, newState) = evaluate()
        if newPicker != picker {
            picker = newPicker
            actions.append(.updatePicker(newPicker))
        }
        if newState != state {
            state = newState
            actions.append(.connectivityChanged(newState))
        }
        return actions
    }

    /// gRPC's aggregation: any ready → ready; else any connecting → connecting; else idle when nothing
    /// asked for connections; else transient failure.
    private func evaluate() -> (Picker, ConnectivityState) {
        let ready = order.filter { subchannels[$0]?.state == .ready }
        if !ready.isEmpty { return (.ready(ready), .ready) }
        guard active else { return (.idle, .idle) }
        if order.contains(where: { subchannels[$0]?.state == .connecting }) { return (.queue, .connecting) }
        if addresses == nil || order.isEmpty {
            if let resolutionError { return (.fail(resolutionError), .transientFailure) }
            if addresses == nil { return (.queue, .connecting) }
            return (
                .fail(RPCError(code: .unavailable, message: "The name resolved to no addresses.")),
                .transientFailure
            )
        }
        let error =
            lastError ?? RPCError(code: .unavailable, message: "Every address failed to connect.")
        return (.fail(error), .transientFailure)
    }
}
