import Foundation
import PackagePlugin

/// Generates messages (protoc-gen-swift) and Courier services (protoc-gen-courier) from the `.proto`
/// files of a target, as part of every build. Each `.proto` file is governed by the nearest
/// `courier-proto-generator-config.json` at or above it in the target (see `GenerationConfig`).
@main
struct CourierProtobufGenerator: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) async throws -> [Command] {
        guard let target = target as? SwiftSourceModuleTarget else { return [] }
        let protos = target.sourceFiles(withSuffix: ".proto").map(\.url)
        let configFiles = target.sourceFiles.map(\.url).filter { $0.lastPathComponent == configFileName }
        if protos.isEmpty {
            Diagnostics.warning("CourierProtobufGenerator: target \(target.name) has no .proto files.")
            return []
        }
        do {
            return try commands(
                groups: groupProtos(protos: protos, configFiles: configFiles),
                workDirectory: context.pluginWorkDirectoryURL,
                protocGenSwift: try context.tool(named: "protoc-gen-swift").url,
                protocGenCourier: try context.tool(named: "protoc-gen-courier").url
            )
        } catch {
            throw GeneratorPluginError.inTarget(target.name, error)
        }
    }

    private func commands(
        groups: [ProtoGroup],
        workDirectory: URL,
        protocGenSwift: URL,
        protocGenCourier: URL
    )
        throws -> [Command]
    {
        var commands: [Command] = []
        for group in groups {
            let protoc = try findProtoc(config: group.config)
            let imports = group.importDirectories(protoc: protoc)
            try group.checkWellKnownTypes(importDirectories: imports)
            let mappings = try group.writeModuleMappings(into: workDirectory)
            // Every file of the group is an input of each command: a change to an imported file reruns them.
            let inputs =
                group.protos + [group.configFile, protocGenSwift, protocGenCourier] + (mappings.map { [$0] } ?? [])
            for proto in group.protos {
                let name = try group.protocName(of: proto, importDirectories: imports)
                let (messages, services) = group.arguments(
                    protocNames: [name],
                    importDirectories: imports,
                    outputDirectory: workDirectory,
                    fileNaming: .pathToUnderscores,
                    moduleMappings: mappings,
                    protocGenSwift: protocGenSwift,
                    protocGenCourier: protocGenCourier
                )
                if let messages {
                    commands.append(
                        .buildCommand(
                            displayName: "Generating messages for \(name)",
                            executable: protoc,
                            arguments: messages,
                            inputFiles: inputs,
                            outputFiles: [
                                workDirectory.appendingPathComponent(
                                    outputName(for: name, naming: .pathToUnderscores, suffix: ".pb.swift")
                                )
                            ]
                        )
                    )
                }
                if let services, declaresService(proto) {
                    commands.append(
                        .buildCommand(
                            displayName: "Generating Courier services for \(name)",
                            executable: protoc,
                            arguments: services,
                            inputFiles: inputs,
                            outputFiles: [
                                workDirectory.appendingPathComponent(
                                    outputName(for: name, naming: .pathToUnderscores, suffix: ".courier.swift")
                                )
                            ]
                        )
                    )
                }
            }
        }
        return commands
    }
}
