import Courier
import CourierHTTP2
import CourierHealth
import CourierReflection
import CourierTestSupport
import Foundation
import GreeterService
import Testing

let peersDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Peers")

@Suite("Server reflection against grpcio-reflection's client")
struct ReflectionPeerTests {
    @Test("grpcio-reflection resolves services and calls one over h2c, through v1alpha and v1")
    func grpcioReflectionClient() async throws {
        let transport = HTTP2ServerTransport(address: .ipv4(host: "127.0.0.1", port: 0))
        let reflection = try ReflectionService(fileDescriptorProtos: [
            Hello_HelloService.fileDescriptorProtos, Grpc_Health_V1_Health.fileDescriptorProtos,
        ])
        try await withCourierServer(transport: transport, services: [Greeter(), HealthService(), reflection]) { _ in
            let port = try #require(try await transport.listeningAddress().port)
            let result = try await runProcess(
                "/usr/bin/env",
                ["python3", peersDirectory.appendingPathComponent("grpcio_reflection_client.py").path, "\(port)"]
            )
            #expect(result.status == 0, "\(result.output)")
            #expect(result.output.contains(" passed, 0 failed"), "\(result.output)")
        }
    }
}
