import Courier
import Testing

@testable import CourierHTTP2

@Suite("gRPC message framing")
struct GRPCFramingTests {
    func frame(_ bytes: [UInt8], compressed: Bool = false) -> [UInt8] {
        GRPCMessageFramer.frame(MessageBuffer(bytes), compressed: compressed).bytes
    }

    @Test("The prefix: flag, then big-endian length; the message's storage is shared, not copied")
    func framing() {
        #expect(frame([1, 2, 3]) == [0, 0, 0, 0, 3, 1, 2, 3])
        #expect(frame([], compressed: true) == [1, 0, 0, 0, 0])
        let big = [UInt8](repeating: 7, count: 70_000)
        #expect(Array(frame(big).prefix(5)) == [0, 0, 1, 0x11, 0x70])
        // Without headroom too.
        let framed = GRPCMessageFramer.frame(MessageBuffer(storage: [9, 9], messageOffset: 0), compressed: false)
        #expect(framed.bytes == [0, 0, 0, 0, 2, 9, 9])
        // The message's bytes are not copied: the frame holds the same storage.
        let message = MessageBuffer([1, 2, 3])
        let shared = GRPCMessageFramer.frame(message, compressed: false)
        message.storageArray.withUnsafeBufferPointer { original in
            shared.storage.withUnsafeBufferPointer { framedStorage in
                #expect(original.baseAddress == framedStorage.baseAddress)
            }
        }
    }

    @Test("Messages split across DATA frames at every possible point come out whole")
    func everySplit() throws {
        let body = frame([1, 2, 3, 4]) + frame([]) + frame([5])
        for split in 0...body.count {
            var deframer = GRPCMessageDeframer(maxMessageBytes: 100)
            var messages: [[UInt8]] = []
            try deframer.process(Array(body[..<split])) { messages.append(Array($0.bytes)) }
            try deframer.process(Array(body[split...])) { messages.append(Array($0.bytes)) }
            try deframer.finish()
            #expect(messages == [[1, 2, 3, 4], [], [5]], "split at \(split)")
        }
    }

    @Test("One byte at a time")
    func byteByByte() throws {
        let body = frame(Array(0..<200).map { UInt8($0) })
        var deframer = GRPCMessageDeframer(maxMessageBytes: nil)
        var messages: [[UInt8]] = []
        for byte in body { try deframer.process([byte]) { messages.append(Array($0.bytes)) } }
        #expect(messages == [Array(0..<200).map { UInt8($0) }])
    }

    @Test("A length over the limit is refused from the prefix alone, before any allocation")
    func tooLarge() {
        var deframer = GRPCMessageDeframer(maxMessageBytes: 4 * 1024 * 1024)
        // A 2 GiB prefix and a few bytes.
        #expect(throws: GRPCMessageDeframer.Failure.messageTooLarge(length: 0x7FFF_FFFF, limit: 4 * 1024 * 1024)) {
            try deframer.process([0, 0x7F, 0xFF, 0xFF, 0xFF, 1, 2]) { _ in }
        }
        #expect(GRPCMessageDeframer.Failure.messageTooLarge(length: 1, limit: 0).rpcError.code == .resourceExhausted)
    }

    @Test("A prefix longer than the data is INTERNAL at the end of the stream")
    func truncated() throws {
        var deframer = GRPCMessageDeframer(maxMessageBytes: nil)
        try deframer.process([0, 0, 0, 0, 10, 1, 2, 3]) { _ in Issue.record("no message expected") }
        #expect(throws: GRPCMessageDeframer.Failure.truncated(received: 8, expected: 15)) { try deframer.finish() }
        var partialHeader = GRPCMessageDeframer(maxMessageBytes: nil)
        try partialHeader.process([0, 0]) { _ in }
        #expect(throws: GRPCMessageDeframer.Failure.self) { try partialHeader.finish() }
        #expect(GRPCMessageDeframer.Failure.truncated(received: 1, expected: 2).rpcError.code == .internal)
    }

    @Test("A compressed flag without grpc-encoding is INTERNAL; an unknown flag too")
    func flags() throws {
        var plain = GRPCMessageDeframer(maxMessageBytes: nil, compressionAllowed: false)
        #expect(throws: GRPCMessageDeframer.Failure.compressedWithoutEncoding) {
            try plain.process([1, 0, 0, 0, 0]) { _ in }
        }
        var bad = GRPCMessageDeframer(maxMessageBytes: nil, compressionAllowed: true)
        #expect(throws: GRPCMessageDeframer.Failure.invalidFlag(2)) { try bad.process([2, 0, 0, 0, 0]) { _ in } }
        var compressed = GRPCMessageDeframer(maxMessageBytes: nil, compressionAllowed: true)
        var flags: [Bool] = []
        try compressed.process([1, 0, 0, 0, 1, 9]) { flags.append($0.compressed) }
        #expect(flags == [true])
    }
}

@Suite("grpc-timeout")
struct GRPCTimeoutTests {
    @Test(
        "Every unit parses",
        arguments: [
            ("1H", Duration.seconds(3600)), ("2M", .seconds(120)), ("3S", .seconds(3)), ("4m", .milliseconds(4)),
            ("5u", .microseconds(5)), ("6n", .nanoseconds(6)), ("99999999S", .seconds(99_999_999)), ("0m", .zero),
        ]
    )
    func parse(value: String, expected: Duration) {
        #expect(GRPCTimeout.parse(value) == expected)
    }

    @Test(
        "Malformed values don't parse",
        arguments: ["", "S", "1", "123456789S", "-1S", "1s", "1.5S", " 1S", "1SS", "1x"]
    )
    func malformed(value: String) {
        #expect(GRPCTimeout.parse(value) == nil)
    }

    @Test("Encoding picks the finest unit that fits in 8 digits and rounds up")
    func encode() {
        #expect(GRPCTimeout.encode(.nanoseconds(1)) == "1n")
        #expect(GRPCTimeout.encode(.milliseconds(100)) == "100000u")
        #expect(GRPCTimeout.encode(.seconds(30)) == "30000000u")
        #expect(GRPCTimeout.encode(.seconds(300)) == "300000m")
        #expect(GRPCTimeout.encode(.seconds(3600 * 24 * 365)) == "31536000S")
        #expect(GRPCTimeout.encode(.seconds(200_000_000)) == "3333334M")
        #expect(GRPCTimeout.encode(.nanoseconds(100_000_001)) == "100001u")
        #expect(GRPCTimeout.encode(.zero) == "0n")
        #expect(GRPCTimeout.encode(.seconds(-5)) == "0n")
        for duration: Duration in [.nanoseconds(7), .milliseconds(1234), .seconds(42), .seconds(7200)] {
            let encoded = GRPCTimeout.encode(duration)
            #expect(encoded.utf8.count <= 9)
            #expect(GRPCTimeout.parse(encoded)! >= duration)
        }
    }
}

@Suite("grpc-message, -bin metadata, status mapping")
struct GRPCHeaderTests {
    @Test("Percent-encoding round-trips special characters exactly (interop special_status_message)")
    func percentEncoding() {
        let message = "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n"
        let encoded = GRPCStatusMessage.encode(message)
        #expect(encoded.utf8.allSatisfy { $0 >= 0x20 && $0 <= 0x7E })
        #expect(GRPCStatusMessage.decode(encoded) == message)
        #expect(GRPCStatusMessage.encode("plain 100") == "plain 100")
        #expect(GRPCStatusMessage.encode("50%") == "50%25")
    }

    @Test("Decoding never fails", arguments: ["%", "%Z1", "abc%4", "%E2%98", "%ff%fe"])
    func lenientDecoding(value: String) {
        _ = GRPCStatusMessage.decode(value)
    }

    @Test("Base64: unpadded out, padded or unpadded in")
    func base64() {
        #expect(Base64.encode([0xAB, 0xAB, 0xAB]) == "q6ur")
        #expect(Base64.encode([0x00]) == "AA")
        #expect(Base64.encode([0x00, 0x01]) == "AAE")
        #expect(Base64.decode("AA") == [0x00])
        #expect(Base64.decode("AA==") == [0x00])
        #expect(Base64.decode("AAE=") == [0x00, 0x01])
        #expect(Base64.decode("q6ur") == [0xAB, 0xAB, 0xAB])
        #expect(Base64.decode("A") == nil)
        #expect(Base64.decode("!!!!") == nil)
        for length in 0..<20 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 * 37) }
            #expect(Base64.decode(Base64.encode(bytes)) == bytes)
        }
    }

    @Test("Received headers become metadata; reserved ones don't; comma-joined -bin values split")
    func receivedHeaders() throws {
        var metadata = Metadata()
        try GRPCHeaders.addReceived(name: ":path", value: "/a/b", to: &metadata)
        try GRPCHeaders.addReceived(name: "content-type", value: "application/grpc", to: &metadata)
        try GRPCHeaders.addReceived(name: "grpc-timeout", value: "1S", to: &metadata)
        try GRPCHeaders.addReceived(name: "x-a", value: "1", to: &metadata)
        try GRPCHeaders.addReceived(name: "x-b-bin", value: "AA==, AAE", to: &metadata)
        #expect(metadata.map(\.key) == ["x-a", "x-b-bin", "x-b-bin"])
        #expect(metadata[binaryValues: "x-b-bin"] == [[0], [0, 1]])
        #expect(throws: RPCError.self) { try GRPCHeaders.addReceived(name: "x-c-bin", value: "***", to: &metadata) }
        metadata.addString("  padded value ", forKey: "x-padded")
        let fields = GRPCHeaders.fields(for: metadata)
        #expect(fields.last?.value == "padded value")
        #expect(fields.map(\.name) == ["x-a", "x-b-bin", "x-b-bin", "x-padded"])
        #expect(fields.map(\.value) == ["1", "AA", "AAE", "padded value"])
    }

    @Test(
        "Content types",
        arguments: [
            ("application/grpc", true), ("application/grpc+proto", true), ("application/grpc;charset=utf-8", true),
            ("Application/GRPC", true), ("application/grpcx", false), ("application/json", false), ("", false),
        ]
    )
    func contentTypes(value: String, valid: Bool) {
        #expect(GRPCHeaders.isGRPCContentType(value) == valid)
    }

    @Test(
        "HTTP status without grpc-status maps per the spec",
        arguments: [
            (400, Status.Code.internal), (401, .unauthenticated), (403, .permissionDenied), (404, .unimplemented),
            (429, .unavailable), (502, .unavailable), (503, .unavailable), (504, .unavailable), (431, .internal),
            (200, .unknown), (500, .unknown),
        ]
    )
    func httpStatus(status: Int, code: Status.Code) {
        #expect(GRPCHeaders.status(forHTTPStatus: status).code == code)
    }

    @Test("grpc-status parsing")
    func statusCodes() {
        #expect(GRPCHeaders.parseStatusCode("0") == .ok)
        #expect(GRPCHeaders.parseStatusCode("16") == .unauthenticated)
        #expect(GRPCHeaders.parseStatusCode("17") == .unknown)
        #expect(GRPCHeaders.parseStatusCode("-1") == nil)
        #expect(GRPCHeaders.parseStatusCode("") == nil)
        #expect(GRPCHeaders.parseStatusCode("1a") == nil)
        #expect(GRPCHeaders.parseStatusCode("99999999999") == nil)
    }
}
