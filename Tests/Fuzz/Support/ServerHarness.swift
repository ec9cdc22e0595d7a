internal import Courier
internal import Synchronization

@testable internal import CourierHTTP2

#if canImport(Glibc)
internal import Glibc
#endif

/// One process-wide HTTP/2 server whose connections are fed the fuzzer's bytes as a client's: a
/// ``FuzzKernel`` under an event loop driven on the fuzzer's thread, a `Listener` with no socket
/// (`init(testingOn:...)`), and behind it a real ``CourierServer`` with the four kinds of handler, whose
/// transport only hands the server's stream handler over. The whole path runs: HPACK, frames, flow
/// control, the connection and stream state machines, routing, the executor, the handlers.
public final class ServerHarness: @unchecked Sendable {
    // @unchecked Sendable: touched on the fuzzer's thread only (which is the loop's).

    let kernel = FuzzKernel()
    let loop: EventLoop
    let listener: HTTP2ServerTransport.Listener
    private let activeHandlers = Counter()

    public static let shared = ServerHarness()

    private init() {
        loop = try! EventLoop(name: "fuzz", io: kernel, thread: .caller)
        let (handler, options) = CapturingTransport.startServer(services: [EchoService()])
        var configuration = HTTP2ServerTransport.Configuration.defaults
        configuration.maxConcurrentStreams = 8
        configuration.streamWindowBytes = 16 * 1024
        configuration.connectionWindowBytes = 64 * 1024
        configuration.maxHeaderListBytes = 8 * 1024
        let active = activeHandlers
        listener = HTTP2ServerTransport.Listener(
            testingOn: loop,
            configuration: configuration,
            options: options
        ) { stream in
            active.add(1)
            await handler(stream)
            active.add(-1)
        }
    }

    /// Opens a connection, feeds it `bytes` in the cuts `seed` chooses (the peer reads everything the
    /// server sends), then closes the peer's side and runs the loop until the connection has closed and
    /// every handler has returned. A connection that outlives that (a hang) stops the fuzzer.
    public func run(_ bytes: [UInt8], seed: UInt8) {
        // A real, unconnected TCP socket: the connection asks it for its peer (ENOTCONN: "unknown") and sets
        // TCP_NODELAY; a made-up number would be EBADF, which Courier treats as a bug. Closed for real.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { fatalError("socket() failed: \(errno)") }
        let loop = self.loop
        let listener = self.listener
        loop.execute { listener.open(fd: fd, on: loop) }
        pump(fd: fd)
        for chunk in FuzzInput.chunks(of: bytes, seed: seed) {
            var rest = chunk
            while !rest.isEmpty, kernel.hasPending(.recv, fd: fd) {
                rest = rest.dropFirst(kernel.receive(rest, fd: fd))
                pump(fd: fd)
            }
            if !kernel.hasPending(.recv, fd: fd) { break }  // the server stopped reading: it is closing
        }
        // A few turns for handlers to answer, then the peer goes away.
        for _ in 0..<4 { pump(fd: fd) }
        if kernel.hasPending(.recv, fd: fd) { kernel.complete(.recv, fd: fd, result: 0) }
        var turns = 0
        let start = ContinuousClock.now
        while !kernel.closed.contains(fd) || activeHandlers.value > 0 || kernel.hasAny(fd: fd) {
            _ = kernel.drainSends(fd: fd)
            loop.runTurn()
            turns += 1
            if turns > 1000 {
                // Work may be on another thread (the global executor); give it a moment, within a bound.
                usleep(100)
                if start.duration(to: .now) > .seconds(10) {
                    fatalError(
                        "hang: the connection did not close (closed: \(kernel.closed.contains(fd)), "
                            + "handlers running: \(activeHandlers.value))"
                    )
                }
            }
        }
        kernel.forget(fd: fd)
    }

    /// Runs turns until three in a row send nothing (bounded).
    private func pump(fd: Int32) {
        var quiet = 0
        for _ in 0..<256 {
            let sent = kernel.drainSends(fd: fd)
            loop.runTurn()
            quiet = sent || kernel.hasPending(.send, fd: fd) ? 0 : quiet + 1
            if quiet >= 3 { return }
        }
    }
}

/// A ``ServerTransport`` that hands the server's stream handler to whoever starts the server, then waits
/// forever: the fuzz harness feeds streams to the handler itself.
private final class CapturingTransport: ServerTransport, @unchecked Sendable {
    // @unchecked Sendable: `captured` is behind a mutex.
    typealias Handler = @Sendable (any ServerTransportStream) async -> Void
    let captured = Mutex<(Handler, ServerTransportOptions)?>(nil)
    let parked = Mutex<UnsafeContinuation<Void, Never>?>(nil)

    func listen(
        options: ServerTransportOptions,
        _ streamHandler: nonisolated(nonsending) @escaping @Sendable (any ServerTransportStream) async -> Void
    ) async throws {
        let handler: Handler = { stream in await streamHandler(stream) }
        captured.withLock { $0 = (handler, options) }
        // Never returns. The continuation is kept (never resumed) so that the server's task stays
        // reachable: LeakSanitizer would report it otherwise.
        await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
            parked.withLock { $0 = continuation }
        }
    }

    func beginGracefulShutdown() {}

    static func startServer(services: [any RegistrableRPCService]) -> (Handler, ServerTransportOptions) {
        let transport = CapturingTransport()
        let server = CourierServer(transport: transport, services: services)
        kept.withLock { $0 = (transport, server) }
        Task.detached { try? await server.run() }
        while true {
            if let captured = transport.captured.withLock({ $0 }) { return captured }
            usleep(1000)
        }
    }
}

/// The transport and the server, kept for the process's life.
private let kept = Mutex<(CapturingTransport, CourierServer)?>(nil)

/// The four kinds, with metadata echoed and a failing method: bytes in, bytes out.
private struct EchoService: RegistrableRPCService {
    struct Codec: MessageCodec {
        func serialize(_ message: [UInt8]) throws -> MessageBuffer { MessageBuffer(message) }
        func deserialize(_ buffer: MessageBuffer) throws -> [UInt8] { buffer.withUnsafeBytes { Array($0) } }
    }

    func registerMethods(with router: inout RPCRouter) {
        let codec = Codec()
        func method(_ name: String) -> MethodDescriptor {
            MethodDescriptor(fullyQualifiedService: "echo.Echo", method: name)
        }
        router.registerUnary(forMethod: method("Get"), deserializer: codec, serializer: codec) { request, _ in
            var echoed = Metadata()
            for element in request.metadata where element.key.hasPrefix("x-echo") {
                echoed.add(element.value, forKey: element.key)
            }
            return ServerResponse(message: request.message, metadata: echoed, trailingMetadata: echoed)
        }
        router.registerServerStreaming(forMethod: method("Expand"), deserializer: codec, serializer: codec) {
            request,
            _ in
            StreamingServerResponse { writer in
                for word in request.message.split(separator: UInt8(ascii: " ")).prefix(64) {
                    try await writer.write(Array(word))
                }
                return [:]
            }
        }
        router.registerClientStreaming(forMethod: method("Collect"), deserializer: codec, serializer: codec) {
            request,
            _ in
            var total: [UInt8] = []
            for try await message in request.messages { total += message.prefix(16) }
            return ServerResponse(message: total)
        }
        router.registerBidirectionalStreaming(forMethod: method("Update"), deserializer: codec, serializer: codec) {
            request,
            _ in
            StreamingServerResponse { writer in
                for try await message in request.messages { try await writer.write(message) }
                return [:]
            }
        }
        router.registerUnary(forMethod: method("Fail"), deserializer: codec, serializer: codec) { _, _ in
            throw RPCError(code: .invalidArgument, message: "fails\t☺ %")
        }
    }
}
