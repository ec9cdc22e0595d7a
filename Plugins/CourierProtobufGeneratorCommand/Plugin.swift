import Foundation
import PackagePlugin

/// Writes the same code as the `CourierProtobufGenerator` build plugin into the source tree, for
/// projects that commit generated code:
///
///     swift package --allow-writing-to-package-directory generate-courier-code-from-protos [--target NAME]...
///
/// For each Swift target (all of them, or those named with `--target`), every
/// `courier-proto-generator-config.json` found in the target's directory, excluded files included,
/// governs the `.proto` files at and below it; the output goes to its `outputDirectory` (default
/// `Generated`, beside the configuration file), named by its `fileNaming` (default `FullPath`).
@main
struct GenerateCourierCodeFromProtos: CommandPlugin {
    func performCommand(context: PluginContext, arguments: [String]) async throws {
        var extractor = ArgumentExtractor(arguments)
        let names = extractor.extractOption(named: "target")
        let targets: [SwiftSourceModuleTarget]
        if names.isEmpty {
            targets = context.package.targets.compactMap { $0 as? SwiftSourceModuleTarget }
        } else {
            targets = try names.map { name in
                guard let target = context.package.targets.first(where: { $0.name == name }) as? SwiftSourceModuleTarget
                else { throw GeneratorPluginError.unknownTarget(name) }
                return target
            }
        }
        let protocGenSwift = try context.tool(named: "protoc-gen-swift").url
        let protocGenCourier = try context.tool(named: "protoc-gen-courier").url

        var generated = 0
        for target in targets {
            let (protos, configFiles) = scan(target.directoryURL)
            guard !configFiles.isEmpty else { continue }
            for group in try groupProtos(protos: protos, configFiles: configFiles) {
                let protoc = try findProtoc(config: group.config)
                let imports = group.importDirectories(protoc: protoc)
                try group.checkWellKnownTypes(importDirectories: imports)
                let mappings = try group.writeModuleMappings(into: context.pluginWorkDirectoryURL)
                let names = try group.protos.map { try group.protocName(of: $0, importDirectories: imports) }
                let output = URL(fileURLWithPath: group.config.outputDirectory, relativeTo: group.baseDirectory)
                    .standardizedFileURL
                try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
                let (messages, services) = group.arguments(
                    protocNames: names,
                    importDirectories: imports,
                    outputDirectory: output,
                    fileNaming: group.config.fileNaming,
                    moduleMappings: mappings,
                    protocGenSwift: protocGenSwift,
                    protocGenCourier: protocGenCourier
                )
                for arguments in [messages, services].compactMap({ $0 }) {
                    try run(protoc, arguments)
                }
                print("\(target.name): \(names.joined(separator: ", ")) → \(output.path)")
                generated += names.count
            }
        }
        if generated == 0 {
            Diagnostics.warning(
                "No \(configFileName) found in \(names.isEmpty ? "any target" : names.joined(separator: ", ")): nothing generated."
            )
        }
    }

    /// The `.proto` and configuration files below `directory`, whether or not the target excludes them.
    private func scan(_ directory: URL) -> (protos: [URL], configs: [URL]) {
        var protos: [URL] = []
        var configs: [URL] = []
        let enumerator = FileManager.default.enumerator(at: directory, includingPropertiesForKeys: nil)
        while let url = enumerator?.nextObject() as? URL {
            if url.pathExtension == "proto" { protos.append(url) }
            if url.lastPathComponent == configFileName { configs.append(url) }
        }
        return (protos, configs)
    }

    private func run(_ protoc: URL, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = protoc
        process.arguments = arguments
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw GeneratorPluginError.protocFailed(status: process.terminationStatus, arguments: arguments)
        }
    }
}
