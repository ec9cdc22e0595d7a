import CourierTestSupport
import Foundation
import Testing

@Suite("The epoll fallback")
struct SeccompFallbackTests {
    @Test(
        "Under a seccomp filter that blocks io_uring (as Docker's default profile does), ping-server falls back to epoll and serves"
    )
    func fallsBackToEpoll() async throws {
        let launcher = repositoryRoot.appendingPathComponent("Tests/PingTests/Peers/without_io_uring.py").path
        var environment = ["PORT": "0"]
        environment["COURIER_IO"] = ""  // automatic, whatever the suite runs with
        let server = try ChildProcess(
            "/usr/bin/python3",
            [launcher, productsDirectory.appendingPathComponent("ping-server").path],
            environment: environment
        )
        let listening = try #require(await server.line(containing: "listening"), "\(server.output)")
        #expect(listening.contains("io=epoll"), "\(listening)")
        #expect(listening.contains("Operation not permitted"), "\(listening)")
        let port = try #require(
            listening.split(separator: " ").first { $0.hasPrefix("address=") }
                .flatMap { Int($0.split(separator: ":").last ?? "") },
            "\(listening)"
        )

        let client = try ChildProcess(
            productsDirectory.appendingPathComponent("ping-client").path,
            ["--host", "127.0.0.1:\(port)", "--insecure", "--count", "3", "--stream", "hello"]
        )
        #expect(await client.waitForExit() == 0)
        await client.waitForEndOfOutput()
        #expect(client.output.components(separatedBy: "hello  (").count == 4, "\(client.output)")

        server.signal(SIGTERM)
        #expect(await server.waitForExit() == 0, "\(server.output)")
    }
}
