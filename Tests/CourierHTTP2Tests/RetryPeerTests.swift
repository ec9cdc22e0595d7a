import CourierHTTP2
import Foundation
import Synchronization
import Testing

@testable import Courier

/// Tells a test when an attempt's stream closed: the explicit signal that a call is between attempts.
final class StreamEvents: ConnectionObserver {
    let closed: AsyncStream<Void>
    private let closedIn: AsyncStream<Void>.Continuation

    init() { (closed, closedIn) = AsyncStream.makeStream() }

    func connectionOpened() {}
    func connectionClosed() {}
    func streamOpened() {}
    func streamClosed() { closedIn.yield() }
}

/// Runs `Peers/grpcio_retry_server.py` and a client to it whose method configs are `methodConfig`, with
/// backoff jitter fixed at `jitter` (0.999: every wait is its bound), and hands `body` both.
func withRetryServer<R: Sendable>(
    _ methodConfig: [MethodConfig],
    jitter: Double = 0.999,
    observer: StreamEvents? = nil,
    bufferBytesPerRPC: Int = 256 * 1024,
    _ body: (PeerProcess, CourierClient) async throws -> R
) async throws -> R {
    let peer = try PeerProcess("grpcio_retry_server.py", [])
    do {
        let port = try await peer.number(after: "PORT")
        var configuration = HTTP2ClientTransport.Configuration()
        configuration.connectionObserver = observer
        let transport = try HTTP2ClientTransport(target: "127.0.0.1:\(port)", configuration: configuration)
        let serviceConfig = ServiceConfig(methodConfig: methodConfig)
        try serviceConfig.validate()
        let client = CourierClient(
            transport: transport,
            interceptors: [],
            validated: CourierClient.Configuration(
                serviceConfig: serviceConfig,
                retryBufferBytesPerRPC: bufferBytesPerRPC
            ),
            random: { jitter }
        )
        let result = try await withThrowingTaskGroup(of: Void.self, returning: R.self) { group in
            group.addTask { try await client.run() }
            do {
                let result = try await body(peer, client)
                client.beginGracefulShutdown()
                try await group.waitForAll()
                return result
            } catch {
                group.cancelAll()
                throw error
            }
        }
        await peer.stop()
        return result
    } catch {
        await peer.stop()
        throw error
    }
}

let retryCall = MethodDescriptor(fullyQualifiedService: "retry.Retry", method: "Call")
let retryCollect = MethodDescriptor(fullyQualifiedService: "retry.Retry", method: "Collect")
let retryBidi = MethodDescriptor(fullyQualifiedService: "retry.Retry", method: "Bidi")

/// A retry policy for `retry.Retry` whose waits are `backoff` (with the jitter of 0.999).
func retrying(
    _ maxAttempts: Int = 3,
    backoff: Duration = .milliseconds(10),
    codes: Set<Status.Code> = [.unavailable]
) -> [MethodConfig] {
    [
        MethodConfig(
            names: [MethodConfig.Name(service: "retry.Retry")],
            executionPolicy: .retry(
                RetryPolicy(
                    maxAttempts: maxAttempts,
                    initialBackoff: backoff,
                    maxBackoff: backoff,
                    backoffMultiplier: 1,
                    retryableStatusCodes: codes
                )
            )
        )
    ]
}

/// A hedging policy for `retry.Retry`.
func hedging(_ maxAttempts: Int, delay: Duration, nonFatal: Set<Status.Code> = []) -> [MethodConfig] {
    [
        MethodConfig(
            names: [MethodConfig.Name(service: "retry.Retry")],
            executionPolicy: .hedging(
                HedgingPolicy(maxAttempts: maxAttempts, hedgingDelay: delay, nonFatalStatusCodes: nonFatal)
            )
        )
    ]
}

/// Calls `retry.Retry/Call` with `directives`; the reply as text.
func call(_ client: CourierClient, _ directives: String, options: CallOptions = .defaults) async throws -> String {
    let reply = try await client.unary(
        request: ClientRequest(message: Array(directives.utf8)),
        descriptor: retryCall,
        serializer: codec,
        deserializer: codec,
        options: options
    )
    return String(decoding: reply, as: UTF8.self)
}

/// The call's error, or `nil` if it succeeded.
func failure(_ body: () async throws -> String) async -> RPCError? {
    do {
        _ = try await body()
        return nil
    } catch {
        return error as? RPCError ?? RPCError(code: .unknown, message: "\(error)")
    }
}

/// The attempts `server` printed, once it has printed the `n`-th (its output is read on a thread of its
/// own, so a line may trail the reply that followed it).
func attempts(_ server: PeerProcess, _ n: Int) async -> [String] {
    _ = await server.line(startingWith: "ATTEMPT \(n) ")
    return server.lines(startingWith: "ATTEMPT")
}

/// The backoff (and hedging delay) the tests set: long enough that an end before it can only be prompt.
/// Ten minutes, not one: a CI run once stalled the whole test process for 64 s (every test in flight,
/// pure ones too, ended in the same tenth of a second after it), which a 60 s backoff can't tell from
/// waiting out the backoff. A broken implementation still fails, after the backoff.
let longBackoff: Duration = .seconds(600)
/// A wait that a prompt end must stay below: half the backoff, so that a machine busy with other work
/// (peer start-up, builds, a stalled CI host) doesn't fail a test that only asks "not after the backoff".
let prompt: Duration = .seconds(300)

@Suite("Retries and hedging (gRFC A6) over HTTP/2 against grpcio")
struct RetryPeerTests {
    @Test("Two UNAVAILABLE attempts, then OK: three attempts, grpc-previous-rpc-attempts 1 and 2 on the retries")
    func retriesUntilSuccess() async throws {
        try await withRetryServer(retrying()) { server, client in
            let reply = try await call(client, "fail=2")
            #expect(reply == "ok 3")
            #expect(
                await attempts(server, 3) == ["ATTEMPT 1 PREVIOUS -", "ATTEMPT 2 PREVIOUS 1", "ATTEMPT 3 PREVIOUS 2"]
            )
        }
    }

    @Test("Attempts used up: the last attempt's status; a status not in retryableStatusCodes: one attempt")
    func givesUp() async throws {
        try await withRetryServer(retrying(3)) { server, client in
            let exhausted = await failure { try await call(client, "fail=9") }
            #expect(exhausted?.code == .unavailable)
            #expect(exhausted?.message == "attempt 3 fails")
            #expect(await attempts(server, 3).count == 3)
        }
        try await withRetryServer(retrying(3)) { server, client in
            let fatal = await failure { try await call(client, "fail=9 code=3") }
            #expect(fatal?.code == .invalidArgument)
            #expect(await attempts(server, 1).count == 1)
        }
    }

    @Test("Server pushback: 10 ms replaces a 10 min backoff; -1 stops retrying")
    func pushback() async throws {
        try await withRetryServer(retrying(3, backoff: longBackoff)) { server, client in
            let start = ContinuousClock.now
            let reply = try await call(client, "fail=2 pushback=10")
            #expect(reply == "ok 3")
            #expect(ContinuousClock.now - start < prompt)
            #expect(await attempts(server, 3).count == 3)
        }
        try await withRetryServer(retrying(3)) { server, client in
            let stopped = await failure { try await call(client, "fail=9 pushback=-1") }
            #expect(stopped?.code == .unavailable)
            #expect(await attempts(server, 1).count == 1)
        }
    }

    @Test("A deadline that expires during the backoff ends the call DEADLINE_EXCEEDED at once")
    func deadlineDuringBackoff() async throws {
        try await withRetryServer(retrying(3, backoff: longBackoff)) { server, client in
            // The connection first, so that the deadline covers the attempt and the backoff only.
            let warmUp = await failure { try await call(client, "") }
            #expect(warmUp == nil, "\(String(describing: warmUp))")
            var options = CallOptions.defaults
            options.timeout = .seconds(3)  // the first attempt fails well within it, even on a busy machine
            let start = ContinuousClock.now
            let error = await failure { try await call(client, "fail=9", options: options) }
            #expect(error?.code == .deadlineExceeded, "\(String(describing: error))")
            #expect(ContinuousClock.now - start < prompt)
            #expect(server.lines(startingWith: "ATTEMPT 2").isEmpty, "no retry within the 10 min backoff")
        }
    }

    @Test("Cancelling the caller during the backoff ends the call CANCELLED at once")
    func cancelDuringBackoff() async throws {
        let observer = StreamEvents()
        try await withRetryServer(retrying(3, backoff: longBackoff), observer: observer) { server, client in
            let start = ContinuousClock.now
            let task = Task { await failure { try await call(client, "fail=9") } }
            // The first attempt's stream closed: the call waits out its 10 min backoff.
            var closed = observer.closed.makeAsyncIterator()
            await closed.next()
            #expect(await attempts(server, 1).count == 1)
            task.cancel()
            let error = await task.value
            #expect(error?.code == .cancelled, "\(String(describing: error))")
            #expect(ContinuousClock.now - start < prompt)
            #expect(await attempts(server, 1).count == 1)
        }
    }

    @Test("Hedging: a stalled first attempt is hedged after the delay; the hedge wins, the first is cancelled")
    func hedgingWins() async throws {
        try await withRetryServer(hedging(2, delay: .milliseconds(50))) { server, client in
            let reply = try await call(client, "stall=1")
            #expect(reply == "ok 2")
            #expect(await server.line(startingWith: "CANCELLED 1") != nil, "\(server.output)")
            #expect(
                await attempts(server, 2).sorted() == ["ATTEMPT 1 PREVIOUS -", "ATTEMPT 2 PREVIOUS 1"]
            )
        }
    }

    @Test("Hedging: a non-fatal failure starts the next attempt at once, not after the 10 min delay")
    func hedgingNonFatal() async throws {
        try await withRetryServer(hedging(3, delay: longBackoff, nonFatal: [.unavailable])) { server, client in
            let start = ContinuousClock.now
            let reply = try await call(client, "fail=2")
            #expect(reply == "ok 3")
            #expect(ContinuousClock.now - start < prompt)
            let fatal = await failure { try await call(client, "fail=9 code=13") }
            #expect(fatal?.code == .internal)
        }
    }

    @Test("Client streaming is retried: every request message is replayed to the next attempt")
    func clientStreamingReplays() async throws {
        try await withRetryServer(retrying(3)) { server, client in
            let reply = try await client.clientStreaming(
                request: StreamingClientRequest<[UInt8]> { writer in
                    try await writer.write(Array("fail=1".utf8))
                    try await writer.write([1])
                    try await writer.write([2])
                },
                descriptor: retryCollect,
                serializer: codec,
                deserializer: codec
            ) { String(decoding: try $0.message, as: UTF8.self) }
            #expect(reply == "ok 2 3")
            #expect(await attempts(server, 2) == ["ATTEMPT 1 PREVIOUS -", "ATTEMPT 2 PREVIOUS 1"])
        }
    }

    /// A bidirectional ping-pong on `retry.Retry/Bidi`: the directives, then each of `pings` once the
    /// previous reply has arrived (the producer waits for the response, as a chat does); the replies.
    func pingPong(_ client: CourierClient, _ directives: String, _ pings: [String]) async throws -> [String] {
        let (replies, repliesIn) = AsyncStream<Void>.makeStream()
        return try await client.bidirectionalStreaming(
            request: StreamingClientRequest<[UInt8]> { writer in
                var replied = replies.makeAsyncIterator()
                try await writer.write(Array(directives.utf8))
                for ping in pings {
                    guard await replied.next() != nil else { return }
                    try await writer.write(Array(ping.utf8))
                }
                _ = await replied.next()
            },
            descriptor: retryBidi,
            serializer: codec,
            deserializer: codec
        ) { response in
            defer { repliesIn.finish() }
            var all: [String] = []
            for try await reply in response.messages {
                all.append(String(decoding: reply, as: UTF8.self))
                repliesIn.yield()
            }
            return all
        }
    }

    @Test("Bidirectional streaming is retried: a ping-pong whose requests wait for replies is replayed")
    func bidirectionalRetried() async throws {
        try await withRetryServer(retrying(3)) { server, client in
            let replies = try await pingPong(client, "fail=2", ["a", "b"])
            #expect(replies == ["ok 3", "a", "b"])
            #expect(
                await attempts(server, 3) == [
                    "ATTEMPT 1 PREVIOUS -", "ATTEMPT 2 PREVIOUS 1", "ATTEMPT 3 PREVIOUS 2",
                ]
            )
        }
    }

    @Test("Bidirectional hedging: a stalled first attempt is hedged; the hedge wins and carries the stream")
    func bidirectionalHedged() async throws {
        try await withRetryServer(hedging(2, delay: .milliseconds(50))) { server, client in
            let replies = try await pingPong(client, "stall=1", ["a", "b"])
            #expect(replies == ["ok 2", "a", "b"])
            #expect(await server.line(startingWith: "CANCELLED 1") != nil, "\(server.output)")
            #expect(await attempts(server, 2).sorted() == ["ATTEMPT 1 PREVIOUS -", "ATTEMPT 2 PREVIOUS 1"])
        }
    }

    @Test("Bidirectional: a request past the per-RPC buffer is committed to its attempt: no retry after")
    func bidirectionalOverflowCommits() async throws {
        try await withRetryServer(retrying(3), bufferBytesPerRPC: 16) { server, client in
            let error = await failure {
                try await client.bidirectionalStreaming(
                    request: StreamingClientRequest<[UInt8]> { writer in
                        // 27 bytes: the log overflows on this append, before the server can have seen
                        // the message, so the overflow comes before any outcome of attempt 1.
                        try await writer.write(Array("fail=1 padding=\(String(repeating: "x", count: 12))".utf8))
                    },
                    descriptor: retryBidi,
                    serializer: codec,
                    deserializer: codec
                ) { response in
                    for try await _ in response.messages {}
                    return ""
                }
            }
            #expect(error?.code == .unavailable)
            #expect(await attempts(server, 1) == ["ATTEMPT 1 PREVIOUS -"])
        }
    }
}
