import Courier
import CourierTestSupport
import Testing

@testable import CourierHTTP2

private typealias Machine = ClientConnectionStateMachine

/// A client connection that received nothing for `releaseIdleBuffersAfter` gives its idle buffers back, as a
/// server connection does (``QuietConnectionTests``; `ConnectionIO` does the releasing for both).
@Suite("Quiet client connections release their idle buffers")
struct ClientQuietConnectionTests {
    private static let quiet = Duration.seconds(1)
    private static let configuration = Machine.Configuration(
        connectTimeout: nil,
        keepalive: nil,
        idleTimeout: nil,
        releaseIdleBuffersAfter: quiet
    )

    @Test("Ready: the server's SETTINGS arm the quiet timer when configured, and not otherwise")
    func settingsArm() {
        var on = Machine.driven(to: .handshaking, configuration: Self.configuration)
        #expect(on.receivedSettings(now: t0).contains(.armTimer(.quiet, at: t0.advanced(by: Self.quiet))))
        var off = Machine.driven(to: .handshaking)
        #expect(!off.receivedSettings(now: t0).contains { if case .armTimer(.quiet, _) = $0 { true } else { false } })
    }

    @Test("Nothing received since it was armed: release, and disarmed until bytes arrive")
    func quietReleases() {
        var machine = Machine.driven(to: .ready, configuration: Self.configuration)
        let t1 = t0.advanced(by: Self.quiet)
        #expect(machine.timerFired(.quiet, now: t1, observed: .init()) == [.releaseIdleBuffers])
        #expect(machine.idleBuffersReleased)
        let t2 = t1.advanced(by: .seconds(30))
        #expect(machine.bytesReceivedAfterRelease(now: t2) == [.armTimer(.quiet, at: t2.advanced(by: Self.quiet))])
        #expect(!machine.idleBuffersReleased)
        #expect(machine.bytesReceivedAfterRelease(now: t2) == [], "armed already")
    }

    @Test("Bytes since it was armed: it looks again later; nothing is released")
    func busyLooksAgain() {
        var machine = Machine.driven(to: .ready, configuration: Self.configuration)
        let t1 = t0.advanced(by: Self.quiet)
        let observed = Machine.Observation(receivedSinceQuietArmed: true)
        #expect(
            machine.timerFired(.quiet, now: t1, observed: observed) == [
                .armTimer(.quiet, at: t1.advanced(by: Self.quiet))
            ]
        )
        #expect(!machine.idleBuffersReleased)
    }

    @Test("Going away still releases (its streams run on); closed does nothing")
    func goingAwayAndClosed() {
        var goingAway = Machine.driven(to: .goingAway, configuration: Self.configuration)
        #expect(goingAway.timerFired(.quiet, now: t0, observed: .init()) == [.releaseIdleBuffers])
        var closed = Machine.driven(to: .closed, configuration: Self.configuration)
        #expect(closed.timerFired(.quiet, now: t0, observed: .init()) == [])
    }

    @Test("Over a real socket: a quiet client connection releases its buffers and carries the next RPC")
    func endToEnd() async throws {
        let server = HTTP2ServerTransport(address: .ipv4(host: "127.0.0.1", port: 0))
        try await withCourierServer(transport: server, services: [RawEchoService()]) { _ in
            let port = try #require(try await server.listeningAddress().port)
            var configuration = HTTP2ClientTransport.Configuration()
            configuration.releaseIdleBuffersAfter = .milliseconds(20)
            let transport = try HTTP2ClientTransport(target: "127.0.0.1:\(port)", configuration: configuration)
            try await withCourierClient(transport: transport) { client in
                for round in 1...3 {
                    let message = [UInt8](repeating: UInt8(round), count: 100_000)
                    #expect(try await echoBytes(client, message) == message)
                    let counters = try await transport.waitForCounters(within: .seconds(10)) {
                        $0.idleBufferReleases >= round
                    }
                    #expect(counters != nil, "the connection never released its buffers (round \(round))")
                }
            }
        }
    }
}
