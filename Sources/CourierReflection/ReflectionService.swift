public import Courier  // ReflectionService is a Courier service
internal import CourierProtobuf
internal import Foundation
public import SwiftProtobuf  // the descriptors are Google_Protobuf_FileDescriptorProto values
internal import Synchronization

/// gRPC server reflection, `grpc.reflection.v1.ServerReflection` and its older twin
/// `grpc.reflection.v1alpha.ServerReflection`, so that `grpcurl`, `grpcui` and other tools can list a
/// server's services and call them without the `.proto` files.
///
/// Give it the descriptors of the files to reflect. `protoc-gen-courier` embeds them with the option
/// `ReflectionData=true`, as `fileDescriptorProtos` on each service's namespace (the service's file and
/// every file it imports); `protoc --descriptor_set_out=FILE --include_imports` writes them as a
/// descriptor set, which ``fileDescriptors(fromDescriptorSetFile:)`` reads.
///
/// ```swift
/// let reflection = try ReflectionService(fileDescriptorProtos: [
///     Ping_PingService.fileDescriptorProtos,
///     Grpc_Health_V1_Health.fileDescriptorProtos,
/// ])
/// ```
///
/// `ListServices` names the services the server serves (as grpc-go does), the reflection services
/// included, whether or not their files were given; outside a server (a context no server made), the
/// services of the files it was given. `FileByFilename`, `FileContainingSymbol` (services, methods, messages, fields, enums,
/// enum values, extensions, nested or not) and `FileContainingExtension` answer with the file and every
/// file it imports, directly or not; `AllExtensionNumbersOfType` with the numbers of the known extensions
/// of a message. A name it doesn't know is answered with `NOT_FOUND`, and a request without a kind with
/// `INVALID_ARGUMENT`, in the stream's `error_response`: the stream goes on.
///
/// - Important: Reflection shows every method of the files it is given, including ones an
///   authorization interceptor would hide; leave it out of servers whose API is a secret.
public struct ReflectionService: RegistrableRPCService {
    private let index: LazyReflectionIndex

    /// Creates the service from descriptors.
    ///
    /// The reflection protocol's own files are added. A file given twice keeps its first descriptor.
    /// The index is built on the first reflection request (or ``serviceNames``), not here, so that a
    /// server's start does not pay for it (DesignNotes/Performance.md, "One static executable, as deployed").
    ///
    /// - Parameter fileDescriptors: The files to reflect, with the files they import.
    public init(fileDescriptors: [Google_Protobuf_FileDescriptorProto]) {
        self.index = LazyReflectionIndex(fileDescriptors)
    }

    /// Creates the service from the descriptors `protoc-gen-courier` embeds (`ReflectionData=true`).
    ///
    /// - Parameter fileDescriptorProtos: Services' `fileDescriptorProtos`, one array per service.
    /// - Throws: ``ReflectionDescriptorError`` if an entry is not a base64-encoded descriptor.
    public init(fileDescriptorProtos: [[String]]) throws {
        self.init(fileDescriptors: try Self.fileDescriptors(decoding: fileDescriptorProtos.flatMap { $0 }))
    }

    /// The names of the services of the files given, and the reflection services, sorted: what
    /// `ListServices` answers outside a server.
    public var serviceNames: [String] { index.value.services }

    /// Whether the index has been built yet, for tests.
    var isIndexBuilt: Bool { index.isBuilt }

    /// Decodes the descriptors `protoc-gen-courier` embeds: base64-encoded, serialized
    /// `google.protobuf.FileDescriptorProto`s.
    ///
    /// - Parameter base64: A service's `fileDescriptorProtos`, or several joined.
    /// - Returns: The descriptors, in the same order.
    /// - Throws: ``ReflectionDescriptorError`` if an entry is not a base64-encoded descriptor.
    public static func fileDescriptors(decoding base64: [String]) throws -> [Google_Protobuf_FileDescriptorProto] {
        try base64.enumerated().map { offset, text in
            guard let bytes = Data(base64Encoded: text) else {
                throw ReflectionDescriptorError("Entry \(offset) is not base64.")
            }
            do {
                return try Google_Protobuf_FileDescriptorProto(serializedBytes: bytes)
            } catch {
                throw ReflectionDescriptorError("Entry \(offset) is not a FileDescriptorProto: \(error)")
            }
        }
    }

    /// Reads a descriptor set file, as `protoc --descriptor_set_out=FILE --include_imports` writes it.
    ///
    /// Without `--include_imports` the set lacks the files its files import, and clients that need them
    /// (most do) fail to resolve types.
    ///
    /// - Parameter path: The file's path.
    /// - Returns: The set's files.
    /// - Throws: ``ReflectionDescriptorError`` if the file can't be read or is not a descriptor set.
    public static func fileDescriptors(
        fromDescriptorSetFile path: String
    ) throws
        -> [Google_Protobuf_FileDescriptorProto]
    {
        guard let bytes = FileManager.default.contents(atPath: path) else {
            throw ReflectionDescriptorError("Cannot read the descriptor set '\(path)'.")
        }
        do {
            return try Google_Protobuf_FileDescriptorSet(serializedBytes: bytes).file
        } catch {
            throw ReflectionDescriptorError("'\(path)' is not a FileDescriptorSet: \(error)")
        }
    }

    /// Registers `grpc.reflection.v1.ServerReflection/ServerReflectionInfo` and its `v1alpha` twin.
    ///
    /// - Parameter router: The router to register with.
    public func registerMethods(with router: inout RPCRouter) {
        // The two versions' messages are the same on the wire (v1 is v1alpha renamed), so one handler,
        // over the v1 types, serves both.
        for descriptor in [
            Grpc_Reflection_V1_ServerReflection.Method.ServerReflectionInfo.descriptor,
            Grpc_Reflection_V1alpha_ServerReflection.Method.ServerReflectionInfo.descriptor,
        ] {
            router.registerBidirectionalStreaming(
                forMethod: descriptor,
                deserializer: ProtobufDeserializer<Grpc_Reflection_V1_ServerReflectionRequest>(),
                serializer: ProtobufSerializer<Grpc_Reflection_V1_ServerReflectionResponse>()
            ) { [index] request, context in
                let served = context.servedServiceNames
                return StreamingServerResponse { writer in
                    let files = index.value
                    for try await message in request.messages {
                        try await writer.write(files.respond(to: message, servedServices: served))
                    }
                    return [:]
                }
            }
        }
    }
}

/// Descriptors that could not be read: bad base64, bytes that are not a descriptor, a missing file.
public struct ReflectionDescriptorError: Error, CustomStringConvertible, Sendable {
    /// What went wrong.
    public var description: String

    init(_ description: String) {
        self.description = description
    }
}

/// The index of a ``ReflectionService``'s files, built once, on first use: the reflection protocol's own
/// descriptors decoded and every file indexed then, not while the server starts. Built under a lock, so two
/// first requests at once build it once.
private final class LazyReflectionIndex: Sendable {
    private let descriptors: [Google_Protobuf_FileDescriptorProto]
    private let built = Mutex<ReflectionIndex?>(nil)

    init(_ descriptors: [Google_Protobuf_FileDescriptorProto]) {
        self.descriptors = descriptors
    }

    var isBuilt: Bool { built.withLock { $0 != nil } }

    var value: ReflectionIndex {
        built.withLock { index in
            if let index { return index }
            // The reflection protocol's own files are generated, so they decode; a failure would leave
            // only them out.
            let own =
                (try? ReflectionService.fileDescriptors(
                    decoding: Grpc_Reflection_V1_ServerReflection.fileDescriptorProtos
                        + Grpc_Reflection_V1alpha_ServerReflection.fileDescriptorProtos
                )) ?? []
            let new = ReflectionIndex(descriptors + own)
            index = new
            return new
        }
    }
}
