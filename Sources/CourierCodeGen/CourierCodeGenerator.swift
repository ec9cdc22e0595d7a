public import SwiftProtobuf  // the API takes and returns protoc plugin messages
public import SwiftProtobufPluginLibrary  // and their descriptors

/// The `protoc-gen-courier` code generator: for each service in a `.proto` file, method descriptors, a
/// server protocol, its registration with a router, and a typed client.
///
/// It runs as a protoc plugin through `main(_:)`, or in-process through
/// `generateCode(request:generator:)` (which the golden-file tests use).
public struct CourierCodeGenerator: CodeGenerator {
    /// Creates the generator.
    public init() {}

    public var version: String? { "0.1.0" }
    public var projectURL: String? { "https://github.com/courier-rpc/courier" }

    public var supportedFeatures: [Google_Protobuf_Compiler_CodeGeneratorResponse.Feature] {
        [.proto3Optional, .supportsEditions]
    }

    public var supportedEditionRange: ClosedRange<Google_Protobuf_Edition> {
        DescriptorSet.bundledEditionsSupport
    }

    public func generate(
        files: [FileDescriptor],
        parameter: any CodeGeneratorParameter,
        protoCompilerContext: any ProtoCompilerContext,
        generatorOutputs: any GeneratorOutputs
    ) throws {
        let options = try GeneratorOptions(pairs: parameter.parsedPairs)
        let mappings: ProtoFileToModuleMappings
        if let path = options.protoPathModuleMappings {
            do {
                mappings = try ProtoFileToModuleMappings(path: path)
            } catch {
                throw GeneratorError("Could not read ProtoPathModuleMappings '\(path)': \(error)")
            }
        } else {
            mappings = ProtoFileToModuleMappings()
        }
        for file in files where !file.services.isEmpty {
            let source = try FileRenderer(file: file, options: options, mappings: mappings).render()
            try generatorOutputs.add(fileName: options.outputPath(for: file.name), contents: source)
        }
    }
}
