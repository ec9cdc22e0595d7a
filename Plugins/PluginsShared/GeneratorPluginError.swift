/// What the plugins report, each saying what to do about it.
enum GeneratorPluginError: Error, CustomStringConvertible {
    case protocNotFound
    case protocNotExecutable(String, from: String)
    case unknownConfigKey(String, known: [String])
    case unreadableConfig(String, String)
    case noConfig(proto: String)
    case protoOutsideImportPaths(proto: String)
    case wellKnownTypeMissing(proto: String, import: String)
    case inFile(String, any Error)
    case inTarget(String, any Error)
    case protocFailed(status: Int32, arguments: [String])
    case unknownTarget(String)

    func inFile(_ path: String) -> GeneratorPluginError {
        .inFile(path, self)
    }

    var description: String {
        switch self {
        case .protocNotFound:
            return """
                protoc was not found on PATH. Install it (Debian/Ubuntu: apt-get install protobuf-compiler; \
                macOS: brew install protobuf), or point PROTOC_PATH or "protocPath" in \(configFileName) at it.
                """
        case .protocNotExecutable(let path, let source):
            return "protoc at \(path) (from \(source)) is not an executable file."
        case .unknownConfigKey(let key, let known):
            return "Unknown key \"\(key)\". Known keys: \(known.joined(separator: ", "))."
        case .unreadableConfig(let path, let reason):
            return "\(path): \(reason)"
        case .noConfig(let proto):
            return """
                \(proto) has no \(configFileName) in its directory or above it in the target. \
                Add one (an empty object, {}, takes every default).
                """
        case .protoOutsideImportPaths(let proto):
            return """
                \(proto) is not under the directory of its \(configFileName) or any of its "importPaths".
                """
        case .wellKnownTypeMissing(let proto, let imported):
            return """
                \(proto) imports "\(imported)", which protoc can't find. Install the well-known types \
                (Debian/Ubuntu: apt-get install libprotobuf-dev), or add the directory that holds \
                google/protobuf to "importPaths".
                """
        case .inFile(let path, let error):
            return "\(path): \(error)"
        case .inTarget(let target, let error):
            return "Courier's generator plugin, target \(target): \(error)"
        case .protocFailed(let status, let arguments):
            return "protoc exited with status \(status): protoc \(arguments.joined(separator: " "))"
        case .unknownTarget(let name):
            return "No Swift source target named \(name)."
        }
    }
}
