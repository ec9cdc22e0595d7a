import Courier
import CourierHTTP2
import CourierHealth
import CourierTestSupport
import Foundation
import PingService
import SwiftProtobuf
import Synchronization
import Testing

/// ping-server on a free port, behind nghttpx terminating TLS on a Unix socket (as Knative's ingress and
/// queue-proxy terminate TLS and forward h2c to the container's port).
struct KnativeStack {
    let server: ChildProcess
    let proxy: ChildProcess
    let serverPort: Int
    let socket: String
    let pki: String

    static func start(token: String? = nil, drainSeconds: Int = 20) async throws -> KnativeStack {
        let pki = try await TestPKI.directory()
        var environment = ["PORT": "0", "PING_DRAIN_SECONDS": "\(drainSeconds)"]
        if let token { environment["PING_AUTH_TOKEN"] = token }
        let server = try ChildProcess(
            productsDirectory.appendingPathComponent("ping-server").path,
            [],
            environment: environment
        )
        let listening = try #require(await server.line(containing: "listening"), "ping-server said: \(server.output)")
        let port = try #require(
            listening.split(separator: " ").first { $0.hasPrefix("address=") }
                .flatMap { Int($0.split(separator: ":").last ?? "") },
            "\(listening)"
        )
        let socket = "\(pki)/ingress.sock"
        let proxy = try ChildProcess(
            "/usr/sbin/nghttpx",
            [
                "--conf=/dev/null", "--frontend=unix:\(socket)", "--backend=127.0.0.1,\(port);;proto=h2",
                "--single-process", "--workers=1", "--no-ocsp", "--log-level=NOTICE", "--accesslog-file=/dev/null",
                "\(pki)/server.key", "\(pki)/server.pem",
            ]
        )
        _ = try #require(
            await proxy.line(containing: "Listening on UNIX domain socket"),
            "nghttpx said: \(proxy.output)"
        )
        return KnativeStack(server: server, proxy: proxy, serverPort: port, socket: socket, pki: pki)
    }

    func stop() async {
        proxy.signal(SIGKILL)  // nghttpx started from a test ignores SIGTERM (it inherits a blocked signal mask)
        _ = await proxy.waitForExit()
        await server.stop()
    }

    /// `ping-client` through the ingress with the test CA and the authority override.
    func pingClient(_ arguments: [String]) async throws -> (status: Int32, output: String) {
        let client = try ChildProcess(
            productsDirectory.appendingPathComponent("ping-client").path,
            [
                "--host", "unix:\(socket)", "--ca-file", "\(pki)/ca.pem", "--authority", "ping.test.example.com",
            ] + arguments
        )
        let status = await client.waitForExit()
        await client.waitForEndOfOutput()
        return (status, client.output)
    }

    /// A Courier client through the ingress.
    func withClient<R: Sendable>(_ body: (Ping_PingService.Client) async throws -> R) async throws -> R {
        try await withCourier { try await body(Ping_PingService.Client(wrapping: $0)) }
    }

    /// A Courier client through the ingress.
    func withCourier<R: Sendable>(_ body: (CourierClient) async throws -> R) async throws -> R {
        var configuration = HTTP2ClientTransport.Configuration()
        configuration.tls = .client(trustRoots: .pemFile("\(pki)/ca.pem"))
        configuration.authority = "ping.test.example.com"
        let transport = try HTTP2ClientTransport(target: "unix:\(socket)", configuration: configuration)
        return try await withCourierClient(transport: transport) { client in try await body(client) }
    }
}

@Suite("The Knative path: ping-client, TLS ingress (nghttpx), h2c, ping-server", .serialized)
struct KnativePathTests {
    @Test("Unary and streaming calls, with the custom CA and the authority override")
    func calls() async throws {
        let stack = try await KnativeStack.start()
        do {
            let unary = try await stack.pingClient(["--count", "3", "hello"])
            #expect(unary.status == 0, "\(unary.output)")
            #expect(unary.output.components(separatedBy: "hello  (").count == 4, "\(unary.output)")
            let stream = try await stack.pingClient(["--stream", "--count", "3", "stream"])
            #expect(stream.status == 0, "\(stream.output)")
            #expect(stream.output.components(separatedBy: "stream  (").count == 4, "\(stream.output)")
            // One log line per RPC, with method, status, duration and peer.
            let logged = try #require(await stack.server.line(containing: "rpc.method=/ping.PingService/SendStream"))
            for field in ["rpc.grpc.status_code=OK", "courier.duration_ms=", "network.peer.address=ipv4:127.0.0.1:"] {
                #expect(logged.contains(field), "\(logged)")
            }
        } catch {
            await stack.stop()
            throw error
        }
        await stack.stop()
    }

    @Test("Status and trailers come through the proxy; auth rejections are UNAUTHENTICATED; health stays open")
    func statusAndAuth() async throws {
        let stack = try await KnativeStack.start(token: "s3cret-token")
        do {
            let rejected = try await stack.pingClient(["hello"])
            #expect(rejected.status != 0)
            #expect(
                rejected.output.contains("unauthenticated") || rejected.output.contains("UNAUTHENTICATED"),
                "\(rejected.output)"
            )
            let wrong = try await stack.pingClient(["--token", "wrong", "hello"])
            #expect(wrong.status != 0)
            #expect(wrong.output.lowercased().contains("unauthenticated"), "\(wrong.output)")
            let accepted = try await stack.pingClient(["--token", "s3cret-token", "hello"])
            #expect(accepted.status == 0, "\(accepted.output)")
            #expect(!stack.server.output.contains("s3cret-token"), "the token must never be logged")

            // Health checks need no token (Kubernetes probes carry none).
            let health = try await stack.withCourier { client in
                try await Grpc_Health_V1_Health.Client(wrapping: client).check(
                    .with { $0.service = "ping.PingService" }
                ).status
            }
            #expect(health == .serving)

            // The status's message and trailers, through the proxy, from the Courier client.
            try await stack.withClient { client in
                let error = await #expect(throws: RPCError.self) { _ = try await client.send(.with { $0.msg = "x" }) }
                #expect(error?.code == .unauthenticated)
                #expect(error?.message.isEmpty == false)
            }
        } catch {
            await stack.stop()
            throw error
        }
        await stack.stop()
    }

    @Test("Reflection lists and resolves ping-server's services for a client with the token, as grpcurl -H does")
    func reflection() async throws {
        let stack = try await KnativeStack.start(token: "s3cret-token")
        do {
            let script = repositoryRoot.appendingPathComponent("Examples/Interop/Peers/grpcio_reflection_list.py").path
            let wanted = ["ping.PingService", "grpc.health.v1.Health"]
            // Reflection is behind the token, as PingService is.
            let refused = try await runProcess("/usr/bin/env", ["python3", script, "\(stack.serverPort)"] + wanted)
            #expect(refused.status != 0, "\(refused.output)")
            #expect(refused.output.contains("UNAUTHENTICATED"), "\(refused.output)")
            let listed = try await runProcess(
                "/usr/bin/env",
                ["REFLECTION_TOKEN=s3cret-token", "python3", script, "\(stack.serverPort)"] + wanted
            )
            #expect(listed.status == 0, "\(listed.output)")
            let services = listed.output.split(separator: "\n").filter { $0.hasPrefix("SERVICE ") }
            #expect(
                services == [
                    "SERVICE grpc.health.v1.Health", "SERVICE grpc.reflection.v1.ServerReflection",
                    "SERVICE grpc.reflection.v1alpha.ServerReflection", "SERVICE ping.PingService",
                ],
                "\(listed.output)"
            )
            #expect(
                listed.output.contains("METHOD ping.PingService/Send ping.Request -> ping.Response"),
                "\(listed.output)"
            )
            #expect(listed.output.contains("METHOD grpc.health.v1.Health/Watch"), "\(listed.output)")
        } catch {
            await stack.stop()
            throw error
        }
        await stack.stop()
    }

    @Test("SIGTERM with 100 RPCs in flight: all of them complete OK, new RPCs are refused, the server exits 0")
    func drainOnSIGTERM() async throws {
        let stack = try await KnativeStack.start(drainSeconds: 25)
        do {
            try await stack.withClient { client in
                let started = AsyncStream<Void>.makeStream()
                let gate = Gate()
                try await withThrowingTaskGroup(of: [String].self) { group in
                    for index in 0..<100 {
                        group.addTask {
                            let (turns, turn) = AsyncStream<Void>.makeStream()
                            turn.yield()
                            return try await client.sendStream(options: CallOptions(timeout: .seconds(60))) { writer in
                                var sent = 0
                                for await _ in turns {
                                    sent += 1
                                    try await writer.write(.with { $0.msg = "\(index)-\(sent)" })
                                    if sent == 2 { break }
                                }
                            } onResponse: { response in
                                var replies: [String] = []
                                for try await reply in response.messages {
                                    replies.append(reply.msg)
                                    if replies.count == 1 {
                                        // Started: the server is serving this RPC. Wait until SIGTERM has been handled.
                                        started.continuation.yield()
                                        await gate.wait()
                                        turn.yield()
                                    } else {
                                        turn.finish()
                                    }
                                }
                                return replies
                            }
                        }
                    }
                    var count = 0
                    for await _ in started.stream {
                        count += 1
                        if count == 100 { break }
                    }
                    stack.server.signal(SIGTERM)
                    _ = try #require(await stack.server.line(containing: "draining"), "\(stack.server.output)")

                    // While draining, new RPCs are refused cleanly (the ingress can't reach the server).
                    // (From another connection: this one has 100 streams open, nghttpx's limit per connection.)
                    let refused = await #expect(throws: RPCError.self) {
                        try await stack.withClient { other in
                            _ = try await other.send(
                                .with { $0.msg = "late" },
                                options: CallOptions(timeout: .seconds(10))
                            )
                        }
                    }
                    #expect(refused?.code == .unavailable, "\(String(describing: refused))")

                    gate.open()
                    var completed = 0
                    for try await replies in group {
                        #expect(replies.count == 2, "\(replies)")
                        completed += 1
                    }
                    #expect(completed == 100)
                }
            }
            let status = await stack.server.waitForExit()
            await stack.server.waitForEndOfOutput()  // the last line may still be in the pipe
            #expect(status == 0, "\(stack.server.output)")
            #expect(stack.server.output.contains("stopped: every RPC has finished"), "\(stack.server.output)")
        } catch {
            await stack.stop()
            throw error
        }
        await stack.stop()
    }
}
