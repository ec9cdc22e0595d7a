import Courier
import CourierHealth
import SwiftProtobuf
import Testing

@testable import CourierReflection

/// The index is built on first use, not when the service is created (a server's cold start does not pay
/// for it), and once built it answers as before.
@Suite("Reflection's index is built on first use")
struct ReflectionLazyIndexTests {
    @Test("Creating the service builds no index; serviceNames builds it")
    func serviceNamesBuildsIt() throws {
        let service = try ReflectionService(fileDescriptorProtos: [Grpc_Health_V1_Health.fileDescriptorProtos])
        #expect(!service.isIndexBuilt)
        #expect(
            service.serviceNames == [
                "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
                "grpc.reflection.v1alpha.ServerReflection",
            ]
        )
        #expect(service.isIndexBuilt)
    }

    @Test("Registering with a server builds no index; the first reflection request does, and is answered")
    func firstRequestBuildsIt() async throws {
        let service = try ReflectionService(fileDescriptorProtos: [Grpc_Health_V1_Health.fileDescriptorProtos])
        var router = RPCRouter()
        service.registerMethods(with: &router)
        #expect(!service.isIndexBuilt)
        let answers = try await reflect(
            service,
            [.with { $0.fileContainingSymbol = "grpc.health.v1.Health.Check" }]
        )
        #expect(service.isIndexBuilt)
        let files = try #require(answers.first).fileDescriptorResponse.fileDescriptorProto
        #expect(files.count == 1)
    }

    @Test("A bad descriptor still fails when the service is created, not on the first request")
    func badDescriptorStillThrows() {
        #expect(throws: ReflectionDescriptorError.self) {
            _ = try ReflectionService(fileDescriptorProtos: [["not base64!"]])
        }
    }
}
