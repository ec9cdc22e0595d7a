import Courier
@testable import CourierHTTP2

/// Three addresses a name resolved to.
let threeAddresses: [SocketAddress] = [
    .ipv4(host: "10.0.0.1", port: 443), .ipv4(host: "10.0.0.2", port: 443), .ipv6(host: "::1", port: 443),
]

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

    /// A machine over `addresses` driven to `stage` (goingAway with last stream 5; closed by the owner).
    static func driven(to stage: Stage, addresses: [SocketAddress] = threeAddresses) -> Self {
        var machine = ClientConnectionStateMachine(addresses: addresses)
        guard stage != .idle else { return machine }
        _ = machine.start()
        guard stage != .connecting else { return machine }
        _ = machine.connectCompleted(errno: 0, description: "")
        guard stage != .handshaking else { return machine }
        _ = machine.receivedSettings()
        switch stage {
        case .idle, .connecting, .handshaking, .ready: break
        case .goingAway: _ = machine.receivedGoAway(lastStreamID: 5)
        case .closed: _ = machine.close()
        }
        return machine
    }
}
