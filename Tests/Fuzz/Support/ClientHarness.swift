internal import Courier
internal import Synchronization

@testable internal import CourierHTTP2

#if canImport(Glibc)
internal import Glibc
#endif

/// Runs one input of fuzz-client-connection: see ``ClientHarness/run(_:options:seed:)``.
public func fuzzClientConnection(_ bytes: [UInt8], options: UInt8, seed: UInt8) {
    ClientHarness.shared.run(bytes, options: options, seed: seed)
}

/// A client connection fed the fuzzer's bytes as its server's: a ``FuzzKernel`` under an event loop driven
/// on the fuzzer's thread, an `HTTP2ClientConnection` (its `socket(2)` is real, its connect completes at
/// once), and calls on it from tasks on the loop, as the transport runs them: they write their requests,
/// then read until their status. Every call must end (a status or an error) and the connection must close
/// once the server's bytes end: never a trap, a hang or unbounded memory.
final class ClientHarness: HTTP2ClientConnectionDelegate, HTTP2StreamRouter, @unchecked Sendable {
    // @unchecked Sendable: touched on the fuzzer's thread only (which is the loop's), except the counters.

    let kernel = FuzzKernel()
    let loop: EventLoop
    private var connection: HTTP2ClientConnection?
    private var closedConnection = false
    private let runningCalls = Counter()
    private static let unavailable = RPCError(code: .unavailable, message: "fuzz: no other connection")

    static let shared = ClientHarness()

    private init() {
        loop = try! EventLoop(name: "fuzz", io: kernel, thread: .caller)
    }

    /// Options: bits 0–1 how many calls (1–4), bit 2 gzip requests, bit 3 a 1 h deadline, bit 4 the calls
    /// cancel after their first response part.
    func run(_ bytes: [UInt8], options: UInt8, seed: UInt8) {
        let loop = self.loop
        var configuration = HTTP2ClientTransport.Configuration.defaults
        configuration.maxHeaderListBytes = 8 * 1024
        let connection = HTTP2ClientConnection(
            delegate: self,
            loop: loop,
            addresses: [.ipv4(host: "127.0.0.1", port: 9)],
            authority: "localhost",
            configuration: configuration,
            tls: nil
        )
        self.connection = connection
        closedConnection = false
        loop.execute { connection.start() }
        loop.runTurn()
        guard let fd = kernel.pendingFD(.connect) else {
            fatalError("the connection did not connect")
        }
        kernel.complete(.connect, fd: fd, result: 0)
        pump(fd: fd)

        let calls = Int(options & 3) + 1
        var callOptions = CallOptions.defaults
        if options & 4 != 0 { callOptions.compression = .gzip }
        if options & 8 != 0 { callOptions.timeout = .seconds(3600) }
        let cancelEarly = options & 16 != 0
        let methods = ["Get", "Expand", "Collect", "Update"]
        for index in 0..<calls {
            let stream = HTTP2ClientStream(
                loop: loop,
                router: self,
                descriptor: MethodDescriptor(fullyQualifiedService: "echo.Echo", method: methods[index]),
                options: callOptions,
                configuration: configuration
            )
            runningCalls.add(1)
            let running = runningCalls
            Task(executorPreference: loop.taskExecutor) {
                defer { running.add(-1) }
                do {
                    try await stream.write(.metadata(["x-call": "\(index)"]))
                    try await stream.write(.message(MessageBuffer([1, 2, 3])))
                    try await stream.finish()
                    var parts = 0
                    while let part = try await stream.next() {
                        parts += 1
                        if cancelEarly {
                            stream.cancel()
                            continue
                        }
                        if case .status = part { break }
                        if parts > 10_000 { fatalError("a call got more than 10000 parts") }
                    }
                } catch {
                    // An error ends the call: what a bad server must cause.
                }
            }
        }
        pump(fd: fd)
        for chunk in FuzzInput.chunks(of: bytes, seed: seed) {
            var rest = chunk
            while !rest.isEmpty, kernel.hasPending(.recv, fd: fd) {
                rest = rest.dropFirst(kernel.receive(rest, fd: fd))
                pump(fd: fd)
            }
            if !kernel.hasPending(.recv, fd: fd) { break }  // the client stopped reading: it is closing
        }
        // The server goes away: every call must end, and the connection close.
        if kernel.hasPending(.recv, fd: fd) { kernel.complete(.recv, fd: fd, result: 0) }
        var turns = 0
        let start = ContinuousClock.now
        while !closedConnection || runningCalls.value > 0 || kernel.hasAny(fd: fd) {
            _ = kernel.drainSends(fd: fd)
            loop.runTurn()
            turns += 1
            if turns > 1000 {
                usleep(100)
                if start.duration(to: .now) > .seconds(10) {
                    fatalError(
                        "hang: closed: \(closedConnection), calls running: \(runningCalls.value)"
                    )
                }
            }
        }
        self.connection = nil
        kernel.forget(fd: fd)
    }

    private func pump(fd: Int32) {
        var quiet = 0
        for _ in 0..<256 {
            let sent = kernel.drainSends(fd: fd)
            loop.runTurn()
            quiet = sent || kernel.hasPending(.send, fd: fd) ? 0 : quiet + 1
            if quiet >= 3 { return }
        }
    }

    // MARK: HTTP2StreamRouter

    func open(_ stream: HTTP2ClientStream) {
        if let connection, connection.isUsable {
            connection.open(stream)
        } else {
            stream.connectionLost(Self.unavailable)
        }
    }

    // MARK: HTTP2ClientConnectionDelegate

    func connectionReady(_ connection: HTTP2ClientConnection) {}

    func connectionFailed(_ connection: HTTP2ClientConnection, waiting: [HTTP2ClientStream], error: RPCError) {
        for stream in waiting { stream.connectionLost(error) }
    }

    func connectionGoingAway(_ connection: HTTP2ClientConnection) {}

    func connectionLost(_ connection: HTTP2ClientConnection, error: RPCError) {}

    func connectionClosed(_ connection: HTTP2ClientConnection) { closedConnection = true }

    func reroute(_ stream: HTTP2ClientStream) { stream.connectionLost(Self.unavailable) }

    func connection(_ connection: HTTP2ClientConnection, observed event: ClientConnectionStateMachine.Event) {}

    func connectionSentKeepalivePing(_ connection: HTTP2ClientConnection) {}
    func connectionReleasedIdleBuffers(_ connection: HTTP2ClientConnection) {}
}
