import Foundation

/// The name of the configuration file both plugins look for beside `.proto` files.
let configFileName = "courier-proto-generator-config.json"

/// `courier-proto-generator-config.json`: what to generate from the `.proto` files in its directory and
/// below, and how. Every key is optional; unknown keys are an error, so that a typo never goes unnoticed.
///
/// ```json
/// {
///   "visibility": "internal",
///   "server": true,
///   "client": true,
///   "messages": true,
///   "fileNaming": "FullPath",
///   "useAccessLevelOnImports": false,
///   "reflectionData": false,
///   "importPaths": ["../../protos"],
///   "moduleMappings": { "SharedProtos": ["shared/money.proto"] },
///   "protocPath": "/usr/bin/protoc",
///   "outputDirectory": "Generated"
/// }
/// ```
struct GenerationConfig: Decodable {
    /// The access level of the generated declarations.
    enum Visibility: String, Decodable {
        case `internal`, `public`, `package`

        /// The value protoc-gen-swift and protoc-gen-courier take.
        var option: String { rawValue.prefix(1).uppercased() + rawValue.dropFirst() }
    }

    /// How output files are named after their `.proto` file (command plugin only: the build plugin
    /// always uses `PathToUnderscores`, which keeps names unique).
    enum FileNaming: String, Decodable {
        case fullPath = "FullPath"
        case pathToUnderscores = "PathToUnderscores"
        case dropPath = "DropPath"
    }

    /// `internal` (the default), `public` or `package`.
    var visibility: Visibility = .internal
    /// Whether to generate the server protocol and its registration (default `true`).
    var server = true
    /// Whether to generate the typed client (default `true`).
    var client = true
    /// Whether to generate the messages with protoc-gen-swift (default `true`). Turn it off when
    /// another target generates them, and name that target in ``moduleMappings``.
    var messages = true
    /// Output file naming for the command plugin (default `FullPath`).
    var fileNaming: FileNaming = .fullPath
    /// Whether imports carry access levels (`public import Courier`). The default, `false`, suits packages
    /// with Swift's default settings; packages that enable `InternalImportsByDefault` and generate
    /// `public` code set it to `true`.
    var useAccessLevelOnImports = false
    /// More directories protoc searches for imports, relative to this file. The directory of this file
    /// always comes first, and protoc's own include directory (well-known types) last.
    var importPaths: [String] = []
    /// Modules that hold the messages of other `.proto` files: module name → `.proto` paths as they are
    /// imported. Written as protoc-gen-swift's `ProtoPathModuleMappings` file for both generators.
    var moduleMappings: [String: [String]] = [:]
    /// The protoc to run; otherwise `PROTOC_PATH`, otherwise `protoc` on `PATH`.
    var protocPath: String?
    /// Where the command plugin writes, relative to this file (default `Generated`). The build plugin
    /// writes into SwiftPM's plugin work directory.
    var outputDirectory = "Generated"
    /// Whether each service carries its file's descriptors for server reflection (`CourierReflection`;
    /// default `false`).
    var reflectionData = false

    private enum CodingKeys: String, CodingKey, CaseIterable {
        case visibility, server, client, messages, fileNaming, useAccessLevelOnImports, importPaths
        case moduleMappings, protocPath, outputDirectory, reflectionData
    }

    init() {}

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let known = try decoder.container(keyedBy: AnyKey.self)
        for key in known.allKeys where CodingKeys(rawValue: key.stringValue) == nil {
            throw GeneratorPluginError.unknownConfigKey(
                key.stringValue,
                known: CodingKeys.allCases.map(\.rawValue)
            )
        }
        visibility = try container.decodeIfPresent(Visibility.self, forKey: .visibility) ?? visibility
        server = try container.decodeIfPresent(Bool.self, forKey: .server) ?? server
        client = try container.decodeIfPresent(Bool.self, forKey: .client) ?? client
        messages = try container.decodeIfPresent(Bool.self, forKey: .messages) ?? messages
        fileNaming = try container.decodeIfPresent(FileNaming.self, forKey: .fileNaming) ?? fileNaming
        useAccessLevelOnImports =
            try container.decodeIfPresent(Bool.self, forKey: .useAccessLevelOnImports) ?? useAccessLevelOnImports
        importPaths = try container.decodeIfPresent([String].self, forKey: .importPaths) ?? importPaths
        moduleMappings = try container.decodeIfPresent([String: [String]].self, forKey: .moduleMappings) ?? [:]
        protocPath = try container.decodeIfPresent(String.self, forKey: .protocPath)
        outputDirectory = try container.decodeIfPresent(String.self, forKey: .outputDirectory) ?? outputDirectory
        reflectionData = try container.decodeIfPresent(Bool.self, forKey: .reflectionData) ?? false
    }

    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    /// Reads a configuration file.
    static func load(_ url: URL) throws -> GenerationConfig {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw GeneratorPluginError.unreadableConfig(url.path, "\(error)")
        }
        do {
            return try JSONDecoder().decode(GenerationConfig.self, from: data)
        } catch let error as GeneratorPluginError {
            throw error.inFile(url.path)
        } catch let DecodingError.dataCorrupted(context) {
            throw GeneratorPluginError.unreadableConfig(url.path, context.debugDescription)
        } catch let DecodingError.typeMismatch(_, context) {
            throw GeneratorPluginError.unreadableConfig(url.path, Self.describe(context))
        } catch let DecodingError.valueNotFound(_, context) {
            throw GeneratorPluginError.unreadableConfig(url.path, Self.describe(context))
        } catch {
            throw GeneratorPluginError.unreadableConfig(url.path, "\(error)")
        }
    }

    private static func describe(_ context: DecodingError.Context) -> String {
        let path = context.codingPath.map(\.stringValue).joined(separator: ".")
        return path.isEmpty ? context.debugDescription : "\"\(path)\": \(context.debugDescription)"
    }
}
