import Courier
import CourierHealth
import CourierInMemory
import SwiftProtobuf
import Testing

@Suite("grpc.health.v1.Health")
struct HealthServiceTests {
    @Test("Check: the server is SERVING; unknown services are NOT_FOUND; draining is NOT_SERVING")
    func check() async throws {
        let health = HealthService()
        health.setStatus(.serving, forService: "hello.HelloService")
        let transport = InMemoryTransport()
        try await withCourierServer(transport: transport.server, services: [health]) { _ in
            let client = Grpc_Health_V1_Health.Client(wrapping: CourierClient(transport: transport.client))
            #expect(try await client.check(.init()).status == .serving)
            #expect(try await client.check(.with { $0.service = "hello.HelloService" }).status == .serving)
            do {
                _ = try await client.check(.with { $0.service = "nope" })
                Issue.record("expected NOT_FOUND")
            } catch let error as RPCError {
                #expect(error.code == .notFound)
            }
            health.markAllNotServing()
            #expect(try await client.check(.init()).status == .notServing)
            health.setStatus(.serving, forService: "hello.HelloService")
            #expect(try await client.check(.with { $0.service = "hello.HelloService" }).status == .notServing)
        }
    }

    @Test("Watch: the current status, then each change, until cancelled")
    func watch() async throws {
        let health = HealthService()
        let transport = InMemoryTransport()
        try await withCourierServer(transport: transport.server, services: [health]) { _ in
            let client = Grpc_Health_V1_Health.Client(wrapping: CourierClient(transport: transport.client))
            let seen = try await client.watch(.with { $0.service = "svc" }) { response in
                var seen: [Grpc_Health_V1_HealthCheckResponse.ServingStatus] = []
                for try await update in response.messages {
                    seen.append(update.status)
                    switch seen.count {
                    case 1: health.setStatus(.serving, forService: "svc")
                    case 2: health.markAllNotServing()
                    default: return seen  // leaving cancels the watch
                    }
                }
                return seen
            }
            #expect(seen == [.serviceUnknown, .serving, .notServing])
        }
    }

    @Test("Draining ends every watch with NOT_SERVING, then UNAVAILABLE, so that shutdown isn't held up")
    func drainingEndsWatches() async throws {
        let health = HealthService()
        let transport = InMemoryTransport()
        try await withCourierServer(transport: transport.server, services: [health]) { _ in
            let client = Grpc_Health_V1_Health.Client(wrapping: CourierClient(transport: transport.client))
            typealias Seen = [Grpc_Health_V1_HealthCheckResponse.ServingStatus]
            let (seen, error) = try await client.watch(.init()) { response -> (Seen, RPCError.Code?) in
                var seen: [Grpc_Health_V1_HealthCheckResponse.ServingStatus] = []
                do {
                    for try await update in response.messages {
                        seen.append(update.status)
                        if seen.count == 1 { health.markAllNotServing() }
                    }
                } catch let error as RPCError {
                    return (seen, error.code)
                }
                return (seen, nil)
            }
            #expect(seen == [.serving, .notServing])
            #expect(error == .unavailable)
            // A watch started while draining gets the status and ends at once.
            let late = try await client.watch(.init()) { response -> Seen in
                var seen: [Grpc_Health_V1_HealthCheckResponse.ServingStatus] = []
                do { for try await update in response.messages { seen.append(update.status) } } catch {}
                return seen
            }
            #expect(late == [.notServing])
        }
    }
}
