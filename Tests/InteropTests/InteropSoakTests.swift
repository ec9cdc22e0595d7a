import Courier
import CourierHTTP2
import CourierTestSupport
import Foundation
import InteropTestService
import Testing

/// The official soak cases, `rpc_soak` and `channel_soak`, both directions against grpcio. Short runs (50
/// iterations of large_unary each, within 60 s), with the per-iteration latency bound loose enough for a
/// shared 2-core machine.
@Suite("rpc_soak and channel_soak against grpcio, both directions")
struct InteropSoakTests {
    static let soakFlags = [
        "--soak_iterations", "50", "--soak_max_failures", "0",
        "--soak_per_iteration_max_acceptable_latency_ms", "2000", "--soak_overall_timeout_seconds", "60",
        "--soak_min_time_ms_between_rpcs", "5", "--soak_request_size", "271828", "--soak_response_size", "314159",
    ]

    var interopClient: String { productsDirectory.appendingPathComponent("interop-client").path }

    @Test("Courier's interop-client soaks grpcio's TestService", arguments: InteropSoak.Kind.allCases)
    func courierClientSoak(_ kind: InteropSoak.Kind) async throws {
        try await withPythonPeer("grpcio_test_server.py") { port in
            let result = try await run(
                [interopClient, "--server_port", "\(port)", "--test_case", kind.rawValue] + Self.soakFlags
            )
            #expect(result.status == 0, "\(result.output)")
            #expect(result.output.contains("\(kind.rawValue): 50/50 iterations, 0 failed"), "\(result.output)")
            #expect(result.output.contains("PASS \(kind.rawValue)"), "\(result.output)")
        }
    }

    @Test("grpcio's client soaks Courier's TestService", arguments: InteropSoak.Kind.allCases)
    func grpcioClientSoak(_ kind: InteropSoak.Kind) async throws {
        let transport = HTTP2ServerTransport(address: .ipv4(host: "127.0.0.1", port: 0))
        try await withCourierServer(transport: transport, services: [TestService.Registration()]) { _ in
            let port = try #require(try await transport.listeningAddress().port)
            let result = try await run(
                ["python3", "grpcio_interop_client.py", "--server_port", "\(port)", "--test_case", kind.rawValue]
                    + Self.soakFlags
            )
            #expect(result.status == 0, "\(result.output)")
            #expect(result.output.contains("50/50 iterations, 0 failed"), "\(result.output)")
            #expect(result.output.contains("1 passed, 0 failed"), "\(result.output)")
        }
    }

    @Test("A soak fails when iterations fail: an impossible latency bound, and the overall timeout")
    func soakCanFail() async throws {
        let transport = HTTP2ServerTransport(address: .ipv4(host: "127.0.0.1", port: 0))
        try await withCourierServer(transport: transport, services: [TestService.Registration()]) { _ in
            let port = try #require(try await transport.listeningAddress().port)
            // Every iteration takes longer than 0 ms.
            let slow = try await run([
                interopClient, "--server_port", "\(port)", "--test_case", "rpc_soak", "--soak_iterations", "3",
                "--soak_per_iteration_max_acceptable_latency_ms", "0", "--soak_max_failures", "2",
            ])
            #expect(slow.status == 1, "\(slow.output)")
            #expect(slow.output.contains("rpc_soak: 3/3 iterations, 3 failed (max 2)"), "\(slow.output)")
            // 1000 iterations at least 100 ms apart can't finish within 1 s.
            let timedOut = try await run([
                interopClient, "--server_port", "\(port)", "--test_case", "channel_soak", "--soak_iterations", "1000",
                "--soak_min_time_ms_between_rpcs", "100", "--soak_overall_timeout_seconds", "1",
                "--soak_request_size", "10", "--soak_response_size", "10",
            ])
            #expect(timedOut.status == 1, "\(timedOut.output)")
            #expect(timedOut.output.contains("FAIL channel_soak"), "\(timedOut.output)")
        }
    }

    @Test("A soak flag with a bad value is a usage error")
    func badSoakFlag() async throws {
        let result = try await run([interopClient, "--test_case", "rpc_soak", "--soak_iterations", "many"])
        #expect(result.status == 2, "\(result.output)")
    }
}
