import Courier

@testable import CourierHTTP2

/// Three addresses a name resolved to.
let threeAddresses: [SocketAddress] = [
    .ipv4(host: "10.0.0.1", port: 443), .ipv4(host: "10.0.0.2", port: 443), .ipv6(host: "::1", port: 443),
]

/// The instant the machine tests start at (the machine has no clock: every instant is one of these).
let t0 = ContinuousClock.now

extension ClientConnectionStateMachine.Configuration {
    /// Every timer on: connect timeout 20 s, keepalive 10 s / 2 s (no pings without calls), idle 30 min.
    static let allTimers = Self(
        connectTimeout: .seconds(20),
        keepalive: .init(time: .seconds(10), timeout: .seconds(2), permitWithoutCalls: false),
        idleTimeout: .seconds(1800)
    )

    /// Only a connect timeout of 20 s.
    static let connectTimeoutOnly = Self(connectTimeout: .seconds(20), keepalive: nil, idleTimeout: nil)

    /// Only keepalive: 10 s / 2 s, pings without calls as given.
    static func keepaliveOnly(permitWithoutCalls: Bool = false) -> Self {
        Self(
            connectTimeout: nil,
            keepalive: .init(time: .seconds(10), timeout: .seconds(2), permitWithoutCalls: permitWithoutCalls),
            idleTimeout: nil
        )
    }

    /// Only an idle timeout of 30 min.
    static let idleOnly = Self(connectTimeout: nil, keepalive: nil, idleTimeout: .seconds(1800))
}

extension ClientConnectionStateMachine {
    /// The states a connection can be driven to by its own events (`connecting` at its first address).
    enum Stage: CaseIterable, Sendable, CustomStringConvertible {
        case idle, connecting, handshaking, ready, goingAway, closed

        var description: String {
            switch self {
            case .idle: "idle"
            case .connecting: "connecting"
            case .handshaking: "handshaking"
            case .ready: "ready"
            case .goingAway: "goingAway"
            case .closed: "closed"
            }
        }
    }

    /// A machine over `addresses` driven to `stage` at `t0` (goingAway with last stream 5; closed by the
    /// owner).
    static func driven(
        to stage: Stage,
        addresses: [SocketAddress] = threeAddresses,
        configuration: Configuration = .none
    ) -> Self {
        var machine = ClientConnectionStateMachine(addresses: addresses, configuration: configuration)
        guard stage != .idle else { return machine }
        _ = machine.start(now: t0)
        guard stage != .connecting else { return machine }
        _ = machine.connectCompleted(errno: 0, description: "", now: t0)
        guard stage != .handshaking else { return machine }
        _ = machine.receivedSettings(now: t0)
        switch stage {
        case .idle, .connecting, .handshaking, .ready: break
        case .goingAway: _ = machine.receivedGoAway(lastStreamID: 5)
        case .closed: _ = machine.close()
        }
        return machine
    }
}
