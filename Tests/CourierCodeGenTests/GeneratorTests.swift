import CourierCodeGen
import Foundation
import SwiftProtobuf
import SwiftProtobufPluginLibrary
import Testing

/// The repository's root, found from this file's path.
let repositoryRoot = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// Runs the generator in-process on a committed descriptor set, as protoc would run the plugin.
func runGenerator(
    descriptorSet: String,
    file: String,
    parameter: String
) throws -> Google_Protobuf_Compiler_CodeGeneratorResponse {
    let url = repositoryRoot.appendingPathComponent("Tests/CourierCodeGenTests/Descriptors/\(descriptorSet).pb")
    let set = try Google_Protobuf_FileDescriptorSet(serializedBytes: try Data(contentsOf: url))
    var request = Google_Protobuf_Compiler_CodeGeneratorRequest()
    request.fileToGenerate = [file]
    request.protoFile = set.file
    request.parameter = parameter
    return generateCode(request: request, generator: CourierCodeGenerator())
}

/// Compares generated text with a committed file; with COURIER_UPDATE_GOLDEN=1, rewrites the file.
func expectMatches(
    _ generated: String,
    committed path: String,
    sourceLocation: SourceLocation = #_sourceLocation
) throws {
    let url = repositoryRoot.appendingPathComponent(path)
    if ProcessInfo.processInfo.environment["COURIER_UPDATE_GOLDEN"] == "1" {
        try generated.write(to: url, atomically: true, encoding: .utf8)
        return
    }
    let committed = try String(contentsOf: url, encoding: .utf8)
    if committed != generated {
        let committedLines = committed.split(separator: "\n", omittingEmptySubsequences: false)
        let generatedLines = generated.split(separator: "\n", omittingEmptySubsequences: false)
        let firstDifference = zip(committedLines, generatedLines).enumerated().first { $0.element.0 != $0.element.1 }
        let line = firstDifference?.offset ?? min(committedLines.count, generatedLines.count)
        Issue.record(
            """
            \(path) differs from the generator's output at line \(line + 1). If the generator changed on purpose, \
            run ./dev/generate.sh and review the diff.
              committed: \(line < committedLines.count ? String(committedLines[line]) : "<end>")
              generated: \(line < generatedLines.count ? String(generatedLines[line]) : "<end>")
            """,
            sourceLocation: sourceLocation
        )
    }
}

@Suite("protoc-gen-courier")
struct GeneratorTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var descriptorSet: String
        var file: String
        var parameter: String
        var outputName: String
        var committed: String
        var testDescription: String { "\(file) [\(parameter)] → \(committed)" }
    }

    static let committedCode: [Case] = [
        Case(
            descriptorSet: "hello",
            file: "hello.proto",
            parameter: "Visibility=Public,FileNaming=DropPath,UseAccessLevelOnImports=true,ReflectionData=true",
            outputName: "hello.courier.swift",
            committed: "Examples/Greeter/Sources/GreeterService/Generated/hello.courier.swift"
        ),
        Case(
            descriptorSet: "ping",
            file: "ping.proto",
            parameter: "Visibility=Public,FileNaming=DropPath,UseAccessLevelOnImports=true,ReflectionData=true",
            outputName: "ping.courier.swift",
            committed: "Examples/Ping/Sources/PingService/Generated/ping.courier.swift"
        ),
        Case(
            descriptorSet: "kv",
            file: "kv.proto",
            parameter: "Visibility=Public,FileNaming=DropPath,UseAccessLevelOnImports=true,ReflectionData=true",
            outputName: "kv.courier.swift",
            committed: "Examples/KeyValue/Sources/KeyValueService/Generated/kv.courier.swift"
        ),
        Case(
            descriptorSet: "health",
            file: "grpc/health/v1/health.proto",
            parameter: "Visibility=Public,FileNaming=DropPath,UseAccessLevelOnImports=true,ReflectionData=true",
            outputName: "health.courier.swift",
            committed: "Sources/CourierHealth/Generated/health.courier.swift"
        ),
        Case(
            descriptorSet: "test",
            file: "grpc/testing/test.proto",
            parameter: "Visibility=Public,FileNaming=DropPath,UseAccessLevelOnImports=true,ReflectionData=true",
            outputName: "test.courier.swift",
            committed: "Examples/Interop/Sources/GRPCTestingProtos/Generated/test.courier.swift"
        ),
        Case(
            descriptorSet: "benchmark_service",
            file: "grpc/testing/benchmark_service.proto",
            parameter: "Visibility=Public,FileNaming=DropPath,UseAccessLevelOnImports=true,ReflectionData=true",
            outputName: "benchmark_service.courier.swift",
            committed: "Examples/Interop/Sources/GRPCTestingProtos/Generated/benchmark_service.courier.swift"
        ),
    ]

    static let reflectionParameter =
        "Visibility=Public,FileNaming=PathToUnderscores,UseAccessLevelOnImports=true,ReflectionData=true"
    static let reflectionCode: [Case] = ["v1", "v1alpha"].map { version in
        Case(
            descriptorSet: "grpc_reflection_\(version)_reflection",
            file: "grpc/reflection/\(version)/reflection.proto",
            parameter: reflectionParameter,
            outputName: "grpc_reflection_\(version)_reflection.courier.swift",
            committed: "Sources/CourierReflection/Generated/grpc_reflection_\(version)_reflection.courier.swift"
        )
    }

    static let golden: [Case] = [
        // Compiled and called by CodeGenGoldenCompileTests.
        Case(
            descriptorSet: "codegen_test",
            file: "codegen_test.proto",
            parameter: "Visibility=Public,UseAccessLevelOnImports=true,ReflectionData=true",
            outputName: "codegen_test.courier.swift",
            committed: "Tests/CodeGenGoldenCompileTests/codegen_test.courier.swift"
        ),
        Case(
            descriptorSet: "codegen_test",
            file: "codegen_test.proto",
            parameter: "Visibility=Internal,Client=false,UseAccessLevelOnImports=false",
            outputName: "codegen_test.courier.swift",
            committed: "Tests/CourierCodeGenTests/Golden/codegen_test.internal-server-only.swift"
        ),
        Case(
            descriptorSet: "codegen_test",
            file: "codegen_test.proto",
            parameter: "Visibility=Package,Server=false,FileNaming=PathToUnderscores,UseAccessLevelOnImports=true",
            outputName: "codegen_test.courier.swift",
            committed: "Tests/CourierCodeGenTests/Golden/codegen_test.package-client-only.swift"
        ),
        // Types from another module: imported publicly, because the declarations name them.
        Case(
            descriptorSet: "codegen_test",
            file: "codegen_test.proto",
            parameter: "Visibility=Public,UseAccessLevelOnImports=true,ProtoPathModuleMappings="
                + repositoryRoot.appendingPathComponent("Tests/CourierCodeGenTests/Protos/module_mappings.asciipb").path,
            outputName: "codegen_test.courier.swift",
            committed: "Tests/CourierCodeGenTests/Golden/codegen_test.module-mappings.swift"
        ),
    ]

    @Test("The committed services code is what the generator makes now", arguments: committedCode + reflectionCode)
    func committedCodeIsFresh(_ testCase: Case) throws {
        try check(testCase)
    }

    @Test("Golden files", arguments: golden)
    func goldenFiles(_ testCase: Case) throws {
        try check(testCase)
    }

    private func check(_ testCase: Case) throws {
        let response = try runGenerator(
            descriptorSet: testCase.descriptorSet,
            file: testCase.file,
            parameter: testCase.parameter
        )
        #expect(!response.hasError, "\(response.error)")
        try #require(response.file.count == 1)
        #expect(response.file[0].name == testCase.outputName)
        try expectMatches(response.file[0].content, committed: testCase.committed)
    }

    @Test("By default imports are bare, so that they agree with a default package's own `import Courier`")
    func defaultImportsAreBare() throws {
        for visibility in ["Public", "Internal", "Package"] {
            let response = try runGenerator(
                descriptorSet: "hello",
                file: "hello.proto",
                parameter: "Visibility=\(visibility)"
            )
            let content = try #require(response.file.first?.content)
            #expect(content.contains("\nimport Courier\n"), "\(visibility)")
            #expect(content.contains("\nimport CourierProtobuf\n"), "\(visibility)")
            #expect(!content.contains("internal import"), "\(visibility)")
            #expect(!content.contains("public import"), "\(visibility)")
        }
    }

    @Test("No generated doc comment starts with an empty `///` line", arguments: committedCode + golden)
    func noEmptyFirstDocLine(_ testCase: Case) throws {
        let response = try runGenerator(
            descriptorSet: testCase.descriptorSet,
            file: testCase.file,
            parameter: testCase.parameter
        )
        let lines = try #require(response.file.first?.content).split(separator: "\n", omittingEmptySubsequences: false)
        for (index, line) in lines.enumerated() where line.trimmingCharacters(in: .whitespaces) == "///" {
            let previous = index > 0 ? lines[index - 1].trimmingCharacters(in: .whitespaces) : ""
            #expect(
                previous.hasPrefix("///"),
                "line \(index + 1) of \(testCase.outputName) opens a doc comment with an empty line"
            )
        }
    }

    @Test("ReflectionData is off by default, and on embeds nothing but descriptors")
    func reflectionDataOption() throws {
        let off = try runGenerator(descriptorSet: "hello", file: "hello.proto", parameter: "Visibility=Public")
        #expect(off.file.first?.content.contains("fileDescriptorProtos") == false)
        let on = try runGenerator(descriptorSet: "hello", file: "hello.proto", parameter: "ReflectionData=true")
        let content = try #require(on.file.first?.content)
        #expect(content.contains("static let fileDescriptorProtos: [String] = ["))
        // Without it the rest of the file is the same.
        let plain = try #require(
            try runGenerator(descriptorSet: "hello", file: "hello.proto", parameter: "").file.first?.content
        )
        #expect(plain.split(separator: "\n").allSatisfy { content.contains($0) })
    }

    @Test("Files without services produce nothing")
    func noServices() throws {
        let response = try runGenerator(descriptorSet: "test", file: "grpc/testing/messages.proto", parameter: "")
        #expect(!response.hasError)
        #expect(response.file.isEmpty)
    }

    @Test(
        "Bad options are reported as the plugin's error, not as broken Swift",
        arguments: [
            ("Bogus=1", "Unknown option 'Bogus'"),
            ("Visibility=Open", "Unknown Visibility 'Open'"),
            ("Server=maybe", "Server takes true or false"),
            ("ReflectionData=yes", "ReflectionData takes true or false"),
            ("FileNaming=Flat", "Unknown FileNaming 'Flat'"),
            ("ProtoPathModuleMappings=/nonexistent/mappings.asciipb", "Could not read ProtoPathModuleMappings"),
        ]
    )
    func badOptions(parameter: String, message: String) throws {
        let response = try runGenerator(descriptorSet: "hello", file: "hello.proto", parameter: parameter)
        #expect(response.error.contains(message), "\(response.error)")
        #expect(response.file.isEmpty)
    }

    @Test("Output file naming follows protoc-gen-swift's options")
    func fileNaming() {
        var options = GeneratorOptions()
        #expect(options.outputPath(for: "a/b/c.proto") == "a/b/c.courier.swift")
        options.fileNaming = .pathToUnderscores
        #expect(options.outputPath(for: "a/b/c.proto") == "a_b_c.courier.swift")
        options.fileNaming = .dropPath
        #expect(options.outputPath(for: "a/b/c.proto") == "c.courier.swift")
    }

    static let protoc = ["/usr/bin/protoc", "/usr/local/bin/protoc"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }

    @Test("protoc runs the built plugin end to end", .enabled(if: protoc != nil, "protoc is not installed"))
    func protocEndToEnd() throws {
        let plugin = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("protoc-gen-courier")
        try #require(
            FileManager.default.isExecutableFile(atPath: plugin.path),
            "built plugin not found at \(plugin.path)"
        )
        let output = FileManager.default.temporaryDirectory.appendingPathComponent(
            "courier-protoc-\(UUID().uuidString)"
        )
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: output) }

        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.protoc!)
        process.arguments = [
            "-I", repositoryRoot.appendingPathComponent("Examples/Greeter").path,
            "--plugin=protoc-gen-courier=\(plugin.path)",
            "--courier_out=\(output.path)",
            "--courier_opt=Visibility=Public,FileNaming=DropPath,UseAccessLevelOnImports=true,ReflectionData=true",
            "hello.proto",
        ]
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let generated = try String(contentsOf: output.appendingPathComponent("hello.courier.swift"), encoding: .utf8)
        try expectMatches(generated, committed: "Examples/Greeter/Sources/GreeterService/Generated/hello.courier.swift")
    }
}
