internal import SwiftProtobufPluginLibrary

/// Options of `protoc-gen-courier`, given as `--courier_opt=Key=Value,Key=Value`.
///
/// | key | values | default |
/// |---|---|---|
/// | `Visibility` | `Public`, `Internal`, `Package` | `Internal` |
/// | `FileNaming` | `FullPath`, `PathToUnderscores`, `DropPath` (as protoc-gen-swift) | `FullPath` |
/// | `ProtoPathModuleMappings` | a module-mappings file (as protoc-gen-swift) | none |
/// | `Server`, `Client` | `true`, `false`: generate that side | `true` |
/// | `UseAccessLevelOnImports` | `true`, `false` | `false` |
/// | `ReflectionData` | `true`, `false`: embed descriptors for server reflection | `false` |
///
/// `UseAccessLevelOnImports=false` writes bare imports (`import Courier`), which suit a package with
/// Swift's default settings, where a bare import elsewhere in the module would clash with an
/// `internal import` here ("ambiguous implicit access level for import"). Packages that enable
/// `InternalImportsByDefault` and generate `Public` code need `UseAccessLevelOnImports=true`
/// (`public import Courier`, `internal import CourierProtobuf`), as protoc-gen-swift's option of the
/// same name does for messages.
public struct GeneratorOptions: Sendable, Equatable {
    /// The access level of generated declarations.
    public enum Visibility: String, Sendable {
        /// `internal` declarations.
        case `internal` = "Internal"
        /// `public` declarations.
        case `public` = "Public"
        /// `package` declarations.
        case `package` = "Package"

        var keyword: String {
            switch self {
            case .internal: "internal"
            case .public: "public"
            case .package: "package"
            }
        }
    }

    /// How output file names are derived from `.proto` paths.
    public enum FileNaming: String, Sendable {
        /// `a/b/c.proto` → `a/b/c.courier.swift`.
        case fullPath = "FullPath"
        /// `a/b/c.proto` → `a_b_c.courier.swift`.
        case pathToUnderscores = "PathToUnderscores"
        /// `a/b/c.proto` → `c.courier.swift`.
        case dropPath = "DropPath"
    }

    /// Declarations' access level.
    public var visibility: Visibility = .internal
    /// Output file naming.
    public var fileNaming: FileNaming = .fullPath
    /// Path of a module-mappings file for types from other modules.
    public var protoPathModuleMappings: String?
    /// Whether to generate the server protocol and its registration.
    public var generateServer = true
    /// Whether to generate the client.
    public var generateClient = true
    /// Whether imports carry an access level (`public import Courier`); bare imports by default, as
    /// protoc-gen-swift writes them.
    public var useAccessLevelOnImports = false
    /// Whether each service carries `fileDescriptorProtos`: its file's serialized descriptor and those of
    /// every file it imports, base64-encoded, for server reflection (`CourierReflection`).
    public var reflectionData = false

    /// Default options.
    public init() {}

    /// Parses `key=value` pairs.
    ///
    /// - Parameter pairs: The pairs protoc passed.
    /// - Throws: ``GeneratorError`` naming an unknown key or a bad value.
    public init(pairs: [(key: String, value: String)]) throws(GeneratorError) {
        for (key, value) in pairs {
            switch key {
            case "Visibility":
                guard let visibility = Visibility(rawValue: value) else {
                    throw GeneratorError("Unknown Visibility '\(value)': use Public, Internal or Package.")
                }
                self.visibility = visibility
            case "FileNaming":
                guard let naming = FileNaming(rawValue: value) else {
                    throw GeneratorError("Unknown FileNaming '\(value)': use FullPath, PathToUnderscores or DropPath.")
                }
                self.fileNaming = naming
            case "ProtoPathModuleMappings":
                guard !value.isEmpty else { throw GeneratorError("ProtoPathModuleMappings needs a file path.") }
                self.protoPathModuleMappings = value
            case "Server":
                self.generateServer = try Self.bool(key, value)
            case "Client":
                self.generateClient = try Self.bool(key, value)
            case "UseAccessLevelOnImports":
                self.useAccessLevelOnImports = try Self.bool(key, value)
            case "ReflectionData":
                self.reflectionData = try Self.bool(key, value)
            default:
                throw GeneratorError(
                    "Unknown option '\(key)'. Known: Visibility, FileNaming, ProtoPathModuleMappings, Server, Client, UseAccessLevelOnImports, ReflectionData."
                )
            }
        }
    }

    private static func bool(_ key: String, _ value: String) throws(GeneratorError) -> Bool {
        switch value.lowercased() {
        case "true": return true
        case "false": return false
        default: throw GeneratorError("\(key) takes true or false, not '\(value)'.")
        }
    }

    /// The output path for a `.proto` file.
    ///
    /// - Parameter protoPath: The file's name as protoc gives it.
    public func outputPath(for protoPath: String) -> String {
        var base = protoPath
        if base.hasSuffix(".proto") { base.removeLast(".proto".count) }
        switch fileNaming {
        case .fullPath:
            break
        case .pathToUnderscores:
            base = base.replacingOccurrences(of: "/", with: "_")
        case .dropPath:
            if let slash = base.lastIndex(of: "/") { base = String(base[base.index(after: slash)...]) }
        }
        return base + ".courier.swift"
    }
}

/// A problem with the input or options, reported by protoc as the plugin's error.
public struct GeneratorError: Error, CustomStringConvertible, Equatable {
    /// What went wrong.
    public var description: String

    /// Creates an error.
    ///
    /// - Parameter description: What went wrong.
    public init(_ description: String) {
        self.description = description
    }
}

extension String {
    fileprivate func replacingOccurrences(of target: String, with replacement: String) -> String {
        split(separator: Character(target), omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
