@testable import CourierHTTP2

extension ServerConnectionStateMachine {
    /// A machine with a 10 s handshake timeout and 3 resets allowed per second; `configure` changes the rest.
    static func make(
        handshakeTimeout: Duration = .seconds(10),
        maxStreamResetsPerSecond: Int = 3,
        _ configure: (inout Configuration) -> Void = { _ in }
    ) -> Self {
        var configuration = Configuration(
            handshakeTimeout: handshakeTimeout,
            maxStreamResetsPerSecond: maxStreamResetsPerSecond
        )
        configure(&configuration)
        return ServerConnectionStateMachine(configuration: configuration)
    }

    /// A machine driven into `state` by its own events, with `streams` streams open (1, 3, 5, …) where the
    /// state allows streams.
    /// A draining machine has sent its final GOAWAY (its PING was acknowledged) unless
    /// `drainPhase` says otherwise.
    static func driven(
        to state: State,
        streams: Int = 1,
        maxStreamResetsPerSecond: Int = 3,
        drainPhase: DrainPhase = .final
    ) -> Self {
        var machine = Self.make(maxStreamResetsPerSecond: maxStreamResetsPerSecond)
        guard state != .handshaking else { return machine }
        _ = machine.receivedSettings()
        for index in 0..<streams {
            _ = machine.headersBegin(streamID: Int32(2 * index + 1), streamIsOpen: false)
            _ = machine.streamOpened()
        }
        switch state {
        case .handshaking, .active:
            break
        case .draining:
            precondition(streams > 0, "draining needs an open stream")
            _ = machine.beginGracefulShutdown(now: .now)
            if drainPhase == .final { _ = machine.receivedPingAck(payload: ServerConnectionStateMachine.goAwayPing) }
        case .closing:
            _ = machine.receivedProtocolViolation()
        case .closed:
            _ = machine.transportFailed(reason: "peer closed")
        }
        precondition(machine.state == state, "drove to \(machine.state), not \(state)")
        return machine
    }
}
