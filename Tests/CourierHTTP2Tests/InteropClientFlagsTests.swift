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

/// Starts interop-server on a free port; its port, and the process (killed by the caller).
func startInteropServer() async throws -> (ChildProcess, Int) {
    let server = try ChildProcess(productsDirectory.appendingPathComponent("interop-server").path, ["--port", "0"])
    // "interop-server listening on ipv4:0.0.0.0:PORT"
    let line = try #require(await server.line(containing: "listening on"), "\(server.output)")
    let port = try #require(
        line.split(separator: ":").last.flatMap { Int($0.split(separator: " ")[0]) },
        "server said: \(line)"
    )
    return (server, port)
}

@Suite("interop-client's --target, --service_config_json and pick_first_unary")
struct InteropClientTargetTests {
    let client = productsDirectory.appendingPathComponent("interop-client").path

    @Test("--target takes any target string and overrides --server_host/--server_port")
    func target() async throws {
        let (server, port) = try await startInteropServer()
        defer { server.signal(SIGKILL) }
        for target in ["ipv4:127.0.0.1:\(port)", "dns:///127.0.0.1:\(port)", "127.0.0.1:\(port)"] {
            let result = try await runProcess(
                client,
                ["--server_host", "192.0.2.1", "--server_port", "1", "--target", target, "--test_case", "empty_unary"]
            )
            #expect(result.status == 0, "\(target): \(result.output)")
            #expect(result.output.contains("1 passed, 0 failed"), "\(target): \(result.output)")
        }
        await server.stop()
    }

    @Test("--service_config_json: a valid config is used; an invalid one is rejected before any call, exit 2")
    func serviceConfig() async throws {
        let (server, port) = try await startInteropServer()
        defer { server.signal(SIGKILL) }
        let valid = #"""
            {"loadBalancingConfig": [{"round_robin": {}}],
             "methodConfig": [{"name": [{"service": "grpc.testing.TestService"}], "timeout": "10s",
                               "retryPolicy": {"maxAttempts": 3, "initialBackoff": "0.1s", "maxBackoff": "1s",
                                               "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}]}
            """#
        let passed = try await runProcess(
            client,
            ["--target", "ipv4:127.0.0.1:\(port)", "--service_config_json", valid, "--test_case", "large_unary"]
        )
        #expect(passed.status == 0, "\(passed.output)")
        #expect(passed.output.contains("1 passed, 0 failed"), "\(passed.output)")
        for (invalid, says) in [
            ("{", "not valid JSON"),
            (
                #"""
                {"methodConfig": [{"name": [{}], "retryPolicy": {"maxAttempts": 1, "initialBackoff": "1s",
                  "maxBackoff": "1s", "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}]}
                """#, "maxAttempts must be at least 2"
            ),
            (#"{"loadBalancingConfig": "round_robin"}"#, "loadBalancingConfig"),
        ] {
            // Nobody listens on port 1: a call that went out would fail with UNAVAILABLE and exit 1.
            let result = try await runProcess(
                client,
                ["--target", "ipv4:127.0.0.1:1", "--service_config_json", invalid, "--test_case", "empty_unary"]
            )
            #expect(result.status == 2, "\(invalid): \(result.output)")
            let first = result.output.split(separator: "\n").first.map(String.init) ?? ""
            #expect(first.hasPrefix("interop-client: invalid --service_config_json: "), "\(invalid): \(result.output)")
            #expect(first.contains(says), "\(invalid): \(result.output)")
            #expect(!result.output.contains("FAIL"), "\(invalid): \(result.output)")
        }
        await server.stop()
    }

    @Test("pick_first_unary: 100 calls over a two-address target all reach one server")
    func pickFirstUnary() async throws {
        let (first, firstPort) = try await startInteropServer()
        defer { first.signal(SIGKILL) }
        let (second, secondPort) = try await startInteropServer()
        defer { second.signal(SIGKILL) }
        let result = try await runProcess(
            client,
            ["--target", "ipv4:127.0.0.1:\(firstPort),127.0.0.1:\(secondPort)", "--test_case", "pick_first_unary"]
        )
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("PASS pick_first_unary"), "\(result.output)")
        await first.stop()
        await second.stop()
    }

    @Test("A failed case prints its status first: name and code, then the message")
    func failurePrintsStatusFirst() async throws {
        let result = try await runProcess(client, ["--target", "ipv4:127.0.0.1:1", "--test_case", "empty_unary"])
        #expect(result.status == 1, "\(result.output)")
        #expect(result.output.contains("FAIL empty_unary: UNAVAILABLE (14)"), "\(result.output)")
    }
}
