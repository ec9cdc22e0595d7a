public import Courier  // the service conforms to a Courier service protocol
internal import CourierProtobuf
internal import Foundation
public import GRPCTestingProtos  // the generated protocol it conforms to
internal import SwiftProtobuf

/// `grpc.testing.TestService` as the official interop test descriptions specify it
/// (grpc/grpc doc/interop-test-descriptions.md, "Server").
public struct TestService: Grpc_Testing_TestService.ServiceProtocol {
    /// Creates the service.
    public init() {}

    /// What `SimpleResponse.server_id` carries when a request sets `fill_server_id`: one id per server
    /// process (`courier-<host>-<pid>`), so `pick_first_unary` can tell backends apart.
    public static let serverID =
        "courier-\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)"

    static let echoInitialKey = "x-grpc-test-echo-initial"
    static let echoTrailingKey = "x-grpc-test-echo-trailing-bin"

    static func echoedInitial(_ metadata: Metadata) -> Metadata {
        var echoed = Metadata()
        for value in metadata[echoInitialKey] { echoed.add(value, forKey: echoInitialKey) }
        return echoed
    }

    static func echoedTrailing(_ metadata: Metadata) -> Metadata {
        var echoed = Metadata()
        for value in metadata[echoTrailingKey] { echoed.add(value, forKey: echoTrailingKey) }
        return echoed
    }

    static func payload(size: Int32) -> Grpc_Testing_Payload {
        .with { $0.body = Data(count: Int(max(0, size))) }
    }

    /// Throws the status a request asks for, with the echoed trailers.
    static func checkRequestedStatus(_ status: Grpc_Testing_EchoStatus?, trailers: Metadata) throws {
        guard let status, status.code != 0 else { return }
        let code = RPCError.Code(Status.Code(rawValue: Int(status.code)) ?? .unknown) ?? .unknown
        throw RPCError(code: code, message: status.message, metadata: trailers)
    }

    public func emptyCall(
        request: ServerRequest<Grpc_Testing_Empty>,
        context: ServerContext
    ) async throws -> ServerResponse<Grpc_Testing_Empty> {
        ServerResponse(
            message: Grpc_Testing_Empty(),
            metadata: Self.echoedInitial(request.metadata),
            trailingMetadata: Self.echoedTrailing(request.metadata)
        )
    }

    /// Rejects a request that expects compression when the call isn't compressed (the interop cases'
    /// feature probe). Like grpc-go's test server, this checks the call's `grpc-encoding`.
    static func checkExpectedCompression(_ expected: Grpc_Testing_BoolValue?, context: ServerContext) throws {
        guard let expected, expected.value, context.requestCompression == nil else { return }
        throw RPCError(code: .invalidArgument, message: "Expected a compressed request, but the call is uncompressed.")
    }

    public func unaryCall(
        request: ServerRequest<Grpc_Testing_SimpleRequest>,
        context: ServerContext
    ) async throws -> ServerResponse<Grpc_Testing_SimpleResponse> {
        let message = request.message
        let trailers = Self.echoedTrailing(request.metadata)
        try Self.checkExpectedCompression(
            message.hasExpectCompressed ? message.expectCompressed : nil,
            context: context
        )
        try Self.checkRequestedStatus(message.hasResponseStatus ? message.responseStatus : nil, trailers: trailers)
        return ServerResponse(
            message: .with {
                $0.payload = Self.payload(size: message.responseSize)
                if message.fillServerID { $0.serverID = Self.serverID }
            },
            metadata: Self.echoedInitial(request.metadata),
            trailingMetadata: trailers,
            compression: message.hasResponseCompressed ? (message.responseCompressed.value ? .gzip : .identity) : nil
        )
    }

    /// The call's response compression for a list of response parameters: gzip if any message asks
    /// for compression; each message then opts out unless it asked.
    static func responseCompression(_ parameters: [Grpc_Testing_ResponseParameters]) -> CompressionAlgorithm? {
        parameters.contains { $0.hasCompressed && $0.compressed.value } ? .gzip : nil
    }

    static func writeOptions(_ parameters: Grpc_Testing_ResponseParameters) -> RPCWriteOptions {
        RPCWriteOptions(compress: !parameters.hasCompressed || parameters.compressed.value)
    }

    public func cacheableUnaryCall(
        request: ServerRequest<Grpc_Testing_SimpleRequest>,
        context: ServerContext
    ) async throws -> ServerResponse<Grpc_Testing_SimpleResponse> {
        try await unaryCall(request: request, context: context)
    }

    public func streamingOutputCall(
        request: ServerRequest<Grpc_Testing_StreamingOutputCallRequest>,
        context: ServerContext
    ) async throws -> StreamingServerResponse<Grpc_Testing_StreamingOutputCallResponse> {
        let message = request.message
        let trailers = Self.echoedTrailing(request.metadata)
        return StreamingServerResponse(
            metadata: Self.echoedInitial(request.metadata),
            compression: Self.responseCompression(message.responseParameters)
        ) { writer in
            for parameters in message.responseParameters {
                if parameters.intervalUs > 0 { try await Task.sleep(for: .microseconds(parameters.intervalUs)) }
                try await writer.write(
                    .with { $0.payload = Self.payload(size: parameters.size) },
                    options: Self.writeOptions(parameters)
                )
            }
            try Self.checkRequestedStatus(message.hasResponseStatus ? message.responseStatus : nil, trailers: trailers)
            return trailers
        }
    }

    public func streamingInputCall(
        request: StreamingServerRequest<Grpc_Testing_StreamingInputCallRequest>,
        context: ServerContext
    ) async throws -> ServerResponse<Grpc_Testing_StreamingInputCallResponse> {
        var total = 0
        for try await message in request.messages {
            try Self.checkExpectedCompression(
                message.hasExpectCompressed ? message.expectCompressed : nil,
                context: context
            )
            total += message.payload.body.count
        }
        return ServerResponse(
            message: .with { $0.aggregatedPayloadSize = Int32(total) },
            metadata: Self.echoedInitial(request.metadata),
            trailingMetadata: Self.echoedTrailing(request.metadata)
        )
    }

    public func fullDuplexCall(
        request: StreamingServerRequest<Grpc_Testing_StreamingOutputCallRequest>,
        context: ServerContext
    ) async throws -> StreamingServerResponse<Grpc_Testing_StreamingOutputCallResponse> {
        let trailers = Self.echoedTrailing(request.metadata)
        return StreamingServerResponse(metadata: Self.echoedInitial(request.metadata)) { writer in
            for try await message in request.messages {
                try Self.checkRequestedStatus(
                    message.hasResponseStatus ? message.responseStatus : nil,
                    trailers: trailers
                )
                for parameters in message.responseParameters {
                    if parameters.intervalUs > 0 { try await Task.sleep(for: .microseconds(parameters.intervalUs)) }
                    try await writer.write(.with { $0.payload = Self.payload(size: parameters.size) })
                }
            }
            return trailers
        }
    }

    public func halfDuplexCall(
        request: StreamingServerRequest<Grpc_Testing_StreamingOutputCallRequest>,
        context: ServerContext
    ) async throws -> StreamingServerResponse<Grpc_Testing_StreamingOutputCallResponse> {
        var buffered: [Grpc_Testing_StreamingOutputCallRequest] = []
        for try await message in request.messages { buffered.append(message) }
        let trailers = Self.echoedTrailing(request.metadata)
        return StreamingServerResponse(metadata: Self.echoedInitial(request.metadata)) { [buffered] writer in
            for message in buffered {
                for parameters in message.responseParameters {
                    try await writer.write(.with { $0.payload = Self.payload(size: parameters.size) })
                }
            }
            return trailers
        }
    }

    public func unimplementedCall(
        request: ServerRequest<Grpc_Testing_Empty>,
        context: ServerContext
    ) async throws -> ServerResponse<Grpc_Testing_Empty> {
        throw RPCError(code: .unimplemented, message: "UnimplementedCall is not implemented, by design.")
    }
}

extension TestService {
    /// The service as the interop server runs it: the generated registration, then ``unaryCall`` and
    /// ``streamingInputCall`` again with a deserializer that checks `expect_compressed` per message.
    ///
    /// The interop descriptions check compression per message: a call may declare `grpc-encoding: gzip`
    /// and still send one message uncompressed (per-message compression off), and that message must be
    /// answered with `INVALID_ARGUMENT`. Only a deserializer sees how a message arrived
    /// (``MessageBuffer/arrivedCompressed``), so the check is made there; ``checkExpectedCompression(_:context:)``
    /// in the handlers covers the call as a whole.
    public struct Registration: RegistrableRPCService {
        let service = TestService()

        /// Creates the registration.
        public init() {}

        public func registerMethods(with router: inout RPCRouter) {
            service.registerMethods(with: &router)
            let service = self.service
            router.registerUnary(
                forMethod: Grpc_Testing_TestService.Method.UnaryCall.descriptor,
                deserializer: ExpectedCompressionDeserializer<Grpc_Testing_SimpleRequest> {
                    $0.hasExpectCompressed ? $0.expectCompressed.value : false
                },
                serializer: ProtobufSerializer<Grpc_Testing_SimpleResponse>()
            ) { request, context in
                try await service.unaryCall(request: request, context: context)
            }
            router.registerClientStreaming(
                forMethod: Grpc_Testing_TestService.Method.StreamingInputCall.descriptor,
                deserializer: ExpectedCompressionDeserializer<Grpc_Testing_StreamingInputCallRequest> {
                    $0.hasExpectCompressed ? $0.expectCompressed.value : false
                },
                serializer: ProtobufSerializer<Grpc_Testing_StreamingInputCallResponse>()
            ) { request, context in
                try await service.streamingInputCall(request: request, context: context)
            }
        }
    }
}

/// Decodes a request, then rejects it with `INVALID_ARGUMENT` if it expects to have arrived compressed
/// and didn't.
struct ExpectedCompressionDeserializer<Message: SwiftProtobuf.Message & Sendable>: MessageDeserializer {
    let expectsCompression: @Sendable (Message) -> Bool

    func deserialize(_ buffer: MessageBuffer) throws -> Message {
        let message = try ProtobufDeserializer<Message>().deserialize(buffer)
        if expectsCompression(message), !buffer.arrivedCompressed {
            throw RPCError(
                code: .invalidArgument,
                message: "Expected a compressed message, but it arrived uncompressed."
            )
        }
        return message
    }
}
