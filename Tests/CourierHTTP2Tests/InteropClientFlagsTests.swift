import CourierTestSupport
import Foundation
import Testing

@Suite("interop-client's keepalive flags (grpc-go's names, milliseconds)")
struct InteropClientFlagsTests {
    @Test("interop-client accepts --keepalive_time_ms, --keepalive_timeout_ms and --keepalive_permit_without_calls")
    func accepted() async throws {
        let server = try ChildProcess(productsDirectory.appendingPathComponent("interop-server").path, ["--port", "0"])
        defer { server.signal(SIGKILL) }
        // "interop-server listening on ipv4:0.0.0.0:PORT"
        let line = try #require(await server.line(containing: "listening on"), "\(server.output)")
        let port = try #require(
            line.split(separator: ":").last.flatMap { Int($0.split(separator: " ")[0]) },
            "server said: \(line)"
        )
        let client = productsDirectory.appendingPathComponent("interop-client").path
        for flags in [
            ["--keepalive_time_ms", "10000", "--keepalive_timeout_ms", "5000", "--keepalive_permit_without_calls"],
            ["--keepalive_time_ms=20000", "--keepalive_permit_without_calls=false"],
        ] {
            let result = try await runProcess(
                client,
                ["--server_host", "127.0.0.1", "--server_port", "\(port)", "--test_case", "empty_unary"] + flags
            )
            #expect(result.status == 0, "\(flags): \(result.output)")
            #expect(result.output.contains("1 passed, 0 failed"), "\(flags): \(result.output)")
        }
        for bad in [
            ["--keepalive_time_ms", "soon"], ["--keepalive_timeout_ms", "-5"],
            ["--keepalive_permit_without_calls=maybe"],
        ] {
            let result = try await runProcess(client, ["--server_port", "\(port)", "--test_case", "empty_unary"] + bad)
            #expect(result.status == 2, "\(bad): \(result.output)")
        }
        await server.stop()
    }
}
