public import Courier  // the cases take a Courier client
internal import Foundation
internal import GRPCTestingProtos
internal import SwiftProtobuf

/// The client side of the official interop test cases (grpc/grpc doc/interop-test-descriptions.md),
/// each a function that throws an ``InteropTestFailure`` describing the first check that failed.
public enum InteropTestCase: String, CaseIterable, Sendable {
    case emptyUnary = "empty_unary"
    case largeUnary = "large_unary"
    case clientStreaming = "client_streaming"
    case serverStreaming = "server_streaming"
    case pingPong = "ping_pong"
    case emptyStream = "empty_stream"
    case customMetadata = "custom_metadata"
    case statusCodeAndMessage = "status_code_and_message"
    case specialStatusMessage = "special_status_message"
    case unimplementedMethod = "unimplemented_method"
    case unimplementedService = "unimplemented_service"
    case cancelAfterBegin = "cancel_after_begin"
    case cancelAfterFirstResponse = "cancel_after_first_response"
    case timeoutOnSleepingServer = "timeout_on_sleeping_server"
    case clientCompressedUnary = "client_compressed_unary"
    case serverCompressedUnary = "server_compressed_unary"
    case clientCompressedStreaming = "client_compressed_streaming"
    case serverCompressedStreaming = "server_compressed_streaming"
    /// 100 unary calls with `fill_server_id`: every response names the same, non-empty server (one
    /// backend, however many addresses the target resolves to). Run with a pick_first service config;
    /// not part of `all`, since it needs a server that fills `server_id`.
    case pickFirstUnary = "pick_first_unary"

    /// The cases `--test_case all` runs: every case but ``pickFirstUnary``.
    public static var all: [InteropTestCase] { allCases.filter { $0 != .pickFirstUnary } }

    /// Runs the case against a server through `client`.
    ///
    /// - Returns: Notes on checks the server didn't support: the compression cases' feature probe (a
    ///   request that expects compression but isn't compressed) passes with a note when the server
    ///   accepts it, as the interop descriptions allow (grpcio's Python servers can't see compression).
    /// - Throws: ``InteropTestFailure`` when a check fails; the RPC's error when it fails unexpectedly.
    @discardableResult
    public func run(using client: CourierClient) async throws -> [String] {
        let testService = Grpc_Testing_TestService.Client(wrapping: client)
        let options = CallOptions(timeout: .seconds(30))
        switch self {
        case .emptyUnary:
            _ = try await testService.emptyCall(Grpc_Testing_Empty(), options: options)

        case .largeUnary:
            let response = try await testService.unaryCall(
                .with {
                    $0.responseSize = 314_159
                    $0.payload = .with { $0.body = Data(count: 271_828) }
                },
                options: options
            )
            try expect(
                response.payload.body.count == 314_159,
                "payload of \(response.payload.body.count) bytes, not 314159"
            )

        case .clientStreaming:
            let response = try await testService.streamingInputCall(options: options) { writer in
                for size in [27_182, 8, 1_828, 45_904] {
                    try await writer.write(.with { $0.payload = .with { $0.body = Data(count: size) } })
                }
            }
            try expect(
                response.aggregatedPayloadSize == 74_922,
                "aggregated \(response.aggregatedPayloadSize), not 74922"
            )

        case .serverStreaming:
            let sizes = [31_415, 9, 2_653, 58_979]
            let received = try await testService.streamingOutputCall(
                .with {
                    $0.responseParameters = sizes.map { size in .with { $0.size = Int32(size) } }
                },
                options: options
            ) { response in
                var received: [Int] = []
                for try await message in response.messages { received.append(message.payload.body.count) }
                return received
            }
            try expect(received == sizes, "received sizes \(received)")

        case .pingPong:
            let requestSizes = [27_182, 8, 1_828, 45_904]
            let responseSizes = [31_415, 9, 2_653, 58_979]
            // The first request goes out at once: some servers (grpcio's) send response headers only with
            // their first response, and the response handler starts once headers have arrived.
            let (requests, continuation) = AsyncStream<Int>.makeStream()
            continuation.yield(0)
            let received = try await testService.fullDuplexCall(options: options) { writer in
                for await index in requests {
                    try await writer.write(
                        .with {
                            $0.responseParameters = [.with { $0.size = Int32(responseSizes[index]) }]
                            $0.payload = .with { $0.body = Data(count: requestSizes[index]) }
                        }
                    )
                }
            } onResponse: { response in
                var received: [Int] = []
                for try await message in response.messages {
                    received.append(message.payload.body.count)
                    if received.count < 4 { continuation.yield(received.count) } else { continuation.finish() }
                }
                continuation.finish()
                return received
            }
            try expect(received == responseSizes, "received sizes \(received)")

        case .emptyStream:
            let count = try await testService.fullDuplexCall(options: options) { _ in
            } onResponse: { response in
                var count = 0
                for try await _ in response.messages { count += 1 }
                return count
            }
            try expect(count == 0, "received \(count) messages")

        case .customMetadata:
            var metadata: Metadata = ["x-grpc-test-echo-initial": "test_initial_metadata_value"]
            metadata.addBinary([0xAB, 0xAB, 0xAB], forKey: "x-grpc-test-echo-trailing-bin")
            let unary = try await testService.unaryCall(
                request: ClientRequest(
                    message: .with {
                        $0.responseSize = 314_159
                        $0.payload = .with { $0.body = Data(count: 271_828) }
                    },
                    metadata: metadata
                ),
                options: options
            ) { $0 }
            _ = try unary.message
            try checkEchoedMetadata(initial: unary.metadata, trailing: unary.trailingMetadata)

            let (initial, trailing) = try await testService.fullDuplexCall(metadata: metadata, options: options) {
                writer in
                try await writer.write(
                    .with {
                        $0.responseParameters = [.with { $0.size = 314_159 }]
                        $0.payload = .with { $0.body = Data(count: 271_828) }
                    }
                )
            } onResponse: { response -> (Metadata, Metadata) in
                var trailing: Metadata = [:]
                for try await part in try response.accepted.get().bodyParts {
                    if case .trailingMetadata(let metadata) = part { trailing = metadata }
                }
                return (response.metadata, trailing)
            }
            try checkEchoedMetadata(initial: initial, trailing: trailing)

        case .statusCodeAndMessage, .specialStatusMessage:
            let message =
                self == .statusCodeAndMessage
                ? "test status message"
                : "\t\ntest with whitespace\r\nand Unicode BMP \u{263A} and non-BMP \u{1F608}\t\n"
            let status = Grpc_Testing_EchoStatus.with {
                $0.code = 2
                $0.message = message
            }
            try await expectError(.unknown, message: message) {
                _ = try await testService.unaryCall(.with { $0.responseStatus = status }, options: options)
            }
            if self == .statusCodeAndMessage {
                try await expectError(.unknown, message: message) {
                    try await testService.fullDuplexCall(options: options) { writer in
                        try await writer.write(.with { $0.responseStatus = status })
                    } onResponse: { response in
                        for try await _ in response.messages {}
                    }
                }
            }

        case .unimplementedMethod:
            try await expectError(.unimplemented) {
                _ = try await testService.unimplementedCall(Grpc_Testing_Empty(), options: options)
            }

        case .unimplementedService:
            try await expectError(.unimplemented) {
                _ = try await Grpc_Testing_UnimplementedService.Client(wrapping: client)
                    .unimplementedCall(Grpc_Testing_Empty(), options: options)
            }

        case .cancelAfterBegin:
            let call = Task {
                try await testService.streamingInputCall(options: options) { _ in
                    // Cancel the call before sending anything.
                    withUnsafeCurrentTask { $0?.cancel() }
                }
            }
            try await expectError(.cancelled) { _ = try await call.value }

        case .cancelAfterFirstResponse:
            let call = Task {
                try await testService.fullDuplexCall(options: options) { writer in
                    try await writer.write(
                        .with {
                            $0.responseParameters = [.with { $0.size = 31_415 }]
                            $0.payload = .with { $0.body = Data(count: 27_182) }
                        }
                    )
                    // Keep the request stream open until the call is cancelled.
                    try await Task.sleep(for: .seconds(3600))
                } onResponse: { response in
                    var iterator = response.messages.makeAsyncIterator()
                    _ = try await iterator.next()
                    withUnsafeCurrentTask { $0?.cancel() }
                    _ = try await iterator.next()
                }
            }
            try await expectError(.cancelled) { try await call.value }

        case .pickFirstUnary:
            var servers = Set<String>()
            for _ in 0..<100 {
                let response = try await testService.unaryCall(.with { $0.fillServerID = true }, options: options)
                try expect(!response.serverID.isEmpty, "a response without server_id")
                servers.insert(response.serverID)
            }
            try expect(servers.count == 1, "responses from \(servers.count) servers: \(servers.sorted())")

        case .timeoutOnSleepingServer:
            try await expectError(.deadlineExceeded) {
                try await testService.fullDuplexCall(options: CallOptions(timeout: .milliseconds(1))) { writer in
                    try await writer.write(.with { $0.payload = .with { $0.body = Data(count: 27_182) } })
                    try await Task.sleep(for: .seconds(3600))
                } onResponse: { response in
                    for try await _ in response.messages {}
                }
            }

        case .clientCompressedUnary, .clientCompressedStreaming, .serverCompressedUnary, .serverCompressedStreaming:
            return try await runCompressionCase(testService, options: options)
        }
        return []
    }

    /// Runs the feature probe: `INVALID_ARGUMENT` means the server checks; success means it can't.
    private func probe(_ body: () async throws -> Void) async throws -> [String] {
        do {
            try await body()
            return [
                "the server accepted an uncompressed request that expected compression: it doesn't check, probe skipped"
            ]
        } catch let error as RPCError {
            try expect(error.code == .invalidArgument, "feature probe: expected INVALID_ARGUMENT, got \(error)")
            return []
        }
    }

    private func runCompressionCase(
        _ testService: Grpc_Testing_TestService.Client,
        options: CallOptions
    ) async throws -> [String] {
        var notes: [String] = []
        var compressed = options
        compressed.compression = .gzip
        switch self {
        case .clientCompressedUnary:
            func request(expectCompressed: Bool) -> Grpc_Testing_SimpleRequest {
                .with {
                    $0.expectCompressed = .with { $0.value = expectCompressed }
                    $0.responseSize = 314_159
                    $0.payload = .with { $0.body = Data(count: 271_828) }
                }
            }
            // 1. The probe: "expect compressed" on an uncompressed request must be rejected.
            notes += try await probe {
                _ = try await testService.unaryCall(request(expectCompressed: true), options: options)
            }
            // 2. Compressed, and expected to be.
            let first = try await testService.unaryCall(request(expectCompressed: true), options: compressed)
            try expect(first.payload.body.count == 314_159, "payload of \(first.payload.body.count) bytes, not 314159")
            // 3. Uncompressed, and expected not to be.
            let second = try await testService.unaryCall(request(expectCompressed: false), options: options)
            try expect(
                second.payload.body.count == 314_159,
                "payload of \(second.payload.body.count) bytes, not 314159"
            )

        case .clientCompressedStreaming:
            @Sendable func request(expectCompressed: Bool, size: Int) -> Grpc_Testing_StreamingInputCallRequest {
                .with {
                    $0.expectCompressed = .with { $0.value = expectCompressed }
                    $0.payload = .with { $0.body = Data(count: size) }
                }
            }
            // 1. The probe.
            notes += try await probe {
                _ = try await testService.streamingInputCall(options: options) { writer in
                    try await writer.write(request(expectCompressed: true, size: 27_182))
                }
            }
            // 2. One compressed message, then one sent uncompressed on the same compressed call.
            let response = try await testService.streamingInputCall(options: compressed) { writer in
                try await writer.write(request(expectCompressed: true, size: 27_182))
                try await writer.write(request(expectCompressed: false, size: 45_904), options: .uncompressed)
            }
            try expect(
                response.aggregatedPayloadSize == 73_086,
                "aggregated \(response.aggregatedPayloadSize), not 73086"
            )

        case .serverCompressedUnary:
            for responseCompressed in [true, false] {
                let response = try await testService.unaryCall(
                    .with {
                        $0.responseCompressed = .with { $0.value = responseCompressed }
                        $0.responseSize = 314_159
                        $0.payload = .with { $0.body = Data(count: 271_828) }
                    },
                    options: options
                )
                try expect(
                    response.payload.body.count == 314_159,
                    "payload of \(response.payload.body.count) bytes, not 314159 (response_compressed \(responseCompressed))"
                )
            }

        case .serverCompressedStreaming:
            let sizes = [31_415, 92_653]
            let received = try await testService.streamingOutputCall(
                .with {
                    $0.responseParameters = [
                        .with {
                            $0.compressed = .with { $0.value = true }
                            $0.size = 31_415
                        },
                        .with {
                            $0.compressed = .with { $0.value = false }
                            $0.size = 92_653
                        },
                    ]
                },
                options: options
            ) { response in
                var received: [Int] = []
                for try await message in response.messages { received.append(message.payload.body.count) }
                return received
            }
            try expect(received == sizes, "received sizes \(received)")

        default:
            preconditionFailure("not a compression case")
        }
        return notes
    }

    private func checkEchoedMetadata(initial: Metadata, trailing: Metadata) throws {
        try expect(
            initial.firstString(forKey: "x-grpc-test-echo-initial") == "test_initial_metadata_value",
            "initial metadata \(initial)"
        )
        try expect(
            trailing[binaryValues: "x-grpc-test-echo-trailing-bin"] == [[0xAB, 0xAB, 0xAB]],
            "trailing metadata \(trailing)"
        )
    }

    private func expect(_ condition: Bool, _ description: @autoclosure () -> String) throws {
        if !condition { throw InteropTestFailure(testCase: rawValue, description: description()) }
    }

    private func expectError(
        _ code: RPCError.Code,
        message: String? = nil,
        _ body: () async throws -> Void
    ) async throws {
        do {
            try await body()
        } catch let error as RPCError {
            try expect(error.code == code, "expected \(code), got \(error)")
            if let message {
                try expect(
                    error.message == message,
                    "expected message \(message.debugDescription), got \(error.message.debugDescription)"
                )
            }
            return
        }
        throw InteropTestFailure(testCase: rawValue, description: "expected \(code), but the call succeeded")
    }
}

/// A failed interop check.
public struct InteropTestFailure: Error, CustomStringConvertible {
    /// The case's name.
    public var testCase: String
    /// What was wrong.
    public var description: String
}
