// Server reflection: grpcurl, grpcui and grpcio-reflection list a server's services and call them
// without the .proto files.
import Courier
import CourierHTTP2
import CourierHealth
import CourierReflection
import GRPCTestingProtos

// The descriptors protoc-gen-courier embeds with --courier_opt=ReflectionData=true: each service's file
// and every file it imports.
func reflectionFromGeneratedCode() throws -> ReflectionService {
    try ReflectionService(fileDescriptorProtos: [
        Grpc_Testing_TestService.fileDescriptorProtos,
        Grpc_Health_V1_Health.fileDescriptorProtos,
    ])
}

// Or a descriptor set: protoc --descriptor_set_out=services.pb --include_imports my_service.proto
func reflectionFromDescriptorSet(path: String) throws -> ReflectionService {
    ReflectionService(fileDescriptors: try ReflectionService.fileDescriptors(fromDescriptorSetFile: path))
}

// Add it to the server beside your services.
func server(services: [any RegistrableRPCService]) throws -> CourierServer {
    let reflection = try reflectionFromGeneratedCode()
    let transport = HTTP2ServerTransport(address: .ipv4(host: "127.0.0.1", port: 8080))
    return CourierServer(transport: transport, services: services + [HealthService(), reflection])
}
