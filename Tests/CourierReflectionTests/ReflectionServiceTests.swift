import Courier
import CourierHealth
import CourierInMemory
import CourierReflection
import CourierTestSupport
import Foundation
import GreeterService
import SwiftProtobuf
import Testing

/// Two hand-made files: `uses.proto` (a service) imports `ext.proto` (proto2: a message with an
/// extension range, nested types, extensions at file and message scope).
let handMadeFiles: [Google_Protobuf_FileDescriptorProto] = {
    let ext = Google_Protobuf_FileDescriptorProto.with {
        $0.name = "ext.proto"
        $0.package = "ext"
        $0.syntax = "proto2"
        $0.messageType = [
            .with {
                $0.name = "Base"
                $0.field = [
                    .with {
                        $0.name = "id"
                        $0.number = 1
                        $0.type = .int32
                        $0.label = .optional
                    }
                ]
                $0.extensionRange = [
                    .with {
                        $0.start = 100
                        $0.end = 200
                    }
                ]
            },
            .with {
                $0.name = "Outer"
                $0.nestedType = [.with { $0.name = "Inner" }]
                $0.enumType = [
                    .with {
                        $0.name = "Color"
                        $0.value = [
                            .with {
                                $0.name = "RED"
                                $0.number = 0
                            }
                        ]
                    }
                ]
                $0.extension = [
                    .with {
                        $0.name = "outer_tag"
                        $0.number = 101
                        $0.type = .int32
                        $0.label = .optional
                        $0.extendee = ".ext.Base"
                    }
                ]
            },
        ]
        $0.extension = [
            .with {
                $0.name = "tag"
                $0.number = 100
                $0.type = .int32
                $0.label = .optional
                $0.extendee = ".ext.Base"
            }
        ]
    }
    let uses = Google_Protobuf_FileDescriptorProto.with {
        $0.name = "uses.proto"
        $0.package = "uses"
        $0.syntax = "proto3"
        $0.dependency = ["ext.proto"]
        $0.service = [
            .with {
                $0.name = "Things"
                $0.method = [
                    .with {
                        $0.name = "Get"
                        $0.inputType = ".ext.Base"
                        $0.outputType = ".ext.Base"
                    }
                ]
            }
        ]
    }
    return [uses, ext]
}()

typealias Request = Grpc_Reflection_V1_ServerReflectionRequest
typealias Response = Grpc_Reflection_V1_ServerReflectionResponse

/// Sends `requests` on one `ServerReflectionInfo` stream, over v1 or v1alpha, and returns the answers
/// (as v1 messages: the two are the same on the wire).
func reflect(
    _ service: ReflectionService,
    alsoServing others: [any RegistrableRPCService] = [],
    version: String = "v1",
    _ requests: [Request]
) async throws -> [Response] {
    let transport = InMemoryTransport()
    return try await withCourierServer(transport: transport.server, services: [service] + others) { _ in
        let client = CourierClient(transport: transport.client)
        if version == "v1" {
            return try await Grpc_Reflection_V1_ServerReflection.Client(wrapping: client).serverReflectionInfo {
                writer in
                for request in requests { try await writer.write(request) }
            } onResponse: { response in
                var answers: [Response] = []
                for try await answer in response.messages { answers.append(answer) }
                return answers
            }
        }
        let alpha = try requests.map {
            try Grpc_Reflection_V1alpha_ServerReflectionRequest(serializedBytes: $0.serializedBytes() as [UInt8])
        }
        return try await Grpc_Reflection_V1alpha_ServerReflection.Client(wrapping: client).serverReflectionInfo {
            writer in
            for request in alpha { try await writer.write(request) }
        } onResponse: { response in
            var answers: [Response] = []
            for try await answer in response.messages {
                answers.append(try Response(serializedBytes: answer.serializedBytes() as [UInt8]))
            }
            return answers
        }
    }
}

/// The names of the files in a file-descriptor answer, in order.
func fileNames(_ response: Response) throws -> [String] {
    try response.fileDescriptorResponse.fileDescriptorProto.map {
        try Google_Protobuf_FileDescriptorProto(serializedBytes: $0).name
    }
}

@Suite("Server reflection over the in-memory transport")
struct ReflectionServiceTests {
    let service = ReflectionService(fileDescriptors: handMadeFiles)

    @Test(
        "ListServices names the services the server serves, not those of files it only imports",
        arguments: ["v1", "v1alpha"]
    )
    func listServices(version: String) async throws {
        // uses.Things is in a file given to reflection, but the server doesn't serve it; Health is served
        // without its file: as grpc-go, the served ones are listed.
        let answers = try await reflect(
            service,
            alsoServing: [HealthService()],
            version: version,
            [.with { $0.listServices = "" }]
        )
        let names = try #require(answers.first).listServicesResponse.service.map(\.name)
        #expect(
            names == [
                "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
                "grpc.reflection.v1alpha.ServerReflection",
            ]
        )
        // Outside a server: the services of the files given.
        #expect(
            service.serviceNames == [
                "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection", "uses.Things",
            ]
        )
    }

    @Test("A service defined in an imported file is not listed unless served")
    func importedFileServicesNotListed() async throws {
        // Greeter's file and health's file both given (as a file importing another would give them); only the
        // greeter served.
        let reflection = try ReflectionService(fileDescriptorProtos: [
            Hello_HelloService.fileDescriptorProtos, Grpc_Health_V1_Health.fileDescriptorProtos,
        ])
        #expect(reflection.serviceNames.contains("grpc.health.v1.Health"))
        let answers = try await reflect(
            reflection,
            alsoServing: [Greeter()],
            [.with { $0.listServices = "" }]
        )
        let names = try #require(answers.first).listServicesResponse.service.map(\.name)
        #expect(names.contains("hello.HelloService"))
        #expect(!names.contains("grpc.health.v1.Health"))
    }

    @Test("FileByFilename: the file, then what it imports", arguments: ["v1", "v1alpha"])
    func fileByFilename(version: String) async throws {
        let answers = try await reflect(
            service,
            version: version,
            [.with { $0.fileByFilename = "uses.proto" }, .with { $0.fileByFilename = "ext.proto" }]
        )
        try #require(answers.count == 2)
        #expect(try fileNames(answers[0]) == ["uses.proto", "ext.proto"])
        #expect(try fileNames(answers[1]) == ["ext.proto"])
        #expect(answers[0].originalRequest.fileByFilename == "uses.proto")
    }

    @Test(
        "FileContainingSymbol: every kind of symbol",
        arguments: [
            ("uses.Things", "uses.proto"), ("uses.Things.Get", "uses.proto"), ("ext.Base", "ext.proto"),
            ("ext.Base.id", "ext.proto"), ("ext.Outer.Inner", "ext.proto"), ("ext.Outer.Color", "ext.proto"),
            ("ext.Outer.RED", "ext.proto"), ("ext.tag", "ext.proto"), ("ext.Outer.outer_tag", "ext.proto"),
            (".ext.Base", "ext.proto"),
        ]
    )
    func fileContainingSymbol(symbol: String, file: String) async throws {
        for version in ["v1", "v1alpha"] {
            let answers = try await reflect(service, version: version, [.with { $0.fileContainingSymbol = symbol }])
            let answer = try #require(answers.first)
            #expect(try fileNames(answer).first == file, "\(version) \(symbol): \(answer)")
        }
    }

    @Test("FileContainingExtension and AllExtensionNumbersOfType", arguments: ["v1", "v1alpha"])
    func extensions(version: String) async throws {
        let answers = try await reflect(
            service,
            version: version,
            [
                .with {
                    $0.fileContainingExtension = .with {
                        $0.containingType = "ext.Base"
                        $0.extensionNumber = 100
                    }
                },
                .with {
                    $0.fileContainingExtension = .with {
                        $0.containingType = "ext.Base"
                        $0.extensionNumber = 101
                    }
                },
                .with { $0.allExtensionNumbersOfType = "ext.Base" },
                .with { $0.allExtensionNumbersOfType = "ext.Outer" },
            ]
        )
        try #require(answers.count == 4)
        #expect(try fileNames(answers[0]) == ["ext.proto"])
        #expect(try fileNames(answers[1]) == ["ext.proto"])
        #expect(answers[2].allExtensionNumbersResponse.baseTypeName == "ext.Base")
        #expect(answers[2].allExtensionNumbersResponse.extensionNumber == [100, 101])
        #expect(answers[3].allExtensionNumbersResponse.extensionNumber == [])
    }

    @Test(
        "Errors are answers in the stream (NOT_FOUND, INVALID_ARGUMENT), and the stream goes on",
        arguments: ["v1", "v1alpha"]
    )
    func errors(version: String) async throws {
        let answers = try await reflect(
            service,
            version: version,
            [
                .with { $0.fileByFilename = "missing.proto" },
                .with { $0.fileContainingSymbol = "no.Such" },
                .with {
                    $0.fileContainingExtension = .with {
                        $0.containingType = "ext.Base"
                        $0.extensionNumber = 150
                    }
                },
                .with {
                    $0.fileContainingExtension = .with {
                        $0.containingType = "no.Such"
                        $0.extensionNumber = 1
                    }
                },
                .with { $0.allExtensionNumbersOfType = "no.Such" },
                .with { $0.host = "example.com" },
                .with { $0.fileContainingSymbol = String(repeating: "x", count: 10_000) },
                .with { $0.listServices = "" },
            ]
        )
        try #require(answers.count == 8)
        for answer in answers[0..<5] + [answers[6]] {
            #expect(answer.errorResponse.errorCode == 5, "\(answer)")
        }
        #expect(answers[5].errorResponse.errorCode == 3)
        #expect(answers[5].validHost == "example.com")
        #expect(answers[6].errorResponse.errorMessage.count < 300)
        #expect(answers[7].listServicesResponse.service.count == 2)
    }

    @Test("A file given twice keeps the first; an import it doesn't know is left out")
    func duplicatesAndMissingImports() async throws {
        var other = handMadeFiles[0]
        other.package = "other"
        let service = ReflectionService(fileDescriptors: [handMadeFiles[0], other])
        let answers = try await reflect(service, [.with { $0.fileByFilename = "uses.proto" }])
        let files = try answers[0].fileDescriptorResponse.fileDescriptorProto.map {
            try Google_Protobuf_FileDescriptorProto(serializedBytes: $0)
        }
        #expect(files.map(\.name) == ["uses.proto"])
        #expect(files.first?.package == "uses")
    }

    @Test("Descriptors from protoc-gen-courier's ReflectionData")
    func generatedData() async throws {
        let service = try ReflectionService(fileDescriptorProtos: [
            Hello_HelloService.fileDescriptorProtos, Grpc_Health_V1_Health.fileDescriptorProtos,
        ])
        #expect(service.serviceNames.contains("hello.HelloService"))
        #expect(service.serviceNames.contains("grpc.health.v1.Health"))
        let answers = try await reflect(
            service,
            [
                .with { $0.fileContainingSymbol = "hello.HelloService.SayHello" },
                .with { $0.fileContainingSymbol = "grpc.health.v1.HealthCheckResponse.ServingStatus" },
                .with { $0.fileContainingSymbol = "grpc.reflection.v1alpha.ServerReflectionRequest" },
            ]
        )
        #expect(try fileNames(answers[0]) == ["hello.proto"])
        #expect(try fileNames(answers[1]) == ["grpc/health/v1/health.proto"])
        #expect(try fileNames(answers[2]) == ["grpc/reflection/v1alpha/reflection.proto"])
    }

    @Test("Descriptor set files; bad input is an error, not a crash")
    func descriptorSets() throws {
        let path = repositoryRoot.appendingPathComponent("Tests/CourierCodeGenTests/Descriptors/hello.pb").path
        let files = try ReflectionService.fileDescriptors(fromDescriptorSetFile: path)
        #expect(files.map(\.name).contains("hello.proto"))
        #expect(ReflectionService(fileDescriptors: files).serviceNames.contains("hello.HelloService"))
        #expect(throws: ReflectionDescriptorError.self) {
            try ReflectionService.fileDescriptors(fromDescriptorSetFile: "/nonexistent/descriptors.pb")
        }
        #expect(throws: ReflectionDescriptorError.self) {
            try ReflectionService(fileDescriptorProtos: [["not base64!"]])
        }
        #expect(throws: ReflectionDescriptorError.self) {
            try ReflectionService(fileDescriptorProtos: [["/w=="]])  // 0xFF: not a descriptor
        }
    }
}
