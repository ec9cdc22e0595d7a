@_spi(CourierInternals) import Courier
import CourierInMemory
import Synchronization
import Testing

/// Strings as UTF-8.
struct StringCodec: MessageCodec {
    func serialize(_ message: String) throws -> MessageBuffer { MessageBuffer(message.utf8) }
    func deserialize(_ buffer: MessageBuffer) throws -> String { String(decoding: buffer, as: UTF8.self) }
}

enum Words {
    static let service = ServiceDescriptor(package: "words", service: "Words")
    /// Unary: echoes.
    static let echo = MethodDescriptor(service: service, method: "Echo")
    /// Server streaming: one response per space-separated word.
    static let split = MethodDescriptor(service: service, method: "Split")
    /// Client streaming: joins the requests with spaces.
    static let join = MethodDescriptor(service: service, method: "Join")
    /// Bidirectional: echoes each request as it arrives.
    static let chat = MethodDescriptor(service: service, method: "Chat")
}

/// The four kinds, with a record of what the handlers saw.
struct WordsService: RegistrableRPCService {
    let seen = Log()

    func registerMethods(with router: inout RPCRouter) {
        let codec = StringCodec()
        let seen = self.seen
        router.registerUnary(forMethod: Words.echo, deserializer: codec, serializer: codec) { request, _ in
            seen.append("echo \(request.message)")
            return ServerResponse(message: request.message)
        }
        router.registerServerStreaming(forMethod: Words.split, deserializer: codec, serializer: codec) { request, _ in
            StreamingServerResponse { writer in
                do {
                    for word in request.message.split(separator: " ") { try await writer.write(String(word)) }
                } catch {
                    seen.append("split write failed: \((error as? RPCError)?.code.description ?? "\(error)")")
                    throw error
                }
                return [:]
            }
        }
        router.registerClientStreaming(forMethod: Words.join, deserializer: codec, serializer: codec) { request, _ in
            var words: [String] = []
            do {
                for try await word in request.messages {
                    words.append(word)
                    seen.append("join got \(word)")
                }
            } catch {
                seen.append("join cancelled: \(Task.isCancelled)")
                throw error
            }
            return ServerResponse(message: words.joined(separator: " "))
        }
        router.registerBidirectionalStreaming(forMethod: Words.chat, deserializer: codec, serializer: codec) {
            request,
            _ in
            StreamingServerResponse { writer in
                do {
                    for try await message in request.messages { try await writer.write(message) }
                } catch {
                    seen.append("chat ended: \(Task.isCancelled ? "cancelled" : "\(error)")")
                    throw error
                }
                return [:]
            }
        }
    }
}

/// Strings shared between tasks.
final class Log: Sendable {
    private let entries = CourierMutex<[String]>([])
    func append(_ entry: String) { entries.withLock { $0.append(entry) } }
    var all: [String] { entries.withLock { $0 } }
}

/// Runs `WordsService` over `transport`, with a client.
@discardableResult
func withWords<R: Sendable>(
    _ transport: InMemoryTransport,
    service: WordsService = WordsService(),
    _ body: (CourierClient) async throws -> R
) async throws -> R {
    try await withCourierServer(transport: transport.server, services: [service]) { _ in
        try await withCourierClient(transport: transport.client) { client in try await body(client) }
    }
}

/// Expects `body` to fail with `code`; returns the error.
@discardableResult
func expectCode(
    _ code: RPCError.Code,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () async throws -> Void
) async -> RPCError? {
    do {
        try await body()
        Issue.record("Expected \(code), the call succeeded", sourceLocation: sourceLocation)
        return nil
    } catch let error as RPCError {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("Expected \(code), got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

@Suite("Fault injection in the in-memory transport")
struct InMemoryFaultsTests {
    let codec = StringCodec()

    func echo(_ client: CourierClient, _ message: String = "m", timeout: Duration? = nil) async throws -> String {
        try await client.unary(
            request: ClientRequest(message: message),
            descriptor: Words.echo,
            serializer: codec,
            deserializer: codec,
            options: CallOptions(timeout: timeout)
        )
    }

    func join(_ client: CourierClient, _ words: [String]) async throws -> String {
        try await client.clientStreaming(
            request: StreamingClientRequest<String> { writer in try await writer.write(contentsOf: words) },
            descriptor: Words.join,
            serializer: codec,
            deserializer: codec
        ) { try $0.message }
    }

    @Test("Per attempt: attempt 1 is refused (REFUSED_STREAM → UNAVAILABLE), attempt 2 is served")
    func perAttempt() async throws {
        let transport = InMemoryTransport()
        transport.faults.inject(.reset(.refusedStream), at: .open, method: Words.echo, attempt: 1)
        let service = WordsService()
        try await withWords(transport, service: service) { client in
            let error = await expectCode(.unavailable) { _ = try await echo(client, "first") }
            #expect(error?.message == "The server refused the stream.")
            let reply = try await echo(client, "second")
            #expect(reply == "second")
        }
        #expect(service.seen.all == ["echo second"])  // the refused attempt never reached the handler
        #expect(
            transport.faults.injected.map(\.description) == [
                "reset REFUSED_STREAM at open of /words.Words/Echo attempt 1"
            ]
        )
    }

    @Test(
        "A reset surfaces as HTTP/2 maps its code",
        arguments: [
            (InMemoryFaults.ResetCode.cancel, RPCError.Code.cancelled),
            (.refusedStream, .unavailable),
            (.enhanceYourCalm, .resourceExhausted),
            (.inadequateSecurity, .permissionDenied),
            (.internalError, .internal),
            (.protocolError, .internal),
            (.noError, .internal),
        ]
    )
    func resetMapping(code: InMemoryFaults.ResetCode, expected: RPCError.Code) async throws {
        let transport = InMemoryTransport()
        transport.faults.inject(.reset(code), at: .requestMessage(1), method: Words.echo)
        try await withWords(transport) { client in
            await expectCode(expected) { _ = try await echo(client) }
        }
        #expect(code.clientError.code == expected)
    }

    @Test("A reset on the 2nd request message: it never arrives, the handler is cancelled, attempt 2 is untouched")
    func resetMidStream() async throws {
        let transport = InMemoryTransport()
        transport.faults.inject(.reset(.cancel), at: .requestMessage(2), method: Words.join, attempt: 1)
        let service = WordsService()
        try await withWords(transport, service: service) { client in
            await expectCode(.cancelled) { _ = try await join(client, ["a", "b", "c"]) }
            // The next stream is another attempt, untouched.
            let reply = try await join(client, ["x", "y"])
            #expect(reply == "x y")
        }
        // Whether "a" was read before the reset discarded it depends on scheduling; "b" and "c" never arrive.
        // The first handler learns of the reset on its own schedule, so its "cancelled" may come after the
        // second call's messages (seen once in CI): each call's events are checked in order, not their
        // interleaving.
        let seen = service.seen.all.filter { $0 != "join got a" }
        #expect(seen.filter { $0.hasPrefix("join cancelled") } == ["join cancelled: true"], "\(seen)")
        #expect(seen.filter { !$0.hasPrefix("join cancelled") } == ["join got x", "join got y"], "\(seen)")
    }

    @Test("fail(_:) ends the call with exactly the error the test chose")
    func chosenError() async throws {
        let transport = InMemoryTransport()
        let chosen = RPCError(code: .dataLoss, message: "the disk ate it")
        transport.faults.inject(.fail(chosen), at: .responseMessage(1), method: Words.echo)
        try await withWords(transport) { client in
            let error = await expectCode(.dataLoss) { _ = try await echo(client) }
            #expect(error?.message == "the disk ate it")
        }
    }

    @Test("Drop: a lost request message never reaches the handler; the stream goes on")
    func dropRequestMessage() async throws {
        let transport = InMemoryTransport()
        transport.faults.inject(.drop, at: .requestMessage(2), method: Words.join)
        try await withWords(transport) { client in
            let reply = try await join(client, ["a", "b", "c"])
            #expect(reply == "a c")
        }
    }

    @Test("Drop: a lost response message, in a server stream")
    func dropResponseMessage() async throws {
        let transport = InMemoryTransport()
        transport.faults.inject(.drop, at: .responseMessage(1), method: Words.split)
        try await withWords(transport) { client in
            let words = try await client.serverStreaming(
                request: ClientRequest(message: "a b c"),
                descriptor: Words.split,
                serializer: codec,
                deserializer: codec
            ) { response in
                var words: [String] = []
                for try await word in response.messages { words.append(word) }
                return words
            }
            #expect(words == ["b", "c"])
        }
    }

    @Test("Drop: a lost status leaves the call waiting, until its deadline (on a manual clock)")
    func dropStatus() async throws {
        let clock = ManualRPCClock()
        let transport = InMemoryTransport(clock: clock)
        transport.faults.inject(.drop, at: .status, method: Words.echo)
        try await withWords(transport) { client in
            let outcome = Task { try await echo(client, timeout: .seconds(2)) }
            await transport.faults.waitUntilInjected(count: 1)  // the handler has answered; the status is lost
            clock.advance(by: .seconds(2))
            await expectCode(.deadlineExceeded) { _ = try await outcome.value }
        }
    }

    @Test("Delay on a manual clock: the response waits until the test advances time, order kept")
    func delayManualClock() async throws {
        let clock = ManualRPCClock()
        let transport = InMemoryTransport(clock: clock)
        transport.faults.inject(.delay(.seconds(5)), at: .responseMessage(1), method: Words.split)
        try await withWords(transport) { client in
            let received = Log()
            let call = Task {
                try await client.serverStreaming(
                    request: ClientRequest(message: "a b"),
                    descriptor: Words.split,
                    serializer: codec,
                    deserializer: codec
                ) { response in
                    for try await word in response.messages { received.append(word) }
                }
            }
            await transport.faults.waitUntilInjected(count: 1)
            #expect(clock.pendingTimers == 1)
            clock.advance(by: .seconds(4))
            #expect(received.all.isEmpty)
            #expect(clock.pendingTimers == 1)
            clock.advance(by: .seconds(1))
            try await call.value
            #expect(received.all == ["a", "b"])  // "b" queued behind the delayed "a"
        }
        #expect(clock.pendingTimers == 0)
    }

    @Test("Delay on the real clock: every request message, a per-connection fault with no method")
    func delayRealClock() async throws {
        let transport = InMemoryTransport()
        transport.faults.inject(.delay(.milliseconds(20)), at: .everyRequestMessage)
        try await withWords(transport) { client in
            let start = ContinuousClock.now
            let reply = try await join(client, ["a", "b"])
            #expect(reply == "a b")
            #expect(ContinuousClock.now - start >= .milliseconds(40))
        }
        #expect(transport.faults.injected.count == 2)
    }

    @Test("A delay longer than the deadline: DEADLINE_EXCEEDED when the deadline passes, the delay abandoned")
    func delayPastDeadline() async throws {
        let clock = ManualRPCClock()
        let transport = InMemoryTransport(clock: clock)
        transport.faults.inject(.delay(.seconds(60)), at: .responseMessage(1), method: Words.split)
        let service = WordsService()
        try await withWords(transport, service: service) { client in
            let outcome = Task {
                try await client.serverStreaming(
                    request: ClientRequest(message: "a"),
                    descriptor: Words.split,
                    serializer: codec,
                    deserializer: codec,
                    options: CallOptions(timeout: .seconds(1))
                ) { response in
                    for try await _ in response.messages {}
                }
            }
            await transport.faults.waitUntilInjected(count: 1)
            clock.advance(by: .seconds(1))
            await expectCode(.deadlineExceeded) { try await outcome.value }
        }
        #expect(service.seen.all == ["split write failed: CANCELLED"])
        #expect(clock.pendingTimers == 0)
    }

    @Test("Write failure: the writer's write throws UNAVAILABLE and so does the call")
    func writeFailure() async throws {
        let transport = InMemoryTransport()
        transport.faults.inject(.failWrite, at: .responseMessage(1), method: Words.split)
        let service = WordsService()
        try await withWords(transport, service: service) { client in
            await expectCode(.unavailable) {
                try await client.serverStreaming(
                    request: ClientRequest(message: "a b"),
                    descriptor: Words.split,
                    serializer: codec,
                    deserializer: codec
                ) { response in
                    for try await _ in response.messages {}
                }
            }
        }
        #expect(service.seen.all == ["split write failed: UNAVAILABLE"])
    }

    @Test("Write failure of a request message: the request writer sees UNAVAILABLE")
    func requestWriteFailure() async throws {
        let transport = InMemoryTransport()
        transport.faults.inject(.failWrite, at: .requestMessage(1), method: Words.join)
        try await withWords(transport) { client in
            await expectCode(.unavailable) { _ = try await join(client, ["a"]) }
        }
    }

    /// Opens a chat that sends one message, yields `echoed` for each echo, and half-closes once
    /// `release` finishes.
    func openChat(
        _ client: CourierClient
    ) -> (call: Task<Void, any Error>, echoed: AsyncStream<Void>, release: AsyncStream<Void>.Continuation) {
        let (echoed, echoedContinuation) = AsyncStream<Void>.makeStream()
        let (release, releaseContinuation) = AsyncStream<Void>.makeStream()
        let codec = self.codec
        let task = Task {
            try await client.bidirectionalStreaming(
                request: StreamingClientRequest<String> { writer in
                    try await writer.write("hi")
                    for await _ in release {}
                },
                descriptor: Words.chat,
                serializer: codec,
                deserializer: codec
            ) { response in
                for try await _ in response.messages { echoedContinuation.yield() }
            }
        }
        return (task, echoed, releaseContinuation)
    }

    @Test("Connection loss: every open stream fails UNAVAILABLE, every handler is cancelled; new calls work")
    func connectionLoss() async throws {
        let transport = InMemoryTransport()
        let service = WordsService()
        try await withWords(transport, service: service) { client in
            let (first, firstEchoed, firstRelease) = openChat(client)
            let (second, secondEchoed, secondRelease) = openChat(client)
            defer {
                firstRelease.finish()
                secondRelease.finish()
            }
            for await _ in firstEchoed { break }
            for await _ in secondEchoed { break }
            transport.faults.loseConnection()
            await expectCode(.unavailable) { try await first.value }
            await expectCode(.unavailable) { try await second.value }
            let reply = try await echo(client, "after")
            #expect(reply == "after")
        }
        #expect(service.seen.all.filter { $0 == "chat ended: cancelled" }.count == 2)
    }

    @Test("Connection loss scripted at the 2nd response message: the other open stream fails too")
    func scriptedConnectionLoss() async throws {
        let transport = InMemoryTransport()
        transport.faults.inject(.loseConnection, at: .responseMessage(2), method: Words.split)
        try await withWords(transport) { client in
            let (chat, echoed, release) = openChat(client)
            defer { release.finish() }
            for await _ in echoed { break }
            await expectCode(.unavailable) {
                try await client.serverStreaming(
                    request: ClientRequest(message: "a b c"),
                    descriptor: Words.split,
                    serializer: codec,
                    deserializer: codec
                ) { response in
                    for try await _ in response.messages {}
                }
            }
            await expectCode(.unavailable) { try await chat.value }
        }
    }

    @Test("GOAWAY: the open stream finishes normally; new streams fail UNAVAILABLE until reconnect()")
    func goAway() async throws {
        let transport = InMemoryTransport()
        try await withWords(transport) { client in
            let (chat, echoed, releaseContinuation) = openChat(client)
            for await _ in echoed { break }
            transport.faults.goAway()
            let error = await expectCode(.unavailable) { _ = try await echo(client) }
            #expect(error?.message.contains("GOAWAY") == true)
            releaseContinuation.finish()
            try await chat.value  // the stream that was open finished with OK
            transport.faults.reconnect()
            let reply = try await echo(client, "again")
            #expect(reply == "again")
        }
    }

    @Test("GOAWAY scripted on the 2nd attempt's open: attempt 1 was served, 2 and 3 are refused")
    func scriptedGoAway() async throws {
        let transport = InMemoryTransport()
        transport.faults.inject(.goAway, at: .open, method: Words.echo, attempt: 2)
        try await withWords(transport) { client in
            let reply = try await echo(client, "1")
            #expect(reply == "1")
            await expectCode(.unavailable) { _ = try await echo(client, "2") }
            await expectCode(.unavailable) { _ = try await echo(client, "3") }
        }
    }

    @Test("removeAll() clears the script")
    func removeAll() async throws {
        let transport = InMemoryTransport()
        transport.faults.inject(.reset(.internalError), at: .open)
        transport.faults.removeAll()
        try await withWords(transport) { client in
            let reply = try await echo(client)
            #expect(reply == "m")
        }
        #expect(transport.faults.injected.isEmpty)
    }
}
