internal import Courier
internal import Foundation  // bytes fields of generated messages are Data
internal import SwiftProtobuf

/// The files a reflection service knows, indexed by file name, symbol and extension, and the answer to
/// each kind of request: a value, no I/O, tested request by request.
struct ReflectionIndex: Sendable {
    private struct File: Sendable {
        var serialized: Data
        var dependencies: [String]
    }

    private var files: [String: File] = [:]
    /// Fully-qualified names (no leading dot) of packages' services, methods, messages, fields, oneofs,
    /// enums, enum values and extensions → the file that declares them.
    private var fileBySymbol: [String: String] = [:]
    /// Extended message → extension field number → the file that declares the extension.
    private var extensions: [String: [Int32: String]] = [:]
    private(set) var services: [String] = []

    /// Indexes `descriptors`; a file or symbol seen twice keeps its first declaration.
    init(_ descriptors: [Google_Protobuf_FileDescriptorProto]) {
        var services: Set<String> = []
        for descriptor in descriptors where files[descriptor.name] == nil {
            // A descriptor that parsed from bytes serializes again; an empty entry would only mislead.
            guard let serialized: Data = try? descriptor.serializedBytes() else { continue }
            files[descriptor.name] = File(serialized: serialized, dependencies: descriptor.dependency)
            let prefix = descriptor.package.isEmpty ? "" : descriptor.package + "."
            for service in descriptor.service {
                let name = prefix + service.name
                services.insert(name)
                add(name, descriptor.name)
                for method in service.method { add(name + "." + method.name, descriptor.name) }
            }
            for message in descriptor.messageType { addMessage(message, scope: prefix, file: descriptor.name) }
            for e in descriptor.enumType { addEnum(e, scope: prefix, file: descriptor.name) }
            for field in descriptor.extension { addExtension(field, scope: prefix, file: descriptor.name) }
        }
        self.services = services.sorted()
    }

    private mutating func add(_ symbol: String, _ file: String) {
        if fileBySymbol[symbol] == nil { fileBySymbol[symbol] = file }
    }

    private mutating func addMessage(_ message: Google_Protobuf_DescriptorProto, scope: String, file: String) {
        let name = scope + message.name
        add(name, file)
        for field in message.field { add(name + "." + field.name, file) }
        for oneof in message.oneofDecl { add(name + "." + oneof.name, file) }
        for nested in message.nestedType { addMessage(nested, scope: name + ".", file: file) }
        for e in message.enumType { addEnum(e, scope: name + ".", file: file) }
        for field in message.extension { addExtension(field, scope: name + ".", file: file) }
    }

    private mutating func addEnum(_ e: Google_Protobuf_EnumDescriptorProto, scope: String, file: String) {
        add(scope + e.name, file)
        // Enum values are siblings of their enum (C++ scoping), as protoc names them.
        for value in e.value { add(scope + value.name, file) }
    }

    private mutating func addExtension(_ field: Google_Protobuf_FieldDescriptorProto, scope: String, file: String) {
        add(scope + field.name, file)
        let extendee = Self.strippingLeadingDot(field.extendee)
        if extensions[extendee, default: [:]][field.number] == nil {
            extensions[extendee, default: [:]][field.number] = file
        }
    }

    private static func strippingLeadingDot(_ name: String) -> String {
        name.hasPrefix(".") ? String(name.dropFirst()) : name
    }

    /// The number of files indexed.
    var fileCount: Int { files.count }

    /// The answer to one request of a `ServerReflectionInfo` stream. Problems with the request are
    /// answered in the stream (`error_response`), never as the RPC's status.
    ///
    /// - Parameters:
    ///   - request: The request.
    ///   - servedServices: The services the server serves, which `list_services` names; `nil` (no server
    ///     known): the services of the files given.
    func respond(
        to request: Grpc_Reflection_V1_ServerReflectionRequest,
        servedServices: [String]? = nil
    ) -> Grpc_Reflection_V1_ServerReflectionResponse {
        var response = Grpc_Reflection_V1_ServerReflectionResponse()
        response.validHost = request.host
        response.originalRequest = request
        switch request.messageRequest {
        case .fileByFilename(let name):
            if let answer = fileDescriptorResponse(for: name) {
                response.fileDescriptorResponse = answer
            } else {
                response.errorResponse = Self.error(.notFound, "File not found: \(Self.quoted(name))")
            }
        case .fileContainingSymbol(let symbol):
            let symbol = Self.strippingLeadingDot(symbol)
            if let file = fileBySymbol[symbol], let answer = fileDescriptorResponse(for: file) {
                response.fileDescriptorResponse = answer
            } else {
                response.errorResponse = Self.error(.notFound, "Symbol not found: \(Self.quoted(symbol))")
            }
        case .fileContainingExtension(let request):
            let type = Self.strippingLeadingDot(request.containingType)
            if let file = extensions[type]?[request.extensionNumber], let answer = fileDescriptorResponse(for: file) {
                response.fileDescriptorResponse = answer
            } else {
                response.errorResponse = Self.error(
                    .notFound,
                    "Extension not found: \(Self.quoted(type)), field \(request.extensionNumber)"
                )
            }
        case .allExtensionNumbersOfType(let type):
            let type = Self.strippingLeadingDot(type)
            if fileBySymbol[type] != nil || extensions[type] != nil {
                var answer = Grpc_Reflection_V1_ExtensionNumberResponse()
                answer.baseTypeName = type
                answer.extensionNumber = (extensions[type].map { Array($0.keys) } ?? []).sorted()
                response.allExtensionNumbersResponse = answer
            } else {
                response.errorResponse = Self.error(.notFound, "Type not found: \(Self.quoted(type))")
            }
        case .listServices:
            var answer = Grpc_Reflection_V1_ListServiceResponse()
            answer.service = (servedServices ?? services).map { name in .with { $0.name = name } }
            response.listServicesResponse = answer
        case nil:
            response.errorResponse = Self.error(.invalidArgument, "The request names no kind of request.")
        }
        return response
    }

    /// `name` and every file it imports, directly or not, each once, `name` first; imports this index
    /// doesn't know are left out.
    private func fileDescriptorResponse(for name: String) -> Grpc_Reflection_V1_FileDescriptorResponse? {
        guard files[name] != nil else { return nil }
        var answer = Grpc_Reflection_V1_FileDescriptorResponse()
        var seen: Set<String> = []
        var pending = [name]
        var index = 0
        while index < pending.count {
            let next = pending[index]
            index += 1
            guard seen.insert(next).inserted, let file = files[next] else { continue }
            answer.fileDescriptorProto.append(file.serialized)
            pending += file.dependencies
        }
        return answer
    }

    private static func error(_ code: RPCError.Code, _ message: String) -> Grpc_Reflection_V1_ErrorResponse {
        var error = Grpc_Reflection_V1_ErrorResponse()
        error.errorCode = Int32(code.rawValue)
        error.errorMessage = message
        return error
    }

    /// A client-supplied name in a message: quoted, and cut to a length that can't flood a log.
    private static func quoted(_ name: String) -> String {
        name.count > 256 ? "'\(name.prefix(256))…'" : "'\(name)'"
    }
}
