@_spi(CourierInternals) import Courier
import CourierHTTP2
import CourierTestSupport
import Foundation
import Synchronization
import Testing

/// An actor on the executor the RPC's context names: it records the thread each call runs on.
private actor LoopBoundProbe {
    let executor: any SerialExecutor
    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
    private var calls = 0

    init(executor: any SerialExecutor) { self.executor = executor }

    func call() -> (pthread_t, Int) {
        calls += 1
        return (pthread_self(), calls)
    }

    func thread() -> pthread_t { pthread_self() }
}

/// A plain actor, on the default executor, for comparison (see DesignNotes/0013).
private actor PlainProbe {
    func call() -> pthread_t { pthread_self() }
}

/// What one RPC saw: the handler's thread before and after each call, and the actors' threads.
private struct Observation: Sendable {
    var handler: pthread_t
    var loopActor: pthread_t
    var afterLoopActor: pthread_t
    var plainActor: pthread_t
    var afterPlainActor: pthread_t
    /// The thread of the other loop's actor, once that exists: the hop the test must be able to see.
    var otherLoopActor: pthread_t?
    var shardCalls: Int
    var executor: ObjectIdentifier
}

private final class Observations: Sendable {
    private let entries = CourierMutex<[Observation]>([])
    func append(_ observation: Observation) { entries.withLock { $0.append(observation) } }
    var all: [Observation] { entries.withLock { $0 } }
}

/// Registers `probe.Probe/Call`: the handler calls its loop's shard, then a plain actor, recording threads.
private struct LoopActorProbeService: RegistrableRPCService {
    let shards: LoopLocal<LoopBoundProbe>
    let plain: PlainProbe
    let observations: Observations

    static let call = MethodDescriptor(fullyQualifiedService: "probe.Probe", method: "Call")

    func registerMethods(with router: inout RPCRouter) {
        router.registerUnary(forMethod: Self.call, deserializer: BytesCodec(), serializer: BytesCodec()) {
            [shards, plain, observations] request, context in
            guard let executor = context.executor else { throw RPCError(code: .internal, message: "no executor") }
            let handler = pthread_self()
            let (loopActor, calls) = await shards.value(for: context).call()
            let afterLoopActor = pthread_self()
            let plainActor = await plain.call()
            let afterPlainActor = pthread_self()
            let other = shards.values.first { $0.executor !== executor }
            let otherLoopActor = await other?.thread()
            observations.append(
                Observation(
                    handler: handler,
                    loopActor: loopActor,
                    afterLoopActor: afterLoopActor,
                    plainActor: plainActor,
                    afterPlainActor: afterPlainActor,
                    otherLoopActor: otherLoopActor,
                    shardCalls: calls,
                    executor: ObjectIdentifier(executor)
                )
            )
            return ServerResponse(message: request.message)
        }
    }
}

@Suite("An actor on the loop's executor serves the loop's handlers without a thread hop")
struct LoopActorTests {
    /// Two loops, two connections (accepted round-robin, so one per loop), several calls each: every
    /// call into the loop's shard runs on the handler's own thread, and each loop has its own shard.
    @Test("A handler calls its loop's actor on its own thread")
    func noHop() async throws {
        let observations = Observations()
        let shards = LoopLocal { executor in LoopBoundProbe(executor: executor!) }
        let service = LoopActorProbeService(shards: shards, plain: PlainProbe(), observations: observations)
        var configuration = HTTP2ServerTransport.Configuration()
        configuration.loops = 2
        let server = HTTP2ServerTransport(address: .ipv4(host: "127.0.0.1", port: 0), configuration: configuration)
        let callsPerConnection = 5
        try await withCourierServer(transport: server, services: [service]) { _ in
            let port = try #require(try await server.listeningAddress().port)
            for _ in 0..<2 {
                let transport = try HTTP2ClientTransport(target: "127.0.0.1:\(port)")
                try await withCourierClient(transport: transport) { client in
                    for _ in 0..<callsPerConnection {
                        _ = try await client.unary(
                            request: ClientRequest(message: Array("hi".utf8)),
                            descriptor: LoopActorProbeService.call,
                            serializer: BytesCodec(),
                            deserializer: BytesCodec()
                        ) { try $0.message }
                    }
                }
            }
        }
        let all = observations.all
        #expect(all.count == 2 * callsPerConnection)
        for observation in all {
            #expect(pthread_equal(observation.loopActor, observation.handler) != 0, "the loop's actor hopped")
            #expect(
                pthread_equal(observation.afterLoopActor, observation.handler) != 0,
                "the handler came back elsewhere"
            )
            #expect(pthread_equal(observation.afterPlainActor, observation.handler) != 0)
        }
        // One shard per loop, each called by its own connection's RPCs only.
        #expect(Set(all.map(\.executor)).count == 2)
        #expect(shards.values.count == 2)
        #expect(Set(all.map { UInt($0.handler) }).count == 2)
        #expect(all.map(\.shardCalls).sorted() == (1...callsPerConnection).flatMap { [$0, $0] })
        // The second connection's RPCs also call the first loop's actor: that one does run on another
        // thread, so the checks above would see a hop.
        let crossLoop = all.compactMap { observation in observation.otherLoopActor.map { ($0, observation.handler) } }
        #expect(crossLoop.count == callsPerConnection)
        for (other, handler) in crossLoop { #expect(pthread_equal(other, handler) == 0) }
    }
}
