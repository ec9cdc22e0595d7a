@_spi(CourierInternals) import Courier
import CourierTestSupport
import Testing

@testable import CourierHTTP2

/// `HTTP2ClientTransport.withExecutorPreference`: callers on the transport's loop while it runs, wherever
/// they entered the preference, and never stranded on a loop that has stopped.
@Suite("Callers that prefer the client transport's executor")
struct ClientExecutorPreferenceTests {
    private func echo(_ client: CourierClient) async throws {
        let reply = try await client.unary(
            request: ClientRequest(message: [7]),
            descriptor: method("Get"),
            serializer: codec,
            deserializer: codec
        )
        #expect(reply == [7])
    }

    private func withEchoServer(_ body: (_ port: Int) async throws -> Void) async throws {
        var configuration = HTTP2ServerTransport.Configuration()
        configuration.loops = 1
        let server = HTTP2ServerTransport(address: .ipv4(host: "127.0.0.1", port: 0), configuration: configuration)
        try await withCourierServer(transport: server, services: [RawEchoService()]) { _ in
            try await body(try #require(try await server.listeningAddress().port))
        }
    }

    /// The bench client's shape: the preference taken before `withCourierClient` starts `connect()`. It
    /// used to be a no-op then (no loop yet), so every call hopped between the global pool and the loop.
    @Test("A preference taken before connect() puts the callers on the loop once it runs", .timeLimit(.minutes(2)))
    func beforeConnect() async throws {
        try await withEchoServer { port in
            let transport = try HTTP2ClientTransport(target: "127.0.0.1:\(port)")
            try await transport.withExecutorPreference {
                #expect(!transport.callerIsOnLoopThread)
                try await withCourierClient(transport: transport) { client in
                    try await echo(client)
                    #expect(transport.callerIsOnLoopThread, "the caller resumed off the loop")
                    try await withThrowingTaskGroup(of: Bool.self) { group in
                        for _ in 0..<4 {
                            group.addTask {
                                try await echo(client)
                                return transport.callerIsOnLoopThread
                            }
                        }
                        for try await onLoop in group { #expect(onLoop, "a child task resumed off the loop") }
                    }
                }
                // The transport has stopped; this code still runs (on the global executor).
                #expect(!transport.callerIsOnLoopThread)
            }
        }
    }

    /// A task that prefers the running loop and outlives it: its jobs used to be queued on the stopped
    /// loop and dropped, so it never resumed. The task is unstructured so that a regression fails the test
    /// (after a generous bound) instead of hanging the run.
    @Test("A caller still preferring the loop when it stops runs on")
    func outlivesTheLoop() async throws {
        try await withEchoServer { port in
            let transport = try HTTP2ClientTransport(target: "127.0.0.1:\(port)")
            let client = CourierClient(transport: transport)
            let running = Task { try await client.run() }
            try await echo(client)  // the loop runs
            let (resumed, signal) = AsyncStream<Bool>.makeStream()
            Task {
                defer { signal.finish() }  // a failure ends the wait at once (outcome nil)
                try await transport.withExecutorPreference {
                    try await echo(client)
                    let onLoop = transport.callerIsOnLoopThread
                    client.beginGracefulShutdown()
                    try await running.value  // resumes after the loop has stopped
                    signal.yield(onLoop && !transport.callerIsOnLoopThread)
                }
            }
            let outcome = await withTaskGroup(of: Bool?.self) { group in
                group.addTask {
                    for await outcome in resumed { return outcome }
                    return nil
                }
                group.addTask {
                    try? await Task.sleep(for: .seconds(120))  // a bound, not a synchronisation
                    return nil
                }
                let first = await group.next() ?? nil
                group.cancelAll()
                return first
            }
            #expect(outcome == true, "the caller never resumed after the loop stopped, or ran on the wrong thread")
        }
    }
}
