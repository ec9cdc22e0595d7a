@_spi(CourierInternals) import Courier
import CourierInMemory
import CourierServiceLifecycle
import Logging
import ServiceLifecycle
import ServiceLifecycleTestKit
import Synchronization
import Testing

/// Strings as UTF-8.
struct UTF8Codec: MessageCodec {
    func serialize(_ message: String) throws -> MessageBuffer { MessageBuffer(message.utf8) }
    func deserialize(_ buffer: MessageBuffer) throws -> String { String(decoding: buffer, as: UTF8.self) }
}

/// A one-shot signal; no sleeping.
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

enum Watch {
    static let watch = MethodDescriptor(fullyQualifiedService: "watch.Watcher", method: "Watch")
    static let get = MethodDescriptor(fullyQualifiedService: "watch.Watcher", method: "Get")
}

/// `Watch` sends "hello", then nothing until the server drains, then ends with OK and the trailer
/// `x-ended: draining`. `Get` echoes.
struct WatchService: RegistrableRPCService {
    let started: Signal

    func registerMethods(with router: inout RPCRouter) {
        let codec = UTF8Codec()
        let started = self.started
        router.registerServerStreaming(forMethod: Watch.watch, deserializer: codec, serializer: codec) {
            _,
            context in
            StreamingServerResponse { writer in
                try await writer.write("hello")
                #expect(!context.isDraining)
                started.fire()
                await context.waitForDraining()  // an idle watch: nothing to send until the drain
                #expect(context.isDraining)
                return ["x-ended": "draining"]
            }
        }
        router.registerUnary(forMethod: Watch.get, deserializer: codec, serializer: codec) { request, _ in
            ServerResponse(message: request.message)
        }
    }
}

extension Result {
    var failureError: Failure {
        if case .failure(let error) = self { return error }
        preconditionFailure("not a failure")
    }
}

@Suite("swift-service-lifecycle")
struct ServiceLifecycleTests {
    let codec = UTF8Codec()
    let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    @Test("An idle server stream ends with OK when the group shuts down gracefully; the drain completes")
    func idleStreamEndsOnDrain() async throws {
        let transport = InMemoryTransport()
        let started = Signal()
        let server = CourierServer(transport: transport.server, services: [WatchService(started: started)])
        let client = CourierClient(transport: transport.client)
        let shutdownBegan = Signal()
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup(of: Void.self) { group in
                let serviceGroup = ServiceGroup(
                    services: [
                        CourierClientService(client),
                        // No grace period: only the handler's own ending lets the drain finish.
                        CourierServerService(server, grace: nil, onGracefulShutdown: { shutdownBegan.fire() }),
                    ],
                    logger: logger
                )
                group.addTask { try await serviceGroup.run() }
                let trailers = try await client.serverStreaming(
                    request: ClientRequest(message: ""),
                    descriptor: Watch.watch,
                    serializer: codec,
                    deserializer: codec
                ) { response in
                    guard case .success(let contents) = response.accepted else { throw response.accepted.failureError }
                    var messages: [String] = []
                    var trailers = Metadata()
                    var iterator = contents.bodyParts.makeAsyncIterator()
                    var triggered = false
                    while let part = try await iterator.next() {
                        switch part {
                        case .message(let message): messages.append(message)
                        case .trailingMetadata(let metadata): trailers = metadata
                        }
                        if !triggered {
                            triggered = true
                            await started.wait()
                            trigger.triggerGracefulShutdown()
                        }
                    }
                    #expect(messages == ["hello"])
                    return trailers
                }
                #expect(trailers.firstString(forKey: "x-ended") == "draining")
                await shutdownBegan.wait()
                try await group.waitForAll()  // the group, and so the server, returned
            }
        }
    }

    @Test("A server shut down through its Service serves RPCs until then and returns")
    func serverAndClientServices() async throws {
        let transport = InMemoryTransport()
        let server = CourierServer(transport: transport.server, services: [WatchService(started: Signal())])
        let client = CourierClient(transport: transport.client)
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup(of: Void.self) { group in
                let serviceGroup = ServiceGroup(
                    services: [CourierClientService(client), CourierServerService(server, grace: .seconds(5))],
                    logger: logger
                )
                group.addTask { try await serviceGroup.run() }
                let reply = try await client.unary(
                    request: ClientRequest(message: "up"),
                    descriptor: Watch.get,
                    serializer: codec,
                    deserializer: codec
                )
                #expect(reply == "up")
                trigger.triggerGracefulShutdown()
                try await group.waitForAll()
            }
        }
        // Both are stopped: the client refuses new calls.
        await #expect(throws: RPCError.self) {
            _ = try await client.unary(
                request: ClientRequest(message: "late"),
                descriptor: Watch.get,
                serializer: codec,
                deserializer: codec
            )
        }
    }

    @Test("A context that no server made is never draining; its wait ends on cancellation")
    func contextWithoutServer() async {
        let context = ServerContext(descriptor: Watch.get, peer: "test")
        #expect(!context.isDraining)
        let task = Task { await context.waitForDraining() }
        task.cancel()
        await task.value
    }
}
