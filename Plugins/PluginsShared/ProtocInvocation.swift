import Foundation

/// Finds protoc: the config's `protocPath`, then `PROTOC_PATH`, then `PATH`.
func findProtoc(
    config: GenerationConfig,
    environment: [String: String] = ProcessInfo.processInfo.environment
)
    throws -> URL
{
    if let path = config.protocPath {
        return try executable(path, from: "\"protocPath\" in \(configFileName)")
    }
    if let path = environment["PROTOC_PATH"], !path.isEmpty {
        return try executable(path, from: "PROTOC_PATH")
    }
    for directory in (environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":") {
        let candidate = URL(fileURLWithPath: String(directory)).appendingPathComponent("protoc")
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
    }
    throw GeneratorPluginError.protocNotFound
}

private func executable(_ path: String, from source: String) throws -> URL {
    guard FileManager.default.isExecutableFile(atPath: path) else {
        throw GeneratorPluginError.protocNotExecutable(path, from: source)
    }
    return URL(fileURLWithPath: path)
}

/// The `.proto` files of one configuration file and how to run protoc on them.
struct ProtoGroup {
    /// The configuration file.
    var configFile: URL
    /// Its contents.
    var config: GenerationConfig
    /// The `.proto` files it governs (the nearest configuration file at or above each).
    var protos: [URL]

    /// The directory of the configuration file.
    var baseDirectory: URL { configFile.deletingLastPathComponent() }

    /// Where protoc looks for imports: the config's directory, then its `importPaths`, then protoc's own
    /// include directory (`<prefix>/include` for `<prefix>/bin/protoc`, where Debian's libprotobuf-dev
    /// puts the well-known types).
    func importDirectories(protoc: URL) -> [URL] {
        var directories = [baseDirectory.standardizedFileURL]
        for path in config.importPaths {
            directories.append(URL(fileURLWithPath: path, relativeTo: baseDirectory).standardizedFileURL)
        }
        let include = protoc.resolvingSymlinksInPath().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("include")
        if !directories.contains(include) { directories.append(include) }
        return directories
    }

    /// The name protoc knows `proto` by, as other files import it: its path below the innermost import
    /// directory that holds it (`echo/v1/echo.proto` for `protos/echo/v1/echo.proto` with `"protos"` in
    /// `importPaths`).
    func protocName(of proto: URL, importDirectories: [URL]) throws -> String {
        let path = proto.standardizedFileURL.path
        let names = importDirectories.compactMap { directory -> String? in
            let prefix = directory.path.hasSuffix("/") ? directory.path : directory.path + "/"
            return path.hasPrefix(prefix) ? String(path.dropFirst(prefix.count)) : nil
        }
        guard let name = names.min(by: { $0.count < $1.count }) else {
            throw GeneratorPluginError.protoOutsideImportPaths(proto: proto.path)
        }
        return name
    }

    /// Fails early, with the package to install, when a `.proto` imports a well-known type that none of
    /// the import directories holds (protoc would say only "File not found").
    func checkWellKnownTypes(importDirectories: [URL]) throws {
        for proto in protos {
            guard let text = try? String(contentsOf: proto, encoding: .utf8) else { continue }
            for line in text.split(separator: "\n") {
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                guard trimmed.hasPrefix("import "), let open = trimmed.firstIndex(of: "\"") else { continue }
                let rest = trimmed[trimmed.index(after: open)...]
                guard let close = rest.firstIndex(of: "\"") else { continue }
                let imported = String(rest[..<close])
                guard imported.hasPrefix("google/protobuf/") else { continue }
                let found = importDirectories.contains {
                    FileManager.default.fileExists(atPath: $0.appendingPathComponent(imported).path)
                }
                if !found { throw GeneratorPluginError.wellKnownTypeMissing(proto: proto.path, import: imported) }
            }
        }
    }

    /// Writes the config's `moduleMappings` as a protoc-gen-swift `ProtoPathModuleMappings` file, if
    /// there are any, and returns its path.
    func writeModuleMappings(into directory: URL) throws -> URL? {
        guard !config.moduleMappings.isEmpty else { return nil }
        var text = "# Written by Courier's generator plugin from \(configFile.path).\n"
        for (module, files) in config.moduleMappings.sorted(by: { $0.key < $1.key }) {
            text += "mapping {\n  module_name: \"\(module)\"\n"
            for file in files { text += "  proto_file_path: \"\(file)\"\n" }
            text += "}\n"
        }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let name = configFile.deletingLastPathComponent().standardizedFileURL.pathComponents.dropFirst()
            .joined(separator: "_")
        let url = directory.appendingPathComponent("module-mappings_\(name).asciipb")
        // Rewritten only when it changes, so that an unchanged file doesn't rerun the build commands.
        if (try? String(contentsOf: url, encoding: .utf8)) != text {
            try text.write(to: url, atomically: true, encoding: .utf8)
        }
        return url
    }

    /// protoc's arguments for protoc-gen-swift (messages) and protoc-gen-courier (services).
    func arguments(
        protocNames: [String],
        importDirectories: [URL],
        outputDirectory: URL,
        fileNaming: GenerationConfig.FileNaming,
        moduleMappings: URL?,
        protocGenSwift: URL,
        protocGenCourier: URL
    ) -> (messages: [String]?, services: [String]?) {
        let includes = importDirectories.map { "--proto_path=\($0.path)" }
        var common = [
            "Visibility=\(config.visibility.option)",
            "FileNaming=\(fileNaming.rawValue)",
            "UseAccessLevelOnImports=\(config.useAccessLevelOnImports)",
        ]
        if let moduleMappings { common.append("ProtoPathModuleMappings=\(moduleMappings.path)") }

        var messages: [String]?
        if config.messages {
            messages =
                includes + [
                    "--plugin=protoc-gen-swift=\(protocGenSwift.path)",
                    "--swift_out=\(outputDirectory.path)",
                ] + common.map { "--swift_opt=\($0)" } + protocNames
        }
        var services: [String]?
        if config.server || config.client {
            services =
                includes + [
                    "--plugin=protoc-gen-courier=\(protocGenCourier.path)",
                    "--courier_out=\(outputDirectory.path)",
                ]
                + (common + [
                    "Server=\(config.server)", "Client=\(config.client)", "ReflectionData=\(config.reflectionData)",
                ]).map { "--courier_opt=\($0)" }
                + protocNames
        }
        return (messages, services)
    }
}

/// Groups `.proto` files under the nearest configuration file at or above each.
func groupProtos(protos: [URL], configFiles: [URL]) throws -> [ProtoGroup] {
    var groups: [URL: ProtoGroup] = [:]
    let configs = try configFiles.map { ($0, try GenerationConfig.load($0)) }
    for proto in protos.sorted(by: { $0.path < $1.path }) {
        let directory = proto.deletingLastPathComponent().standardizedFileURL.pathComponents
        let nearest =
            configs
            .filter { config in
                let base = config.0.deletingLastPathComponent().standardizedFileURL.pathComponents
                return directory.starts(with: base)
            }
            .max { $0.0.pathComponents.count < $1.0.pathComponents.count }
        guard let (file, config) = nearest else { throw GeneratorPluginError.noConfig(proto: proto.path) }
        groups[file, default: ProtoGroup(configFile: file, config: config, protos: [])].protos.append(proto)
    }
    return groups.values.sorted { $0.configFile.path < $1.configFile.path }
}

/// Whether a `.proto` file declares a service (protoc-gen-courier writes nothing for one without).
func declaresService(_ proto: URL) -> Bool {
    guard let text = try? String(contentsOf: proto, encoding: .utf8) else { return true }
    return text.split(separator: "\n").contains { line in
        let trimmed = line.drop { $0 == " " || $0 == "\t" }
        return trimmed.hasPrefix("service ") || trimmed.hasPrefix("service\t")
    }
}

/// The name protoc-gen-swift / protoc-gen-courier give the output for `protocName`.
func outputName(for protocName: String, naming: GenerationConfig.FileNaming, suffix: String) -> String {
    var base = protocName
    if base.hasSuffix(".proto") { base.removeLast(".proto".count) }
    switch naming {
    case .fullPath: break
    case .pathToUnderscores: base = base.split(separator: "/").joined(separator: "_")
    case .dropPath: base = String(base.split(separator: "/").last ?? Substring(base))
    }
    return base + suffix
}
