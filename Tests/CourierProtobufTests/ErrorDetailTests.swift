import Courier
import CourierHTTP2
import CourierInMemory
import CourierProtobuf
import CourierTestSupport
import Foundation
import GreeterService
import SwiftProtobuf
import Testing

/// One of each of the ten google.rpc details, with the values the grpcio peer uses.
let everyDetail: [ErrorDetail] = [
    .errorInfo(reason: "QUOTA", domain: "example.com", metadata: ["k": "v"]),
    .retryInfo(delay: .milliseconds(2500)),
    .debugInfo(
        .with {
            $0.stackEntries = ["a", "b"]
            $0.detail = "debug"
        }
    ),
    .quotaFailure(
        .with {
            $0.violations = [
                .with {
                    $0.subject = "s"
                    $0.description_p = "q"
                }
            ]
        }
    ),
    .preconditionFailure(
        .with {
            $0.violations = [
                .with {
                    $0.type = "TOS"
                    $0.subject = "t"
                    $0.description_p = "p"
                }
            ]
        }
    ),
    .badRequest(fieldViolations: [("name", "empty")]),
    .requestInfo(
        .with {
            $0.requestID = "r-1"
            $0.servingData = "sd"
        }
    ),
    .resourceInfo(
        .with {
            $0.resourceType = "book"
            $0.resourceName = "b1"
            $0.owner = "o"
            $0.description_p = "gone"
        }
    ),
    .help(
        .with {
            $0.links = [
                .with {
                    $0.description_p = "docs"
                    $0.url = "https://example.com/help"
                }
            ]
        }
    ),
    .localizedMessage(locale: "en-US", message: "Try later."),
]

/// `hello.HelloService` whose SayHello fails with the error `makeError` makes; the others are unimplemented.
struct FailingHello: Hello_HelloService.ServiceProtocol {
    let makeError: @Sendable () throws -> RPCError

    func sayHello(
        request: ServerRequest<Hello_HelloRequest>,
        context: ServerContext
    ) async throws -> ServerResponse<Hello_HelloResponse> {
        throw try makeError()
    }
    func lotsOfReplies(
        request: ServerRequest<Hello_HelloRequest>,
        context: ServerContext
    ) async throws -> StreamingServerResponse<Hello_HelloResponse> {
        throw RPCError(code: .unimplemented, message: "")
    }
    func lotsOfGreetings(
        request: StreamingServerRequest<Hello_HelloRequest>,
        context: ServerContext
    ) async throws -> ServerResponse<Hello_HelloResponse> {
        throw RPCError(code: .unimplemented, message: "")
    }
    func bidiHello(
        request: StreamingServerRequest<Hello_HelloRequest>,
        context: ServerContext
    ) async throws -> StreamingServerResponse<Hello_HelloResponse> {
        throw RPCError(code: .unimplemented, message: "")
    }
}

/// `hello.HelloService` whose SayHello fails with every detail.
let richFailing = FailingHello { RPCError(code: .resourceExhausted, message: "rich", details: everyDetail) }

/// The error SayHello fails with.
func sayHelloError(_ client: CourierClient) async throws -> RPCError {
    do {
        _ = try await Hello_HelloService.Client(wrapping: client).sayHello(Hello_HelloRequest())
    } catch let error as RPCError {
        return error
    }
    throw RPCError(code: .unknown, message: "SayHello succeeded")
}

let protobufPeers = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Peers")

@Suite("Typed error details (google.rpc error_details.proto)")
struct ErrorDetailTests {
    @Test("Each standard detail packs under its google.rpc type URL and unpacks as itself")
    func packing() throws {
        let names = [
            "ErrorInfo", "RetryInfo", "DebugInfo", "QuotaFailure", "PreconditionFailure", "BadRequest",
            "RequestInfo", "ResourceInfo", "Help", "LocalizedMessage",
        ]
        for (detail, name) in zip(everyDetail, names) {
            #expect(detail.packed.typeURL == "type.googleapis.com/google.rpc.\(name)")
            #expect(ErrorDetail(detail.packed) == detail, "\(name)")
            #expect(try ErrorDetail(packing: detail.packed) != detail, "an Any packed in an Any stays packed")
        }
        #expect(everyDetail[0].errorInfo?.metadata == ["k": "v"])
        #expect(everyDetail[1].retryInfo?.retryDelay == Google_Protobuf_Duration(seconds: 2, nanos: 500_000_000))
        #expect(everyDetail[5].badRequest?.fieldViolations.first?.field == "name")
        #expect(everyDetail[9].localizedMessage?.locale == "en-US")
        #expect(everyDetail[0].retryInfo == nil)
        #expect(everyDetail[0].unpack(Google_Rpc_ErrorInfo.self)?.reason == "QUOTA")
        #expect(everyDetail[0].unpack(Google_Rpc_Help.self) == nil)
    }

    @Test("A standard message packed by hand is that kind; others and bad bytes stay packed")
    func reading() throws {
        let info = Google_Rpc_ErrorInfo.with { $0.reason = "R" }
        #expect(try ErrorDetail(packing: info).errorInfo == info)
        let other = try ErrorDetail(packing: Google_Protobuf_Duration(seconds: 3))
        #expect(other.errorInfo == nil)
        #expect(other.unpack(Google_Protobuf_Duration.self)?.seconds == 3)
        var broken = Google_Protobuf_Any()
        broken.typeURL = "type.googleapis.com/google.rpc.ErrorInfo"
        broken.value = Data([0xFF])
        let kept = ErrorDetail(broken)
        #expect(kept.errorInfo == nil)
        #expect(kept.packed == broken)
    }

    @Test("The details ride in grpc-status-details-bin as a google.rpc.Status")
    func status() throws {
        let error = RPCError(code: .resourceExhausted, message: "rich", details: everyDetail, metadata: ["x": "y"])
        let status = try #require(error.statusDetails)
        #expect(status.code == 8)
        #expect(status.message == "rich")
        #expect(status.details.count == 10)
        #expect(error.details == everyDetail)
        #expect(error.metadata.firstString(forKey: "x") == "y")
        #expect(RPCError(code: .internal, message: "none").details.isEmpty)
    }

    @Test("Round trip over the in-memory transport")
    func inMemory() async throws {
        let transport = InMemoryTransport()
        try await withCourierServer(transport: transport.server, services: [richFailing]) { _ in
            let error = try await sayHelloError(CourierClient(transport: transport.client))
            #expect(error.code == .resourceExhausted)
            #expect(error.message == "rich")
            #expect(error.details == everyDetail)
        }
    }

    @Test("Round trip over HTTP/2")
    func http2() async throws {
        let transport = HTTP2ServerTransport(address: .ipv4(host: "127.0.0.1", port: 0))
        try await withCourierServer(transport: transport, services: [richFailing]) { _ in
            let port = try #require(try await transport.listeningAddress().port)
            try await withCourierClient(transport: try HTTP2ClientTransport(target: "127.0.0.1:\(port)")) { client in
                let error = try await sayHelloError(client)
                #expect(error.code == .resourceExhausted)
                #expect(error.details == everyDetail)
            }
        }
    }

    @Test("A grpcio client reads the details a Courier server sends")
    func grpcioClient() async throws {
        let transport = HTTP2ServerTransport(address: .ipv4(host: "127.0.0.1", port: 0))
        try await withCourierServer(transport: transport, services: [richFailing]) { _ in
            let port = try #require(try await transport.listeningAddress().port)
            let result = try await runProcess(
                "/usr/bin/env",
                ["python3", protobufPeers.appendingPathComponent("grpcio_rich_status.py").path, "client", "\(port)"]
            )
            #expect(result.status == 0, "\(result.output)")
            #expect(result.output.contains("15 passed, 0 failed"), "\(result.output)")
        }
    }

    @Test("A Courier client reads the details a grpcio server sends")
    func grpcioServer() async throws {
        let server = try ChildProcess(
            "/usr/bin/env",
            ["python3", protobufPeers.appendingPathComponent("grpcio_rich_status.py").path, "server"]
        )
        let line = try #require(await server.line(containing: "PORT "), "\(server.output)")
        let port = try #require(Int(line.split(separator: " ").last ?? ""))
        try await withCourierClient(transport: try HTTP2ClientTransport(target: "127.0.0.1:\(port)")) {
            client in
            let error = try await sayHelloError(client)
            #expect(error.code == .resourceExhausted)
            #expect(error.message == "rich")
            #expect(error.details == everyDetail)
        }
        await server.stop()
    }
}
