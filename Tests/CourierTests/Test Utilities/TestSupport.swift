@_spi(CourierInternals) import Courier
import CourierHTTP2
import CourierInMemory
import Foundation
import Synchronization
import Testing

/// Strings as UTF-8; rejects the byte 0xFF so tests can provoke a deserialization failure.
struct UTF8Codec: MessageCodec {
    struct InvalidMessage: Error {}

    func serialize(_ message: String) throws -> MessageBuffer {
        MessageBuffer(message.utf8)
    }

    func deserialize(_ buffer: MessageBuffer) throws -> String {
        if buffer.contains(0xFF) { throw InvalidMessage() }
        return String(decoding: buffer, as: UTF8.self)
    }
}

enum Echo {
    static let service = ServiceDescriptor(package: "echo", service: "Echo")
    static let get = MethodDescriptor(service: service, method: "Get")
    static let expand = MethodDescriptor(service: service, method: "Expand")
    static let collect = MethodDescriptor(service: service, method: "Collect")
    static let update = MethodDescriptor(service: service, method: "Update")
}

/// A service of handlers given as closures, one per method.
struct ClosureService: RegistrableRPCService {
    var register: @Sendable (inout RPCRouter) -> Void
    func registerMethods(with router: inout RPCRouter) { register(&router) }
}

/// The echo service: all four kinds.
///
/// Get echoes the message; Expand sends each space-separated word; Collect joins the messages with
/// spaces; Update echoes each message as it arrives. Request metadata with the key
/// `x-echo-initial` is echoed as response metadata, and `x-echo-trailing-bin` as trailing metadata.
struct EchoService: RegistrableRPCService {
    func registerMethods(with router: inout RPCRouter) {
        let codec = UTF8Codec()
        router.registerUnary(forMethod: Echo.get, deserializer: codec, serializer: codec) { request, _ in
            ServerResponse(
                message: request.message,
                metadata: Self.initial(request.metadata),
                trailingMetadata: Self.trailing(request.metadata)
            )
        }
        router.registerServerStreaming(forMethod: Echo.expand, deserializer: codec, serializer: codec) {
            request,
            _ in
            StreamingServerResponse(metadata: Self.initial(request.metadata)) { writer in
                for word in request.message.split(separator: " ") { try await writer.write(String(word)) }
                return Self.trailing(request.metadata)
            }
        }
        router.registerClientStreaming(forMethod: Echo.collect, deserializer: codec, serializer: codec) {
            request,
            _ in
            var words: [String] = []
            for try await message in request.messages { words.append(message) }
            return ServerResponse(
                message: words.joined(separator: " "),
                metadata: Self.initial(request.metadata),
                trailingMetadata: Self.trailing(request.metadata)
            )
        }
        router.registerBidirectionalStreaming(forMethod: Echo.update, deserializer: codec, serializer: codec) {
            request,
            _ in
            StreamingServerResponse(metadata: Self.initial(request.metadata)) { writer in
                for try await message in request.messages { try await writer.write(message) }
                return Self.trailing(request.metadata)
            }
        }
    }

    static func initial(_ metadata: Metadata) -> Metadata {
        var echoed = Metadata()
        for value in metadata["x-echo-initial"] { echoed.add(value, forKey: "x-echo-initial") }
        return echoed
    }

    static func trailing(_ metadata: Metadata) -> Metadata {
        var echoed = Metadata()
        for value in metadata["x-echo-trailing-bin"] { echoed.add(value, forKey: "x-echo-trailing-bin") }
        return echoed
    }
}

/// Runs a server with `services` and a client connected to it: over the given in-memory transport, or
/// over HTTP/2 on a loopback port when `COURIER_TEST_TRANSPORT=http2` (so the same suite checks that
/// both transports carry the same semantics), else over a new in-memory transport.
@discardableResult
func withTestRPC<Result: Sendable>(
    services: [any RegistrableRPCService] = [EchoService()],
    clientInterceptors: [any ClientInterceptor] = [],
    serverInterceptors: [any ServerInterceptor] = [],
    transport: InMemoryTransport? = nil,
    _ body: (CourierClient) async throws -> Result
) async throws -> Result {
    if transport == nil, ProcessInfo.processInfo.environment["COURIER_TEST_TRANSPORT"] == "http2" {
        var configuration = HTTP2ServerTransport.Configuration()
        configuration.loops = 1
        let server = HTTP2ServerTransport(address: .ipv4(host: "127.0.0.1", port: 0), configuration: configuration)
        return try await withCourierServer(transport: server, services: services, interceptors: serverInterceptors) {
            _ in
            let port = try await server.listeningAddress().port ?? 0
            return try await withCourierClient(
                transport: try HTTP2ClientTransport(target: "127.0.0.1:\(port)"),
                interceptors: clientInterceptors
            ) { client in
                try await body(client)
            }
        }
    }
    let transport = transport ?? InMemoryTransport()
    return try await withCourierServer(
        transport: transport.server,
        services: services,
        interceptors: serverInterceptors
    ) { _ in
        try await withCourierClient(transport: transport.client, interceptors: clientInterceptors) { client in
            try await body(client)
        }
    }
}

/// A one-shot signal one task waits on and another fires; no sleeping.
final class Signal: Sendable {
    private let state = CourierMutex<(fired: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func fire() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.fired = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    var isFired: Bool { state.withLock { $0.fired } }

    func wait() async {
        await withCheckedContinuation { continuation in
            let fired = state.withLock { state -> Bool in
                if state.fired { return true }
                state.waiters.append(continuation)
                return false
            }
            if fired { continuation.resume() }
        }
    }
}

/// A counter shared between tasks.
final class Counter: Sendable {
    private let value = CourierMutex(0)
    @discardableResult
    func increment() -> Int {
        value.withLock {
            $0 += 1
            return $0
        }
    }
    var current: Int { value.withLock { $0 } }
}

/// A log of strings shared between tasks.
final class EventLog: Sendable {
    private let entries = CourierMutex<[String]>([])
    func append(_ entry: String) { entries.withLock { $0.append(entry) } }
    var all: [String] { entries.withLock { $0 } }
}

/// Suspends until the task is cancelled; throws `CancellationError` then.
func waitUntilCancelled() async throws {
    let never = AsyncStream<Void> { _ in }
    for await _ in never {}
    throw CancellationError()
}

/// Expects `body` to throw an ``RPCError`` with `code`, and returns it.
@discardableResult
func expectRPCError(
    _ code: RPCError.Code,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () async throws -> Void
) async -> RPCError? {
    do {
        try await body()
        Issue.record("Expected \(code), but nothing was thrown", sourceLocation: sourceLocation)
        return nil
    } catch let error as RPCError {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("Expected RPCError \(code), got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}
