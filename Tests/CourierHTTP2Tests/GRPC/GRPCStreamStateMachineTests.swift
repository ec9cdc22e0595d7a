import Courier
import Testing

@testable import CourierHTTP2

private typealias Machine = GRPCStreamStateMachine
private typealias OnInbound = GRPCStreamStateMachine.OnInbound
private typealias DataPull = GRPCStreamStateMachine.DataPull

private let streamEnded = GRPCStreamStateMachine.streamEnded
private let clientCancelled = GRPCStreamStateMachine.clientCancelled
private let rpcEnded = GRPCStreamStateMachine.rpcEnded
private let callCancelled = RPCError(code: .cancelled, message: "The RPC was cancelled.")
private let outOfOrder = RPCError(code: .internal, message: "A request message written out of order.")

/// Each RST_STREAM code and the error a client reports for it before the status (PROTOCOL-HTTP2's mapping).
private let resetErrors: [(HTTP2ErrorCode, RPCError)] =
    [
        (.refusedStream, RPCError(code: .unavailable, message: "The server refused the stream.")),
        (.cancel, RPCError(code: .cancelled, message: "The server cancelled the RPC.")),
        (
            .enhanceYourCalm,
            RPCError(code: .resourceExhausted, message: "The server reset the stream: ENHANCE_YOUR_CALM.")
        ),
        (
            .inadequateSecurity,
            RPCError(code: .permissionDenied, message: "The server reset the stream: INADEQUATE_SECURITY.")
        ),
    ]
    + [
        HTTP2ErrorCode.noError, .protocolError, .internalError, .flowControlError, .settingsTimeout, .streamClosed,
        .frameSizeError, .compressionError, .connectError, .http11Required, HTTP2ErrorCode(rawValue: 0x42),
    ].map { ($0, RPCError(code: .internal, message: "The stream was reset (HTTP/2 \($0)) before a status.")) }

/// The stream state machine as a value, transition by transition: every event from every state it can
/// arrive in, at both ends, checking the returned action and the states (`send`, `receive`,
/// `termination`) it leaves behind. Events that don't apply are shown to be ignored, and to say so.
@Suite("gRPC stream state machine")
struct GRPCStreamStateMachineTests {
    // MARK: - Server

    @Suite("Server: the request head")
    struct ServerRequestHead {
        @Test("A new server stream: nothing sent, the request open (its headers made it), nothing ended")
        func initial() {
            let machine = Machine.server()
            #expect(machine.states == StreamStates(.idle, .open))
            #expect(machine.timeout == nil)
            #expect(machine.requestCompression == nil)
            #expect(machine.outboundCompression == nil)
            #expect(machine.queuedBytes == 0)
            #expect(!machine.hasStream)  // a client notion: a server never resets through it
        }

        @Test("A valid request head is served; neither direction moves")
        func valid() {
            var machine = Machine.server()
            #expect(machine.receiveRequestHead(validRequest(), endStream: false) == .serve)
            #expect(machine.states == StreamStates(.idle, .open))
            #expect(machine.nextInbound().read == .wait)
        }

        @Test("A request head with END_STREAM is served and ends the request: the reader gets the end")
        func endStream() {
            var machine = Machine.server()
            #expect(machine.receiveRequestHead(validRequest(), endStream: true) == .serve)
            #expect(machine.states == StreamStates(.idle, .closed))
            #expect(machine.nextInbound().read == .end)
        }

        @Test(
            "A method other than POST (or none) is answered 405; the send side is closed",
            arguments: ["GET", "PUT", "post", nil] as [String?]
        )
        func methodNotAllowed(method: String?) {
            var fields = validRequestFields.filter { $0.0 != ":method" }
            if let method { fields.append((":method", method)) }
            var machine = Machine.server()
            #expect(machine.receiveRequestHead(requestHead(fields), endStream: false) == .reject(.httpStatus(405)))
            #expect(machine.states == StreamStates(.closed, .open))
        }

        @Test(
            "A content-type that isn't gRPC's (or none) is answered 415",
            arguments: [nil, "", "text/plain", "application/json", "application/grpcx", "application/grp"] as [String?]
        )
        func unsupportedMediaType(contentType: String?) {
            var fields = validRequestFields.filter { $0.0 != "content-type" }
            if let contentType { fields.append(("content-type", contentType)) }
            var machine = Machine.server()
            #expect(machine.receiveRequestHead(requestHead(fields), endStream: true) == .reject(.httpStatus(415)))
            #expect(machine.states == StreamStates(.closed, .closed))
        }

        @Test(
            "gRPC's content-types are served, with a format, parameters, in any case",
            arguments: [
                "application/grpc", "application/grpc+proto", "application/grpc+json", "application/grpc;charset=utf-8",
                "Application/GRPC",
            ]
        )
        func grpcContentTypes(contentType: String) {
            var fields = validRequestFields.filter { $0.0 != "content-type" }
            fields.append(("content-type", contentType))
            var machine = Machine.server()
            #expect(machine.receiveRequestHead(requestHead(fields), endStream: false) == .serve)
            #expect(machine.states == StreamStates(.idle, .open))
        }

        @Test("The method is checked before the content-type")
        func methodFirst() {
            var machine = Machine.server()
            let head = requestHead([(":method", "GET"), (":path", "/a/b"), ("content-type", "text/html")])
            #expect(machine.receiveRequestHead(head, endStream: true) == .reject(.httpStatus(405)))
        }

        @Test("A missing or empty :path is a Trailers-Only UNIMPLEMENTED", arguments: [nil, ""] as [String?])
        func missingPath(path: String?) {
            var fields = validRequestFields.filter { $0.0 != ":path" }
            if let path { fields.append((":path", path)) }
            var machine = Machine.server()
            #expect(
                machine.receiveRequestHead(requestHead(fields), endStream: false)
                    == .reject(.trailersOnly(Status(code: .unimplemented, message: "Missing :path.")))
            )
            #expect(machine.states == StreamStates(.closed, .open))
        }

        @Test(
            "A malformed grpc-timeout is a Trailers-Only INTERNAL",
            arguments: ["", "S", "1", "123456789S", "-1S", "+1S", "1s", "1.5S", "1 S", "10Sx", "1000000000000000000H"]
        )
        func malformedTimeout(value: String) {
            var machine = Machine.server()
            let result = machine.receiveRequestHead(validRequest([("grpc-timeout", value)]), endStream: false)
            let expected = Status(code: .internal, message: "Malformed grpc-timeout '\(value.prefix(16))'.")
            #expect(result == .reject(.trailersOnly(expected)))
            #expect(machine.states == StreamStates(.closed, .open))
            #expect(machine.timeout == nil)
        }

        @Test(
            "A valid grpc-timeout is served and kept, in every unit",
            arguments: [
                ("10S", Duration.seconds(10)), ("1H", .seconds(3600)), ("2M", .seconds(120)),
                ("250m", .milliseconds(250)),
                ("7u", .microseconds(7)), ("3n", .nanoseconds(3)), ("0n", .zero), ("99999999S", .seconds(99_999_999)),
            ]
        )
        func validTimeout(value: String, expected: Duration) {
            var machine = Machine.server()
            #expect(machine.receiveRequestHead(validRequest([("grpc-timeout", value)]), endStream: false) == .serve)
            #expect(machine.timeout == expected)
            #expect(machine.states == StreamStates(.idle, .open))
        }

        @Test(
            "An unknown grpc-encoding is a Trailers-Only UNIMPLEMENTED",
            arguments: ["br", "snappy", "GZIP", "gzip,deflate", ""]
        )
        func unknownEncoding(encoding: String) {
            var machine = Machine.server()
            let result = machine.receiveRequestHead(validRequest([("grpc-encoding", encoding)]), endStream: false)
            let expected = Status(code: .unimplemented, message: "Unsupported grpc-encoding '\(encoding)'.")
            #expect(result == .reject(.trailersOnly(expected)))
            #expect(machine.states == StreamStates(.closed, .open))
            #expect(machine.requestCompression == nil)
        }

        @Test("grpc-encoding identity is served as no compression: a compressed message is then INTERNAL")
        func identityEncoding() {
            var machine = Machine.server()
            #expect(
                machine.receiveRequestHead(validRequest([("grpc-encoding", "identity")]), endStream: false) == .serve
            )
            #expect(machine.requestCompression == nil)
            #expect(machine.outboundCompression == nil)
            let body = compressedFrame([1, 2, 3], .gzip)
            let error = RPCError(code: .internal, message: "Compressed message received without grpc-encoding.")
            #expect(machine.receiveData(body) == OnInbound(releaseWindow: body.count, failure: .terminate(error)))
        }

        @Test(
            "grpc-encoding gzip or deflate is the request's compression, and the response's by default",
            arguments: [CompressionAlgorithm.gzip, .deflate]
        )
        func knownEncoding(algorithm: CompressionAlgorithm) {
            var machine = Machine.server()
            #expect(
                machine.receiveRequestHead(validRequest([("grpc-encoding", algorithm.name)]), endStream: false)
                    == .serve
            )
            #expect(machine.requestCompression == algorithm)
            #expect(machine.outboundCompression == algorithm)
            #expect(machine.sendHead([:]) == .submit(.custom(compression: algorithm, metadata: [:])))
        }

        @Test("A -bin value that isn't base64 is a Trailers-Only INTERNAL", arguments: ["!!!", "A", "AQID,@@"])
        func badBinaryMetadata(value: String) {
            var machine = Machine.server()
            let result = machine.receiveRequestHead(validRequest([("x-trace-bin", value)]), endStream: false)
            let expected = Status(code: .internal, message: "Invalid base64 in metadata 'x-trace-bin'.")
            #expect(result == .reject(.trailersOnly(expected)))
            #expect(machine.states == StreamStates(.closed, .open))
        }

        @Test("-bin values padded, unpadded and comma-joined are served")
        func binaryMetadata() {
            let head = validRequest([
                ("x-a-bin", "AQID"), ("x-b-bin", "AQ"), ("x-b-bin", "AQ=="), ("x-c-bin", "AQ, Ag"),
            ])
            var machine = Machine.server()
            #expect(machine.receiveRequestHead(head, endStream: false) == .serve)
            #expect(head.metadata[binaryValues: "x-a-bin"] == [[1, 2, 3]])
            #expect(head.metadata[binaryValues: "x-b-bin"] == [[1], [1]])
            #expect(head.metadata[binaryValues: "x-c-bin"] == [[1], [2]])
        }

        @Test(
            "After a rejection, HEADERS with END_STREAM went out: RST_STREAM(NO_ERROR) follows iff the request is still open",
            arguments: [false, true]
        )
        func rejectionThenReset(requestEnded: Bool) {
            var machine = Machine.server()
            #expect(
                machine.receiveRequestHead(requestHead([(":method", "GET")]), endStream: requestEnded)
                    == .reject(.httpStatus(405))
            )
            #expect(machine.sentEndOfStream() == !requestEnded)
            #expect(machine.states == StreamStates(.closed, requestEnded ? .closed : .open))
        }

        @Test("After a rejection, DATA is dropped and its window given back at once; writes fail, a status is ignored")
        func afterRejection() {
            var machine = Machine.server()
            _ = machine.receiveRequestHead(validRequest([("grpc-encoding", "br")]), endStream: false)
            let body = framed([1, 2, 3])
            #expect(machine.receiveData(body) == OnInbound(releaseWindow: body.count))
            #expect(machine.nextInbound().read == .wait)
            #expect(machine.sendHead([:]) == .failed(streamEnded))
            #expect(machine.sendMessage(MessageBuffer([1])) == .failed(streamEnded))
            #expect(machine.sendStatus(.ok, trailers: [:]) == .ignore)
            #expect(machine.terminate(status: .ok, trailers: [:]) == .ignore)
            #expect(machine.receiveEndOfStream() == OnInbound())
            #expect(machine.states == StreamStates(.closed, .closed))
        }
    }

    @Suite("Server: request DATA and its window")
    struct ServerData {
        @Test("A whole message is held for the reader; its window opens once the reader has taken it")
        func wholeMessage() {
            var machine = Machine.serving()
            #expect(machine.receiveData(framed([1, 2, 3])) == OnInbound(releaseWindow: 0))
            let next = machine.nextInbound()
            #expect(next.read == .message([1, 2, 3]))
            #expect(next.releaseWindow == 8)
            #expect(next.buffer?.arrivedCompressed == false)
            let after = machine.nextInbound()
            #expect(after.read == .wait)
            #expect(after.releaseWindow == 0)
            #expect(machine.states == StreamStates(.idle, .open))
        }

        @Test("Bytes of a message still arriving count as taken: their window opens at once")
        func partialMessage() {
            var machine = Machine.serving()
            let body = framed([1, 2, 3, 4, 5, 6])  // 11 bytes
            #expect(machine.receiveData(Array(body[..<4])) == OnInbound(releaseWindow: 4))
            #expect(machine.receiveData(Array(body[4..<9])) == OnInbound(releaseWindow: 5))
            #expect(machine.nextInbound().read == .wait)
            #expect(machine.receiveData(Array(body[9...])) == OnInbound(releaseWindow: 0))  // complete: held
            let next = machine.nextInbound()
            #expect(next.read == .message([1, 2, 3, 4, 5, 6]))
            #expect(next.releaseWindow == 2)
        }

        @Test("Several buffered messages hold the window until the reader has taken the last one")
        func severalMessages() {
            var machine = Machine.serving()
            let body = framed([1]) + framed([2, 2]) + Array(framed([3, 3, 3]).prefix(6))  // 6 + 7 + 6
            #expect(machine.receiveData(body) == OnInbound(releaseWindow: 0))
            let first = machine.nextInbound()
            #expect(first.read == .message([1]))
            #expect(first.releaseWindow == 0)
            // More DATA while a message is still unread: held too.
            #expect(machine.receiveData([3, 3]) == OnInbound(releaseWindow: 0))
            let second = machine.nextInbound()
            #expect(second.read == .message([2, 2]))
            #expect(second.releaseWindow == 0)
            let third = machine.nextInbound()
            #expect(third.read == .message([3, 3, 3]))
            #expect(third.releaseWindow == 21)
            #expect(machine.nextInbound().read == .wait)
        }

        @Test(
            "Messages cut into DATA of any size come out whole and in order; the whole window comes back",
            arguments: [1, 2, 3, 4, 5, 6, 7, 8, 13, 64, 1000]
        )
        func chunked(size: Int) {
            let messages: [[UInt8]] = [[1, 2, 3, 4], [], [5], Array(repeating: 9, count: 40), [6]]
            let body = messages.flatMap { framed($0) }
            var machine = Machine.serving()
            var released = 0
            var received: [[UInt8]] = []
            var index = 0
            while index < body.count {
                let end = min(index + size, body.count)
                let result = machine.receiveData(Array(body[index..<end]))
                #expect(result.failure == nil)
                released += result.releaseWindow
                index = end
                while true {
                    let next = machine.nextInbound()
                    released += next.releaseWindow
                    guard case .message(let bytes) = next.read else {
                        #expect(next.read == .wait)
                        break
                    }
                    received.append(bytes)
                }
            }
            #expect(machine.receiveEndOfStream() == OnInbound())
            #expect(received == messages)
            #expect(released == body.count)
            #expect(machine.nextInbound().read == .end)
            #expect(machine.states == StreamStates(.idle, .closed))
        }

        @Test("A body split in two at every point comes out whole")
        func everySplit() {
            let body = framed([1, 2, 3, 4]) + framed([]) + framed([5])
            for split in 0...body.count {
                var machine = Machine.serving()
                var released = machine.receiveData(Array(body[..<split])).releaseWindow
                released += machine.receiveData(Array(body[split...])).releaseWindow
                #expect(machine.receiveEndOfStream() == OnInbound(), "split at \(split)")
                var reads: [Read] = []
                while true {
                    let next = machine.nextInbound()
                    released += next.releaseWindow
                    reads.append(next.read)
                    if next.read == .end { break }
                }
                #expect(reads == [.message([1, 2, 3, 4]), .message([]), .message([5]), .end], "split at \(split)")
                #expect(released == body.count, "split at \(split)")
            }
        }

        @Test(
            "DATA after END_STREAM (on the head or on DATA) is dropped, its window given back at once",
            arguments: [true, false]
        )
        func afterEndStream(onHead: Bool) {
            var machine = Machine.serving(endStream: onHead)
            if !onHead { #expect(machine.receiveEndOfStream() == OnInbound()) }
            #expect(machine.receiveData(framed([7])) == OnInbound(releaseWindow: 6))
            #expect(machine.nextInbound().read == .end)
            #expect(machine.states == StreamStates(.idle, .closed))
        }

        @Test("Once the response has ended, DATA is dropped and the window opens at once, with what was held")
        func afterResponseEnded() {
            var machine = Machine.serving()
            #expect(machine.receiveData(framed([1])) == OnInbound(releaseWindow: 0))  // 6 bytes held
            #expect(machine.sendHead([:]) == .submit(.plain))
            #expect(machine.sendStatus(.ok, trailers: [:]) == .queued(resumeData: false))
            #expect(machine.receiveData(framed([2, 2])) == OnInbound(releaseWindow: 13))
            // What arrived before the end is still read (its window went back already); nothing after it.
            let next = machine.nextInbound()
            #expect(next.read == .message([1]))
            #expect(next.releaseWindow == 0)
            #expect(machine.nextInbound().read == .wait)
            #expect(machine.states == StreamStates(.closing, .open))
        }

        @Test("After a Trailers-Only response DATA is dropped, its window given back at once")
        func afterTrailersOnly() {
            var machine = Machine.serving()
            #expect(
                machine.sendStatus(Status(code: .notFound), trailers: [:])
                    == .trailersOnly(Status(code: .notFound), [:])
            )
            #expect(machine.receiveData(framed([1, 2])) == OnInbound(releaseWindow: 7))
            #expect(machine.states == StreamStates(.closed, .open))
        }

        @Test("After the stream closed DATA is dropped, its window given back at once")
        func afterStreamClosed() {
            var machine = Machine.serving()
            #expect(machine.streamClosed(.cancel) == .cancelHandler)
            #expect(machine.receiveData(framed([1])) == OnInbound(releaseWindow: 6))
            #expect(machine.nextInbound().read == .failed(clientCancelled))
        }

        @Test("A stream closed with unread messages hands their held window over, once")
        func heldWindowOnClose() {
            var machine = Machine.serving()
            #expect(machine.receiveData(framed([1, 2, 3]) + framed([4])) == OnInbound(releaseWindow: 0))
            #expect(machine.streamClosed(.cancel) == .cancelHandler)
            #expect(machine.releaseHeldWindow() == 14)
            #expect(machine.releaseHeldWindow() == 0)
            // A reader may still take them; the window isn't given back twice.
            let next = machine.nextInbound()
            #expect(next.read == .message([1, 2, 3]))
            #expect(next.releaseWindow == 0)
            #expect(machine.nextInbound().releaseWindow == 0)
            #expect(machine.nextInbound().read == .failed(clientCancelled))
        }

        @Test(
            "A compressed message on a stream with grpc-encoding arrives decompressed; uncompressed ones too",
            arguments: [CompressionAlgorithm.gzip, .deflate]
        )
        func compressed(algorithm: CompressionAlgorithm) {
            var machine = Machine.serving([("grpc-encoding", algorithm.name)])
            let payload = Array("hello, hello, hello, hello".utf8)
            let body = compressedFrame(payload, algorithm)
            #expect(body[0] == 1)
            #expect(machine.receiveData(body) == OnInbound(releaseWindow: 0))
            let next = machine.nextInbound()
            #expect(next.read == .message(payload))
            #expect(next.buffer?.arrivedCompressed == true)
            #expect(next.releaseWindow == body.count)
            #expect(machine.receiveData(framed([9])) == OnInbound(releaseWindow: 0))
            let plain = machine.nextInbound()
            #expect(plain.read == .message([9]))
            #expect(plain.buffer?.arrivedCompressed == false)
        }

        @Test("A compressed message without grpc-encoding ends the RPC with INTERNAL")
        func compressedWithoutEncoding() {
            var machine = Machine.serving()
            let body = compressedFrame([1, 2, 3], .gzip)
            let error = RPCError(code: .internal, message: "Compressed message received without grpc-encoding.")
            #expect(machine.receiveData(body) == OnInbound(releaseWindow: body.count, failure: .terminate(error)))
            #expect(machine.states == StreamStates(.idle, .open, .failed(error)))
            #expect(machine.nextInbound().read == .failed(error))
        }

        @Test("The decompressed size is held to the message limit: over it is RESOURCE_EXHAUSTED, at it is fine")
        func decompressionLimit() {
            var over = Machine.server(maxRequestMessageBytes: 100)
            _ = over.receiveRequestHead(validRequest([("grpc-encoding", "gzip")]), endStream: false)
            let bomb = compressedFrame([UInt8](repeating: 0, count: 101), .gzip)
            #expect(bomb.count < 100)  // the prefix passes the limit: only the decompressed size is over
            let error = RPCError(
                code: .resourceExhausted,
                message: "A gzip-compressed message decompresses to more than 100 bytes."
            )
            #expect(over.receiveData(bomb) == OnInbound(releaseWindow: bomb.count, failure: .terminate(error)))
            #expect(over.states == StreamStates(.idle, .open, .failed(error)))

            var at = Machine.server(maxRequestMessageBytes: 100)
            _ = at.receiveRequestHead(validRequest([("grpc-encoding", "gzip")]), endStream: false)
            #expect(at.receiveData(compressedFrame([UInt8](repeating: 0, count: 100), .gzip)).failure == nil)
            #expect(at.nextInbound().read == .message([UInt8](repeating: 0, count: 100)))
        }

        @Test("Compressed bytes that don't decompress end the RPC with INTERNAL")
        func corrupt() {
            var machine = Machine.serving([("grpc-encoding", "gzip")])
            let body = framed([1, 2, 3], compressed: true)
            let error = RPCError(code: .internal, message: "A message could not be decompressed with gzip.")
            #expect(machine.receiveData(body) == OnInbound(releaseWindow: body.count, failure: .terminate(error)))
            #expect(machine.termination == .failed(error))
        }

        @Test(
            "A length prefix over the limit ends the RPC with RESOURCE_EXHAUSTED before the message arrives; at the limit is fine"
        )
        func messageTooLarge() {
            var machine = Machine.server(maxRequestMessageBytes: 10)
            _ = machine.receiveRequestHead(validRequest(), endStream: false)
            let error = RPCError(
                code: .resourceExhausted,
                message: "Received a message of 11 bytes, over the limit of 10 bytes."
            )
            #expect(machine.receiveData([0, 0, 0, 0, 11]) == OnInbound(releaseWindow: 5, failure: .terminate(error)))
            #expect(machine.states == StreamStates(.idle, .open, .failed(error)))

            var at = Machine.server(maxRequestMessageBytes: 10)
            _ = at.receiveRequestHead(validRequest(), endStream: false)
            #expect(at.receiveData(framed([UInt8](repeating: 1, count: 10))) == OnInbound(releaseWindow: 0))
        }

        @Test("A flag other than 0 or 1 ends the RPC with INTERNAL", arguments: [2, 0x80, 0xFF] as [UInt8])
        func invalidFlag(flag: UInt8) {
            var machine = Machine.serving()
            let error = RPCError(code: .internal, message: "Invalid message flag \(flag).")
            #expect(
                machine.receiveData([flag, 0, 0, 0, 1, 7]) == OnInbound(releaseWindow: 6, failure: .terminate(error))
            )
            #expect(machine.termination == .failed(error))
        }

        @Test(
            "A failure drops the buffered messages and gives their window back; later DATA is dropped; the adapter's terminate answers Trailers-Only"
        )
        func afterFailure() {
            var machine = Machine.serving()
            #expect(machine.receiveData(framed([1])) == OnInbound(releaseWindow: 0))  // 6 held
            let error = RPCError(code: .internal, message: "Invalid message flag 9.")
            #expect(machine.receiveData([9, 0, 0, 0, 0]) == OnInbound(releaseWindow: 11, failure: .terminate(error)))
            #expect(machine.nextInbound().read == .failed(error))
            // Later DATA: dropped, no second failure.
            #expect(machine.receiveData(framed([2])) == OnInbound(releaseWindow: 6))
            #expect(machine.receiveEndOfStream() == OnInbound())
            // What the adapter does with `.terminate`:
            #expect(
                machine.terminate(status: error.status, trailers: error.metadata) == .trailersOnly(error.status, [:])
            )
            #expect(machine.states == StreamStates(.closed, .closed, .failed(error)))
            #expect(machine.sentEndOfStream() == false)
            #expect(machine.nextInbound().read == .failed(error))
        }

        @Test("A failure while the request is open: RST_STREAM(NO_ERROR) follows the answer")
        func failureThenReset() {
            var machine = Machine.serving()
            let error = RPCError(code: .internal, message: "Invalid message flag 2.")
            #expect(machine.receiveData([2, 0, 0, 0, 0]) == OnInbound(releaseWindow: 5, failure: .terminate(error)))
            #expect(machine.terminate(status: error.status, trailers: [:]) == .trailersOnly(error.status, [:]))
            #expect(machine.sentEndOfStream() == true)
        }
    }

    @Suite("Server: END_STREAM from the client")
    struct ServerEndOfStream {
        @Test("END_STREAM after whole messages: the reader gets them, then the end (again and again)")
        func afterMessages() {
            var machine = Machine.serving()
            _ = machine.receiveData(framed([1]) + framed([2]))
            #expect(machine.receiveEndOfStream() == OnInbound())
            #expect(machine.states == StreamStates(.idle, .closed))
            #expect(machine.readAll() == [.message([1]), .message([2]), .end])
            #expect(machine.nextInbound().read == .end)
        }

        @Test(
            "END_STREAM inside a message ends the RPC with INTERNAL",
            arguments: [(2, 2, 5), (5, 5, 8), (7, 7, 8)]
        )
        func truncated(cut: Int, received: Int, expected: Int) {
            var machine = Machine.serving()
            let body = Array(framed([1, 2, 3]).prefix(cut))
            #expect(machine.receiveData(body) == OnInbound(releaseWindow: cut))  // a message arriving: taken
            let error = RPCError(
                code: .internal,
                message: "The stream ended inside a message (\(received) of \(expected) bytes received)."
            )
            #expect(machine.receiveEndOfStream() == OnInbound(failure: .terminate(error)))
            #expect(machine.states == StreamStates(.idle, .closed, .failed(error)))
            #expect(machine.nextInbound().read == .failed(error))
            // The adapter answers; the request has ended, so no reset follows.
            #expect(machine.terminate(status: error.status, trailers: [:]) == .trailersOnly(error.status, [:]))
            #expect(machine.sentEndOfStream() == false)
        }

        @Test("A second END_STREAM is ignored")
        func twice() {
            var machine = Machine.serving()
            _ = machine.receiveData(Array(framed([1, 2]).prefix(3)))
            #expect(machine.receiveEndOfStream().failure != nil)
            let failed = machine.states
            #expect(machine.receiveEndOfStream() == OnInbound())
            #expect(machine.states == failed)
        }

        @Test("END_STREAM after a head that had END_STREAM is ignored")
        func afterHeadEndStream() {
            var machine = Machine.serving(endStream: true)
            #expect(machine.receiveEndOfStream() == OnInbound())
            #expect(machine.states == StreamStates(.idle, .closed))
        }

        @Test("END_STREAM inside a message once the response has ended is no failure: the outcome is settled")
        func truncatedAfterResponse() {
            var machine = Machine.serving()
            #expect(
                machine.sendMessage(MessageBuffer([1])) == .queued(head: .plain, resumeData: false, mustWait: false)
            )
            #expect(machine.sendStatus(.ok, trailers: [:]) == .queued(resumeData: false))
            #expect(machine.receiveData([0, 0]) == OnInbound(releaseWindow: 2))
            #expect(machine.receiveEndOfStream() == OnInbound())
            #expect(machine.states == StreamStates(.closing, .closed))
        }

        @Test("END_STREAM after the stream closed ends the request and reports nothing")
        func afterClose() {
            var machine = Machine.serving()
            _ = machine.receiveData([0, 0])
            #expect(machine.streamClosed(.cancel) == .cancelHandler)
            #expect(machine.receiveEndOfStream() == OnInbound())
            #expect(machine.states == StreamStates(.idle, .closed, .closed))
        }
    }

    @Suite("Server: the reader")
    struct ServerReader {
        @Test("Open and nothing buffered: wait")
        func wait() {
            var machine = Machine.serving()
            #expect(machine.nextInbound().read == .wait)
            #expect(machine.nextInbound().read == .wait)
        }

        @Test("A message, then wait")
        func message() {
            var machine = Machine.serving()
            _ = machine.receiveData(framed([4, 2]))
            #expect(machine.readAll() == [.message([4, 2]), .wait])
        }

        @Test("The request has ended: end")
        func end() {
            var machine = Machine.serving(endStream: true)
            #expect(machine.readAll() == [.end])
        }

        @Test("The body was unusable: the failure")
        func failed() {
            var machine = Machine.serving()
            _ = machine.receiveData([3, 0, 0, 0, 0])
            #expect(machine.readAll() == [.failed(RPCError(code: .internal, message: "Invalid message flag 3."))])
        }

        @Test("The client reset the stream before ending the request: buffered messages, then CANCELLED")
        func cancelledAfterReset() {
            var machine = Machine.serving()
            _ = machine.receiveData(framed([1]))
            #expect(machine.streamClosed(.cancel) == .cancelHandler)
            #expect(machine.readAll() == [.message([1]), .failed(clientCancelled)])
            #expect(clientCancelled == RPCError(code: .cancelled, message: "The client cancelled the RPC."))
        }

        @Test("The stream closed after the request ended: the end, not a cancellation")
        func endAfterClose() {
            var machine = Machine.serving(endStream: true)
            #expect(machine.streamClosed(.noError) == .cancelHandler)
            #expect(machine.readAll() == [.end])
        }

        @Test("The response has ended but the request hasn't: wait (its DATA is dropped) until the stream closes")
        func afterResponse() {
            var machine = Machine.serving()
            _ = machine.sendStatus(.ok, trailers: [:])
            #expect(machine.nextInbound().read == .wait)
            #expect(machine.streamClosed(.noError) == .ended)
            #expect(machine.nextInbound().read == .failed(clientCancelled))
        }
    }

    @Suite("Server: the response")
    struct ServerResponse {
        @Test("sendHead with no metadata and no compression: the plain head; the send side opens")
        func plainHead() {
            var machine = Machine.serving()
            #expect(machine.sendHead([:]) == .submit(.plain))
            #expect(machine.states == StreamStates(.open, .open))
        }

        @Test("sendHead with metadata: a custom head")
        func customHead() {
            var machine = Machine.serving()
            #expect(
                machine.sendHead(["x-a": "1", "x-b-bin": [1, 2]])
                    == .submit(.custom(compression: nil, metadata: ["x-a": "1", "x-b-bin": [1, 2]]))
            )
            #expect(machine.states == StreamStates(.open, .open))
        }

        @Test("sendHead a second time is ignored")
        func headTwice() {
            var machine = Machine.serving()
            _ = machine.sendHead([:])
            #expect(machine.sendHead(["x-a": "1"]) == .ignore)
            #expect(machine.states == StreamStates(.open, .open))
        }

        @Test(
            "sendHead once the response has ended or the stream is gone fails with 'stream ended'",
            arguments: ServerEnd.allCases
        )
        func headAfterEnd(end: ServerEnd) {
            var machine = end.machine()
            let before = machine.states
            #expect(machine.sendHead([:]) == .failed(streamEnded))
            #expect(machine.states == before)
        }

        @Test("The first message brings the plain head with it; the next one none")
        func firstMessage() {
            var machine = Machine.serving()
            #expect(
                machine.sendMessage(MessageBuffer([1, 2, 3]))
                    == .queued(head: .plain, resumeData: false, mustWait: false)
            )
            #expect(machine.states == StreamStates(.open, .open))
            #expect(machine.queuedBytes == 8)
            #expect(machine.sendMessage(MessageBuffer([4])) == .queued(head: nil, resumeData: false, mustWait: false))
            #expect(machine.queuedBytes == 14)
            #expect(machine.pullAll().bytes == framed([1, 2, 3]) + framed([4]))
        }

        @Test("On a compressed stream, the first message brings a head naming the encoding")
        func firstMessageCompressed() {
            var machine = Machine.serving([("grpc-encoding", "deflate")])
            #expect(
                machine.sendMessage(MessageBuffer([1]))
                    == .queued(head: .custom(compression: .deflate, metadata: [:]), resumeData: false, mustWait: false)
            )
        }

        @Test("A message after the head brings no head")
        func messageAfterHead() {
            var machine = Machine.serving()
            _ = machine.sendHead(["x-a": "1"])
            #expect(machine.sendMessage(MessageBuffer([1])) == .queued(head: nil, resumeData: false, mustWait: false))
        }

        @Test("Messages are compressed with the response's compression unless a message opts out")
        func compression() throws {
            var machine = Machine.serving([("grpc-encoding", "gzip")])
            let payload = [UInt8](repeating: 7, count: 64)
            _ = machine.sendMessage(MessageBuffer(payload))
            var plain = MessageBuffer(payload)
            plain.allowsCompression = false
            _ = machine.sendMessage(plain)
            let messages = deframe(machine.pullAll().bytes)
            try #require(messages.count == 2)
            #expect(messages[0].compressed)
            #expect(Array(try Zlib.decompress(messages[0].bytes, algorithm: .gzip, limit: nil)) == payload)
            #expect(!messages[1].compressed)
            #expect(Array(messages[1].bytes) == payload)
        }

        @Test("The writer must wait once more than the buffer limit is queued; at the limit it needn't")
        func mustWait() {
            var machine = Machine.serving(maxBufferedBytes: 100)
            #expect(
                machine.sendMessage(MessageBuffer([UInt8](repeating: 1, count: 45)))
                    == .queued(head: .plain, resumeData: false, mustWait: false)
            )
            #expect(
                machine.sendMessage(MessageBuffer([UInt8](repeating: 2, count: 45)))
                    == .queued(head: nil, resumeData: false, mustWait: false)
            )
            #expect(machine.queuedBytes == 100)
            #expect(machine.sendMessage(MessageBuffer([3])) == .queued(head: nil, resumeData: false, mustWait: true))
            #expect(machine.queuedBytes == 106)
        }

        @Test("resumeData only after the data provider deferred, and once")
        func resumeData() {
            var machine = Machine.serving()
            _ = machine.sendHead([:])
            #expect(machine.pull(100).pull == DataPull(count: 0, deferred: true, writerMayResume: true))
            #expect(machine.sendMessage(MessageBuffer([1])) == .queued(head: nil, resumeData: true, mustWait: false))
            #expect(machine.sendMessage(MessageBuffer([2])) == .queued(head: nil, resumeData: false, mustWait: false))
            #expect(machine.pull(100).pull == DataPull(count: 12, writerMayResume: true))
            #expect(machine.pull(100).pull.deferred == true)
            #expect(machine.sendStatus(.ok, trailers: [:]) == .queued(resumeData: true))
        }

        @Test(
            "sendMessage once the response has ended or the stream is gone fails with 'stream ended'",
            arguments: ServerEnd.allCases
        )
        func messageAfterEnd(end: ServerEnd) {
            var machine = end.machine()
            let before = machine.states
            let queued = machine.queuedBytes
            #expect(machine.sendMessage(MessageBuffer([1])) == .failed(streamEnded))
            #expect(machine.states == before)
            #expect(machine.queuedBytes == queued)
        }

        @Test("sendStatus with nothing sent: Trailers-Only; the send side is closed")
        func trailersOnly() {
            var machine = Machine.serving()
            let status = Status(code: .notFound, message: "No such thing.")
            #expect(machine.sendStatus(status, trailers: ["x-t": "1"]) == .trailersOnly(status, ["x-t": "1"]))
            #expect(machine.states == StreamStates(.closed, .open))
            #expect(machine.pull(100).pull == DataPull(count: 0, deferred: true, writerMayResume: true))
        }

        @Test("sendStatus(OK) alone after the head: queued behind the messages as the plain OK trailers")
        func okTrailers() {
            var machine = Machine.serving()
            _ = machine.sendMessage(MessageBuffer([1]))
            #expect(machine.sendStatus(.ok, trailers: [:]) == .queued(resumeData: false))
            #expect(machine.states == StreamStates(.closing, .open))
            let pulled = machine.pullAll()
            #expect(pulled.bytes == framed([1]))
            #expect(pulled.end == .trailers(.ok))
        }

        @Test(
            "sendStatus with a message, trailers or an error code: status trailers",
            arguments: [
                (Status.ok, ["x-t": "1"] as Metadata), (Status(code: .ok, message: "fine"), Metadata()),
                (Status(code: .aborted, message: "no"), Metadata()),
                (Status(code: .internal), ["x-t-bin": [1]] as Metadata),
            ]
        )
        func statusTrailers(status: Status, trailers: Metadata) {
            var machine = Machine.serving()
            _ = machine.sendHead([:])
            #expect(machine.sendStatus(status, trailers: trailers) == .queued(resumeData: false))
            #expect(machine.pullAll().end == .trailers(.status(status, trailers)))
            #expect(machine.states == StreamStates(.closing, .open))
        }

        @Test("sendStatus resumes a deferred data provider")
        func statusResumes() {
            var machine = Machine.serving()
            _ = machine.sendHead([:])
            _ = machine.pull(10)
            #expect(machine.sendStatus(.ok, trailers: [:]) == .queued(resumeData: true))
        }

        @Test("sendStatus once the response has ended or the stream is gone is ignored", arguments: ServerEnd.allCases)
        func statusAfterEnd(end: ServerEnd) {
            var machine = end.machine()
            let before = machine.states
            #expect(machine.sendStatus(Status(code: .aborted), trailers: [:]) == .ignore)
            #expect(machine.states == before)
        }

        @Test("terminate with nothing sent: Trailers-Only")
        func terminateIdle() {
            var machine = Machine.serving()
            let status = Status(code: .deadlineExceeded, message: "Too late.")
            #expect(machine.terminate(status: status, trailers: [:]) == .trailersOnly(status, [:]))
            #expect(machine.states == StreamStates(.closed, .open))
        }

        @Test("terminate drops the messages not yet started: the trailers come next")
        func terminateDropsQueued() {
            var machine = Machine.serving()
            _ = machine.sendMessage(MessageBuffer([1]))
            _ = machine.sendMessage(MessageBuffer([2]))
            let status = Status(code: .deadlineExceeded)
            #expect(machine.terminate(status: status, trailers: [:]) == .queued(resumeData: false))
            #expect(machine.queuedBytes == 0)
            #expect(machine.states == StreamStates(.closing, .open))
            #expect(
                machine.pull(100).pull
                    == DataPull(count: 0, end: .trailers(.status(status, [:])), writerMayResume: true)
            )
        }

        @Test(
            "terminate keeps the rest of a message the data provider has started, so that the client can still deframe the body"
        )
        func terminateMidMessage() {
            var machine = Machine.serving(maxBufferedBytes: 1000)
            let big = [UInt8](repeating: 1, count: 20)
            _ = machine.sendMessage(MessageBuffer(big))  // 25 bytes
            _ = machine.sendMessage(MessageBuffer([2, 2]))  // not started: dropped
            let first = machine.pull(10)
            #expect(first.pull == DataPull(count: 10, writerMayResume: true))
            let status = Status(code: .deadlineExceeded, message: "Too late.")
            #expect(machine.terminate(status: status, trailers: [:]) == .queued(resumeData: false))
            #expect(machine.queuedBytes == 15)
            let rest = machine.pullAll(pieceSize: 4)
            #expect(rest.end == .trailers(.status(status, [:])))
            #expect(deframe(first.bytes + rest.bytes).map { Array($0.bytes) } == [big])
        }

        @Test("terminate resumes a deferred data provider")
        func terminateResumes() {
            var machine = Machine.serving()
            _ = machine.sendHead([:])
            _ = machine.pull(10)
            #expect(machine.terminate(status: Status(code: .cancelled), trailers: [:]) == .queued(resumeData: true))
        }

        @Test("terminate once the response has ended or the stream is gone is ignored", arguments: ServerEnd.allCases)
        func terminateAfterEnd(end: ServerEnd) {
            var machine = end.machine()
            let before = machine.states
            let queued = machine.queuedBytes
            #expect(machine.terminate(status: Status(code: .cancelled), trailers: [:]) == .ignore)
            #expect(machine.states == before)
            #expect(machine.queuedBytes == queued)
        }
    }

    @Suite("Server: the response's compression")
    struct ServerResponseCompression {
        @Test("identity: no compression, even on a compressed request")
        func identity() {
            var machine = Machine.serving([("grpc-encoding", "gzip")])
            machine.setResponseCompression(.identity)
            #expect(machine.outboundCompression == nil)
            #expect(machine.requestCompression == .gzip)
            #expect(machine.sendHead([:]) == .submit(.plain))
        }

        @Test("The request's own algorithm")
        func requestAlgorithm() {
            var machine = Machine.serving([("grpc-encoding", "deflate")])
            machine.setResponseCompression(.deflate)
            #expect(machine.outboundCompression == .deflate)
        }

        @Test(
            "An algorithm the client lists in grpc-accept-encoding",
            arguments: ["gzip", "deflate, gzip", "identity,deflate,\tgzip"]
        )
        func accepted(acceptEncoding: String) {
            var machine = Machine.serving([("grpc-accept-encoding", acceptEncoding)])
            machine.setResponseCompression(.gzip)
            #expect(machine.outboundCompression == .gzip)
            #expect(machine.sendHead(["x-a": "1"]) == .submit(.custom(compression: .gzip, metadata: ["x-a": "1"])))
        }

        @Test(
            "An algorithm the request didn't use and the client doesn't accept: none",
            arguments: [
                [], [("grpc-accept-encoding", "deflate")], [("grpc-accept-encoding", "gzipx")],
                [("grpc-encoding", "deflate")],
            ] as [[(String, String)]]
        )
        func notAccepted(fields: [(String, String)]) {
            var machine = Machine.serving(fields)
            machine.setResponseCompression(.gzip)
            #expect(machine.outboundCompression == nil)
            #expect(
                machine.sendMessage(MessageBuffer([1])) == .queued(head: .plain, resumeData: false, mustWait: false)
            )
            #expect(machine.pullAll().bytes == framed([1]))
        }

        @Test("After the head it is ignored")
        func afterHead() {
            var machine = Machine.serving([("grpc-accept-encoding", "gzip")])
            _ = machine.sendHead([:])
            machine.setResponseCompression(.gzip)
            #expect(machine.outboundCompression == nil)
        }

        @Test("A client stream ignores it")
        func client() {
            var machine = Machine.client(compression: .deflate)
            machine.setResponseCompression(.gzip)
            #expect(machine.outboundCompression == .deflate)
        }
    }

    @Suite("Server: the data provider")
    struct ServerDataProvider {
        @Test("Nothing queued: deferred")
        func deferred() {
            var machine = Machine.serving()
            _ = machine.sendHead([:])
            #expect(machine.pull(16).pull == DataPull(count: 0, deferred: true, writerMayResume: true))
            #expect(machine.states == StreamStates(.open, .open))
        }

        @Test(
            "Partial pulls hand out the framed messages in order, piece by piece, then defer",
            arguments: [1, 3, 5, 8, 100]
        )
        func partial(pieceSize: Int) {
            var machine = Machine.serving()
            _ = machine.sendMessage(MessageBuffer([1, 2, 3]))
            _ = machine.sendMessage(MessageBuffer([]))
            _ = machine.sendMessage(MessageBuffer([4, 5]))
            let expected = framed([1, 2, 3]) + framed([]) + framed([4, 5])
            let pulled = machine.pullAll(pieceSize: pieceSize)
            #expect(pulled.bytes == expected)
            #expect(pulled.end == nil)
            // Every pull but the last fills what nghttp2 asked for, across message boundaries.
            let full = Array(repeating: pieceSize, count: expected.count / pieceSize)
            let counts = full + (expected.count % pieceSize == 0 ? [] : [expected.count % pieceSize])
            #expect(pulled.pulls.dropLast().map(\.count) == counts)
            #expect(pulled.pulls.last == DataPull(count: 0, deferred: true, writerMayResume: true))
            #expect(machine.queuedBytes == 0)
        }

        @Test("The trailers come with the pull that empties the queue; after them the provider defers")
        func trailersAtTheEnd() {
            var machine = Machine.serving()
            _ = machine.sendMessage(MessageBuffer([1, 2, 3]))
            _ = machine.sendStatus(Status(code: .unavailable), trailers: [:])
            #expect(machine.pull(4).pull == DataPull(count: 4, writerMayResume: true))
            let last = machine.pull(100)
            #expect(
                last.pull
                    == DataPull(
                        count: 4,
                        end: .trailers(.status(Status(code: .unavailable), [:])),
                        writerMayResume: true
                    )
            )
            #expect(last.bytes == [3, 1, 2, 3])
            #expect(machine.pull(100).pull == DataPull(count: 0, deferred: true, writerMayResume: true))
        }

        @Test("writerMayResume once the queue is at or below the limit again")
        func writerMayResume() {
            var machine = Machine.serving(maxBufferedBytes: 100)
            _ = machine.sendMessage(MessageBuffer([UInt8](repeating: 1, count: 45)))
            _ = machine.sendMessage(MessageBuffer([UInt8](repeating: 2, count: 45)))
            #expect(
                machine.sendMessage(MessageBuffer([UInt8](repeating: 3, count: 45)))
                    == .queued(head: nil, resumeData: false, mustWait: true)
            )
            #expect(machine.pull(40).pull == DataPull(count: 40, writerMayResume: false))  // 110 left
            #expect(machine.pull(10).pull == DataPull(count: 10, writerMayResume: true))  // 100 left
        }
    }

    @Suite("Server: the stream ends")
    struct ServerStreamEnds {
        @Test("HEADERS with END_STREAM went out while the request is open: reset with NO_ERROR")
        func sentWhileRequestOpen() {
            var machine = Machine.serving()
            _ = machine.sendMessage(MessageBuffer([1]))
            _ = machine.sendStatus(.ok, trailers: [:])
            _ = machine.pullAll()
            #expect(machine.sentEndOfStream() == true)
            #expect(machine.states == StreamStates(.closed, .open))
        }

        @Test("HEADERS with END_STREAM went out after the request ended: no reset")
        func sentAfterRequestEnded() {
            var machine = Machine.serving(endStream: true)
            _ = machine.sendStatus(.ok, trailers: [:])
            #expect(machine.sentEndOfStream() == false)
            #expect(machine.states == StreamStates(.closed, .closed))
        }

        @Test("HEADERS with END_STREAM reported after the stream was reset: no reset")
        func sentAfterClose() {
            var machine = Machine.serving()
            _ = machine.sendHead([:])
            _ = machine.sendStatus(.ok, trailers: [:])
            #expect(machine.streamClosed(.cancel) == .ended)
            #expect(machine.sentEndOfStream() == false)
        }

        @Test("The stream closed before the response ended: cancel the handler", arguments: [true, false])
        func closedBeforeFinishing(headSent: Bool) {
            var machine = Machine.serving()
            if headSent { _ = machine.sendHead([:]) }
            #expect(machine.streamClosed(.cancel) == .cancelHandler)
            #expect(machine.states == StreamStates(headSent ? .open : .idle, .open, .closed))
            #expect(machine.sendMessage(MessageBuffer([1])) == .failed(streamEnded))
            #expect(machine.sendStatus(.ok, trailers: [:]) == .ignore)
        }

        @Test("The stream closed after the status was queued or sent: ended", arguments: [true, false])
        func closedAfterFinishing(trailersSent: Bool) {
            var machine = Machine.serving()
            _ = machine.sendHead([:])
            _ = machine.sendStatus(.ok, trailers: [:])
            if trailersSent {
                _ = machine.pullAll()
                _ = machine.sentEndOfStream()
            }
            #expect(machine.streamClosed(.noError) == .ended)
            #expect(machine.states == StreamStates(trailersSent ? .closed : .closing, .open, .closed))
        }

        @Test("The stream closed after a failure: the failure stays what readers get")
        func closedAfterFailure() {
            var machine = Machine.serving()
            let error = RPCError(code: .internal, message: "Invalid message flag 5.")
            #expect(machine.receiveData([5, 0, 0, 0, 0]).failure == .terminate(error))
            _ = machine.terminate(status: error.status, trailers: [:])
            #expect(machine.streamClosed(.noError) == .ended)
            #expect(machine.termination == .failed(error))
            #expect(machine.nextInbound().read == .failed(error))
        }

        @Test("A second close changes nothing", arguments: [true, false])
        func closedTwice(finished: Bool) {
            var machine = Machine.serving()
            if finished { _ = machine.sendStatus(.ok, trailers: [:]) }
            let first = machine.streamClosed(.cancel)
            let states = machine.states
            #expect(machine.streamClosed(.cancel) == first)
            #expect(machine.states == states)
        }
    }

    // MARK: - Client

    @Suite("Client: the request")
    struct ClientRequest {
        @Test("A new client stream: nothing sent or received, no stream")
        func initial() {
            let machine = Machine.client(compression: .gzip)
            #expect(machine.states == StreamStates(.idle, .idle))
            #expect(!machine.hasStream)
            #expect(machine.requestCompression == .gzip)
            #expect(machine.transparentRetries == 0)
            #expect(machine.requestMetadata == [:])
        }

        @Test("Configured with identity: no request compression")
        func identity() {
            var machine = Machine.client(compression: .identity)
            #expect(machine.requestCompression == nil)
            _ = machine.sendRequestHead([:])
            _ = machine.streamOpened()
            _ = machine.sendMessage(MessageBuffer([1, 1]))
            #expect(machine.pullAll().bytes == framed([1, 1]))
        }

        @Test("sendRequestHead: the call needs a stream; the metadata is kept for a retry")
        func head() {
            var machine = Machine.client()
            #expect(machine.sendRequestHead(["x-a": "1"]) == .open)
            #expect(machine.states == StreamStates(.awaitingStream, .idle))
            #expect(machine.requestMetadata == ["x-a": "1"])
            #expect(!machine.hasStream)
        }

        @Test("sendRequestHead twice fails; nothing moves")
        func headTwice() {
            var machine = Machine.opened()
            #expect(
                machine.sendRequestHead(["x-b": "2"])
                    == .failed(RPCError(code: .internal, message: "Request metadata sent twice."))
            )
            #expect(machine.states == StreamStates(.open, .idle))
            #expect(machine.requestMetadata == ["x-request": "1"])
        }

        @Test("sendRequestHead after the call ended fails with its error")
        func headAfterEnd() {
            var cancelled = Machine.client()
            _ = cancelled.cancel()
            #expect(cancelled.sendRequestHead([:]) == .failed(callCancelled))
            #expect(cancelled.states == StreamStates(.idle, .idle, .failed(callCancelled)))

            var failed = Machine.client()
            let error = RPCError(code: .unavailable, message: "No connection.")
            #expect(failed.fail(error) == true)
            #expect(failed.sendRequestHead([:]) == .failed(error))
        }

        @Test("streamOpened: the send side opens; the call has a stream")
        func streamOpened() {
            var machine = Machine.client()
            _ = machine.sendRequestHead([:])
            #expect(machine.streamOpened() == false)
            #expect(machine.states == StreamStates(.open, .idle))
            #expect(machine.hasStream)
        }

        @Test("streamOpened before the head or a second time is ignored")
        func streamOpenedIgnored() {
            var idle = Machine.client()
            #expect(idle.streamOpened() == false)
            #expect(idle.states == StreamStates(.idle, .idle))

            var open = Machine.opened()
            _ = open.finishRequest()
            _ = open.pullAll()
            #expect(open.streamOpened() == false)
            #expect(open.states == StreamStates(.closed, .idle))
        }

        @Test("streamOpened for a call that was cancelled or failed while it waited: reset the stream at once")
        func streamOpenedAfterCancel() {
            var machine = Machine.client()
            _ = machine.sendRequestHead([:])
            #expect(machine.cancel() == false)  // no stream to reset yet
            #expect(machine.streamOpened() == true)
            #expect(machine.states == StreamStates(.open, .idle, .failed(callCancelled)))
            #expect(!machine.hasStream)

            var failed = Machine.client()
            _ = failed.sendRequestHead([:])
            _ = failed.fail(RPCError(code: .deadlineExceeded, message: "Too late."))
            #expect(failed.streamOpened() == true)
        }

        @Test("sendMessage before the request head is out of order")
        func messageBeforeHead() {
            var machine = Machine.client()
            #expect(machine.sendMessage(MessageBuffer([1])) == .failed(outOfOrder))
            #expect(machine.queuedBytes == 0)
            #expect(machine.states == StreamStates(.idle, .idle))
        }

        @Test("sendMessage while the stream is awaited is queued; nothing to resume")
        func messageAwaitingStream() {
            var machine = Machine.client()
            _ = machine.sendRequestHead([:])
            #expect(machine.sendMessage(MessageBuffer([1])) == .queued(head: nil, resumeData: false, mustWait: false))
            #expect(machine.queuedBytes == 6)
            _ = machine.streamOpened()
            #expect(machine.pullAll().bytes == framed([1]))
        }

        @Test("sendMessage resumes a deferred provider, once")
        func messageResumes() {
            var machine = Machine.opened()
            #expect(machine.pull(10).pull == DataPull(count: 0, deferred: true, writerMayResume: true))
            #expect(machine.sendMessage(MessageBuffer([1])) == .queued(head: nil, resumeData: true, mustWait: false))
            #expect(machine.sendMessage(MessageBuffer([2])) == .queued(head: nil, resumeData: false, mustWait: false))
        }

        @Test("sendMessage must wait above the buffer limit")
        func messageMustWait() {
            var machine = Machine.opened(maxBufferedBytes: 10)
            #expect(
                machine.sendMessage(MessageBuffer([1, 2, 3, 4, 5]))
                    == .queued(head: nil, resumeData: false, mustWait: false)
            )
            #expect(machine.sendMessage(MessageBuffer([6])) == .queued(head: nil, resumeData: false, mustWait: true))
            #expect(machine.pull(5).pull == DataPull(count: 5, writerMayResume: false))  // 11 left
            #expect(machine.pull(1).pull == DataPull(count: 1, writerMayResume: true))  // 10 left: at the limit
        }

        @Test("sendMessage after finishRequest is out of order")
        func messageAfterFinish() {
            var machine = Machine.opened()
            _ = machine.finishRequest()
            #expect(machine.sendMessage(MessageBuffer([1])) == .failed(outOfOrder))
            #expect(machine.queuedBytes == 0)
        }

        @Test(
            "sendMessage after the call ended fails with its error: cancelled, failed, or 'RPC ended' after the status"
        )
        func messageAfterEnd() {
            var cancelled = Machine.opened()
            _ = cancelled.cancel()
            #expect(cancelled.sendMessage(MessageBuffer([1])) == .failed(callCancelled))

            var failed = Machine.opened()
            let error = RPCError(code: .unavailable, message: "Lost.")
            _ = failed.fail(error)
            #expect(failed.sendMessage(MessageBuffer([1])) == .failed(error))

            var ended = Machine.opened()
            _ = ended.receiveResponseHead(okResponseHead([("grpc-status", "0")]), endStream: true)
            #expect(ended.streamClosed(.noError) == .ended)
            #expect(ended.sendMessage(MessageBuffer([1])) == .failed(rpcEnded))
            #expect(rpcEnded == RPCError(code: .cancelled, message: "The RPC has ended."))
        }

        @Test(
            "Request messages are compressed with the configured algorithm unless a message opts out",
            arguments: [CompressionAlgorithm.gzip, .deflate]
        )
        func compression(algorithm: CompressionAlgorithm) throws {
            var machine = Machine.opened(compression: algorithm, maxBufferedBytes: 1000)
            let payload = [UInt8](repeating: 3, count: 100)
            _ = machine.sendMessage(MessageBuffer(payload))
            var plain = MessageBuffer(payload)
            plain.allowsCompression = false
            _ = machine.sendMessage(plain)
            let messages = deframe(machine.pullAll().bytes)
            try #require(messages.count == 2)
            #expect(messages[0].compressed)
            #expect(Array(try Zlib.decompress(messages[0].bytes, algorithm: algorithm, limit: nil)) == payload)
            #expect(!messages[1].compressed)
            #expect(Array(messages[1].bytes) == payload)
        }

        @Test("finishRequest with the provider not deferred: nothing to resume; the next pull ends the stream")
        func finish() {
            var machine = Machine.opened()
            _ = machine.sendMessage(MessageBuffer([1]))
            #expect(machine.finishRequest() == false)
            let pulled = machine.pullAll(pieceSize: 4)
            #expect(pulled.bytes == framed([1]))
            #expect(pulled.end == .endStream)
            #expect(pulled.pulls.last == DataPull(count: 2, end: .endStream, writerMayResume: true))
            #expect(machine.states == StreamStates(.closed, .idle))
            #expect(machine.hasStream)  // half-closed: the response is still to come
        }

        @Test("finishRequest after the provider deferred: resume it; it ends the stream with nothing more")
        func finishDeferred() {
            var machine = Machine.opened()
            #expect(machine.pull(10).pull.deferred == true)
            #expect(machine.finishRequest() == true)
            #expect(machine.pull(10).pull == DataPull(count: 0, end: .endStream, writerMayResume: true))
            #expect(machine.states == StreamStates(.closed, .idle))
            // END_STREAM went out once: the provider has nothing more.
            #expect(machine.pull(10).pull == DataPull(count: 0, deferred: true, writerMayResume: true))
        }

        @Test("finishRequest twice: the second is ignored")
        func finishTwice() {
            var machine = Machine.opened()
            _ = machine.pull(10)
            #expect(machine.finishRequest() == true)
            #expect(machine.finishRequest() == false)
        }

        @Test("finishRequest before the stream opened can't resume anything; the stream ends once it opens")
        func finishAwaitingStream() {
            var machine = Machine.client()
            _ = machine.sendRequestHead([:])
            #expect(machine.finishRequest() == false)
            _ = machine.streamOpened()
            #expect(machine.pull(10).pull == DataPull(count: 0, end: .endStream, writerMayResume: true))
        }

        @Test("finishRequest after the call ended is ignored (nothing is sent on a reset stream)")
        func finishAfterEnd() {
            var machine = Machine.opened()
            #expect(machine.pull(10).pull.deferred == true)
            #expect(machine.cancel() == true)
            #expect(machine.finishRequest() == false)
        }

        @Test("Without finishRequest the provider defers when the queue is empty")
        func pullWithoutFinish() {
            var machine = Machine.opened()
            _ = machine.sendMessage(MessageBuffer([1]))
            #expect(machine.pull(100).pull == DataPull(count: 6, writerMayResume: true))
            #expect(machine.pull(100).pull == DataPull(count: 0, deferred: true, writerMayResume: true))
            #expect(machine.states == StreamStates(.open, .idle))
        }
    }

    @Suite("Client: the response head")
    struct ClientResponseHead {
        @Test("A 1xx head is ignored: the real one follows", arguments: [100, 103])
        func informational(status: Int) {
            var machine = Machine.opened()
            #expect(machine.receiveResponseHead(responseHead([(":status", "\(status)")]), endStream: false) == .ignore)
            #expect(machine.states == StreamStates(.open, .idle))
            #expect(machine.nextInbound().read == .wait)
            #expect(machine.receiveResponseHead(okResponseHead([("x-a", "1")]), endStream: false) == .delivered)
            #expect(machine.readAll() == [.metadata(["x-a": "1"]), .wait])
        }

        @Test("A gRPC head: its metadata for the reader; the receive side opens")
        func grpcHead() {
            var machine = Machine.opened()
            let head = okResponseHead([("x-a", "1"), ("x-b-bin", "AQI")])
            #expect(machine.receiveResponseHead(head, endStream: false) == .delivered)
            #expect(machine.states == StreamStates(.open, .open))
            #expect(machine.readAll() == [.metadata(["x-a": "1", "x-b-bin": [1, 2]]), .wait])
        }

        @Test(
            "A non-200 head without grpc-status: the status from the HTTP status",
            arguments: [
                (400, Status.Code.internal), (401, .unauthenticated), (403, .permissionDenied), (404, .unimplemented),
                (429, .unavailable), (431, .internal), (500, .unknown), (502, .unavailable), (503, .unavailable),
                (504, .unavailable), (302, .unknown),
            ]
        )
        func httpStatus(status: Int, code: Status.Code) {
            var machine = Machine.opened()
            let head = responseHead([(":status", "\(status)"), ("content-type", "text/html"), ("x-proxy", "p")])
            #expect(machine.receiveResponseHead(head, endStream: true) == .delivered)
            #expect(machine.states == StreamStates(.open, .closed))
            let expected = Status(code: code, message: "Received HTTP status \(status) without a gRPC status.")
            #expect(machine.readAll() == [.status(expected, ["x-proxy": "p"]), .end])
        }

        @Test("A non-200 head with grpc-status: the HTTP status still decides", arguments: [true, false])
        func httpStatusWithGRPCStatus(grpcContentType: Bool) {
            var machine = Machine.opened()
            let head = responseHead([
                (":status", "503"), ("content-type", grpcContentType ? "application/grpc" : "text/plain"),
                ("grpc-status", "8"),
            ])
            #expect(machine.receiveResponseHead(head, endStream: true) == .delivered)
            let expected = Status(code: .unavailable, message: "Received HTTP status 503 without a gRPC status.")
            #expect(machine.readAll() == [.status(expected, [:]), .end])
        }

        @Test(
            "200 with a content-type that isn't gRPC's (or none), without grpc-status: UNKNOWN",
            arguments: [nil, "text/html", "application/json", "application/grpcx"] as [String?]
        )
        func wrongContentType(contentType: String?) {
            var machine = Machine.opened()
            var fields = [(":status", "200")]
            if let contentType { fields.append(("content-type", contentType)) }
            #expect(machine.receiveResponseHead(responseHead(fields), endStream: false) == .delivered)
            #expect(machine.states == StreamStates(.open, .closed))
            let expected = Status(code: .unknown, message: "Received HTTP status 200 without a gRPC status.")
            #expect(machine.readAll() == [.status(expected, [:]), .end])
        }

        @Test(
            "A response's gRPC content-type is accepted with a format, parameters, in any case",
            arguments: [
                "application/grpc", "application/grpc+proto", "application/grpc;charset=utf-8", "Application/GRPC",
            ]
        )
        func responseContentTypes(contentType: String) {
            var machine = Machine.opened()
            let head = responseHead([(":status", "200"), ("content-type", contentType)])
            #expect(machine.receiveResponseHead(head, endStream: false) == .delivered)
            #expect(machine.states == StreamStates(.open, .open))
        }

        @Test("200 with a content-type that isn't gRPC's but a valid grpc-status: that status")
        func wrongContentTypeWithStatus() {
            var machine = Machine.opened()
            let head = responseHead([
                (":status", "200"), ("content-type", "text/plain"), ("grpc-status", "5"), ("grpc-message", "gone"),
            ])
            #expect(machine.receiveResponseHead(head, endStream: true) == .delivered)
            #expect(machine.readAll() == [.status(Status(code: .notFound, message: "gone"), [:]), .end])
        }

        @Test(
            "Trailers-Only (END_STREAM, or grpc-status in the head): the status alone, no metadata part",
            arguments: [true, false]
        )
        func trailersOnly(endStream: Bool) {
            var machine = Machine.opened()
            let head = okResponseHead([("grpc-status", "5"), ("grpc-message", "not%20found"), ("x-t", "1")])
            #expect(machine.receiveResponseHead(head, endStream: endStream) == .delivered)
            #expect(machine.states == StreamStates(.open, .closed))
            #expect(machine.readAll() == [.status(Status(code: .notFound, message: "not found"), ["x-t": "1"]), .end])
        }

        @Test("A gRPC head with END_STREAM but no grpc-status: UNKNOWN")
        func endStreamWithoutStatus() {
            var machine = Machine.opened()
            #expect(machine.receiveResponseHead(okResponseHead(), endStream: true) == .delivered)
            let expected = Status(code: .unknown, message: "The response ended without a grpc-status.")
            #expect(machine.readAll() == [.status(expected, [:]), .end])
        }

        @Test("Invalid metadata in the head fails the call with INTERNAL and resets the stream")
        func invalidMetadata() {
            var machine = Machine.opened()
            let error = RPCError(code: .internal, message: "Invalid base64 in metadata 'x-bin'.")
            #expect(
                machine.receiveResponseHead(okResponseHead([("x-bin", "@@@")]), endStream: false)
                    == .failed(error, reset: true)
            )
            #expect(machine.states == StreamStates(.open, .idle, .failed(error)))
            #expect(machine.readAll() == [.failed(error)])
            #expect(!machine.hasStream)
        }

        @Test("Invalid metadata in a Trailers-Only response: the status is delivered, the bad value left out")
        func invalidMetadataTrailersOnly() {
            // Unlike in response headers, a bad value doesn't hide the server's status (see the report).
            var machine = Machine.opened()
            let head = okResponseHead([("grpc-status", "7"), ("x-bin", "@@@"), ("x-ok", "1")])
            #expect(machine.receiveResponseHead(head, endStream: true) == .delivered)
            #expect(machine.readAll() == [.status(Status(code: .permissionDenied), ["x-ok": "1"]), .end])
        }

        @Test("An unknown grpc-encoding fails the call with INTERNAL and resets the stream", arguments: ["br", "GZIP"])
        func unknownEncoding(encoding: String) {
            var machine = Machine.opened()
            let error = RPCError(code: .internal, message: "Unsupported response grpc-encoding '\(encoding)'.")
            #expect(
                machine.receiveResponseHead(okResponseHead([("grpc-encoding", encoding)]), endStream: false)
                    == .failed(error, reset: true)
            )
            #expect(machine.states == StreamStates(.open, .idle, .failed(error)))
        }

        @Test(
            "A known grpc-encoding: compressed messages arrive decompressed",
            arguments: [CompressionAlgorithm.gzip, .deflate]
        )
        func knownEncoding(algorithm: CompressionAlgorithm) {
            var machine = Machine.responding([("grpc-encoding", algorithm.name)])
            let payload = Array("abcabcabcabc".utf8)
            let body = compressedFrame(payload, algorithm)
            #expect(machine.receiveData(body) == OnInbound(releaseWindow: 0))
            let next = machine.nextInbound()
            #expect(next.read == .message(payload))
            #expect(next.buffer?.arrivedCompressed == true)
            #expect(next.releaseWindow == body.count)
        }

        @Test("grpc-encoding identity: a compressed message fails the call with INTERNAL")
        func identityEncoding() {
            var machine = Machine.responding([("grpc-encoding", "identity")])
            let body = compressedFrame([1], .gzip)
            let error = RPCError(code: .internal, message: "Compressed message received without grpc-encoding.")
            #expect(
                machine.receiveData(body) == OnInbound(releaseWindow: body.count, failure: .failed(error, reset: true))
            )
        }

        @Test("Any head after the status, or after the call failed, is ignored")
        func afterEnd() {
            var ended = Machine.opened()
            _ = ended.receiveResponseHead(okResponseHead([("grpc-status", "0")]), endStream: true)
            let states = ended.states
            #expect(ended.receiveResponseHead(okResponseHead(), endStream: false) == .ignore)
            #expect(ended.receiveEndWithoutTrailers() == .ignore)
            #expect(ended.states == states)
            #expect(ended.readAll() == [.status(.ok, [:]), .end])

            var failed = Machine.opened()
            let error = RPCError(code: .unavailable, message: "Lost.")
            _ = failed.fail(error)
            #expect(failed.receiveResponseHead(okResponseHead(), endStream: false) == .ignore)
            #expect(failed.states == StreamStates(.open, .idle, .failed(error)))
        }
    }

    @Suite("Client: response DATA and trailers")
    struct ClientResponseBody {
        @Test("Messages are held for the reader; the window opens when it has taken them")
        func messages() {
            var machine = Machine.responding()
            #expect(machine.receiveData(framed([1]) + framed([2, 2])) == OnInbound(releaseWindow: 0))
            let first = machine.nextInbound()
            #expect(first.read == .message([1]))
            #expect(first.releaseWindow == 0)
            let second = machine.nextInbound()
            #expect(second.read == .message([2, 2]))
            #expect(second.releaseWindow == 13)
            #expect(machine.nextInbound().read == .wait)
        }

        @Test("Unread response metadata holds the window too")
        func metadataHolds() {
            var machine = Machine.opened()
            _ = machine.receiveResponseHead(okResponseHead(), endStream: false)
            #expect(machine.receiveData(Array(framed([1]).prefix(3))) == OnInbound(releaseWindow: 0))
            let metadata = machine.nextInbound()
            #expect(metadata.read == .metadata([:]))
            #expect(metadata.releaseWindow == 3)
        }

        @Test("Trailers with grpc-status: after the messages, the status, then the end")
        func trailers() {
            var machine = Machine.responding()
            _ = machine.receiveData(framed([1]))
            let head = CourierHTTP2Tests.trailers([("grpc-status", "0"), ("x-t", "1"), ("x-u-bin", "AQ")])
            #expect(machine.receiveResponseHead(head, endStream: true) == .delivered)
            #expect(machine.states == StreamStates(.open, .closed))
            #expect(machine.readAll() == [.message([1]), .status(.ok, ["x-t": "1", "x-u-bin": [1]]), .end])
        }

        @Test("Trailers with an error status and a percent-encoded message")
        func errorTrailers() {
            var machine = Machine.responding()
            let head = CourierHTTP2Tests.trailers([("grpc-status", "3"), ("grpc-message", "bad%20%E2%98%BA")])
            #expect(machine.receiveResponseHead(head, endStream: true) == .delivered)
            #expect(machine.readAll() == [.status(Status(code: .invalidArgument, message: "bad ☺"), [:]), .end])
        }

        @Test("Trailers without grpc-status: UNKNOWN")
        func trailersWithoutStatus() {
            var machine = Machine.responding()
            #expect(
                machine.receiveResponseHead(CourierHTTP2Tests.trailers([("x-t", "1")]), endStream: true) == .delivered
            )
            let expected = Status(code: .unknown, message: "The response ended without a grpc-status.")
            #expect(machine.readAll() == [.status(expected, ["x-t": "1"]), .end])
        }

        @Test(
            "An invalid grpc-status: UNKNOWN naming it",
            arguments: ["abc", "-1", "", "1.0", "12345678901", " 1", "0x1"]
        )
        func invalidStatus(value: String) {
            var machine = Machine.responding()
            #expect(
                machine.receiveResponseHead(CourierHTTP2Tests.trailers([("grpc-status", value)]), endStream: true)
                    == .delivered
            )
            let expected = Status(code: .unknown, message: "Invalid grpc-status '\(value.prefix(16))'.")
            #expect(machine.readAll() == [.status(expected, [:]), .end])
        }

        @Test(
            "A grpc-status outside 0...16 is UNKNOWN with the server's message",
            arguments: ["17", "99", "4294967296"]
        )
        func outOfRangeStatus(value: String) {
            var machine = Machine.responding()
            let head = CourierHTTP2Tests.trailers([("grpc-status", value), ("grpc-message", "odd")])
            #expect(machine.receiveResponseHead(head, endStream: true) == .delivered)
            #expect(machine.readAll() == [.status(Status(code: .unknown, message: "odd"), [:]), .end])
        }

        @Test("Trailers inside a message: the call fails with INTERNAL and the stream is reset")
        func truncatedAtTrailers() {
            var machine = Machine.responding()
            #expect(machine.receiveData(Array(framed([1, 2, 3]).prefix(6))) == OnInbound(releaseWindow: 6))
            let error = RPCError(code: .internal, message: "The stream ended inside a message (6 of 8 bytes received).")
            #expect(
                machine.receiveResponseHead(CourierHTTP2Tests.trailers([("grpc-status", "0")]), endStream: true)
                    == .failed(error, reset: true)
            )
            #expect(machine.states == StreamStates(.open, .open, .failed(error)))
            #expect(machine.readAll() == [.failed(error)])
        }

        @Test("DATA with END_STREAM and no trailers: UNKNOWN after the messages")
        func endWithoutTrailers() {
            var machine = Machine.responding()
            _ = machine.receiveData(framed([1]))
            #expect(machine.receiveEndWithoutTrailers() == .delivered)
            #expect(machine.states == StreamStates(.open, .closed))
            let expected = Status(code: .unknown, message: "The response ended without a grpc-status.")
            #expect(machine.readAll() == [.message([1]), .status(expected, [:]), .end])
        }

        @Test("DATA with END_STREAM inside a message: the call fails with INTERNAL")
        func endWithoutTrailersTruncated() {
            var machine = Machine.responding()
            _ = machine.receiveData([0, 0, 0])
            let error = RPCError(code: .internal, message: "The stream ended inside a message (3 of 5 bytes received).")
            #expect(machine.receiveEndWithoutTrailers() == .failed(error, reset: true))
            #expect(machine.termination == .failed(error))
        }

        @Test(
            "An unusable body fails the call and resets the stream (open, or half-closed after the request)",
            arguments: [
                ([UInt8]([2, 0, 0, 0, 0]), RPCError(code: .internal, message: "Invalid message flag 2.")),
                (
                    [0, 0, 0, 0x10, 0],
                    RPCError(
                        code: .resourceExhausted,
                        message: "Received a message of 4096 bytes, over the limit of 1024 bytes."
                    )
                ),
                (
                    [1, 0, 0, 0, 1, 0],
                    RPCError(code: .internal, message: "Compressed message received without grpc-encoding.")
                ),
            ]
        )
        func bodyFailure(body: [UInt8], error: RPCError) {
            for halfClosed in [false, true] {
                var machine = Machine.responding()
                _ = machine.receiveData(framed([1]))  // buffered: dropped by the failure, its window given back
                if halfClosed {
                    _ = machine.finishRequest()
                    _ = machine.pullAll()
                }
                #expect(
                    machine.receiveData(body)
                        == OnInbound(releaseWindow: 6 + body.count, failure: .failed(error, reset: true))
                )
                #expect(machine.states == StreamStates(halfClosed ? .closed : .open, .open, .failed(error)))
                #expect(machine.readAll() == [.failed(error)])
                #expect(!machine.hasStream)
                // Later DATA: dropped at once, no second failure.
                #expect(machine.receiveData(framed([3])) == OnInbound(releaseWindow: 6))
            }
        }

        @Test("An unusable body while the call has no stream (a retry waiting for one): nothing to reset")
        func bodyFailureWithoutStream() {
            var machine = Machine.opened()
            #expect(machine.streamClosed(.refusedStream) == .retry)
            let error = RPCError(code: .internal, message: "Invalid message flag 7.")
            #expect(
                machine.receiveData([7, 0, 0, 0, 0])
                    == OnInbound(releaseWindow: 5, failure: .failed(error, reset: false))
            )
            #expect(machine.termination == .failed(error))
        }

        @Test("The decompressed size is held to the response limit")
        func decompressionLimit() {
            var machine = Machine.responding([("grpc-encoding", "deflate")], maxResponseMessageBytes: 50)
            let body = compressedFrame([UInt8](repeating: 1, count: 51), .deflate)
            let error = RPCError(
                code: .resourceExhausted,
                message: "A deflate-compressed message decompresses to more than 50 bytes."
            )
            #expect(
                machine.receiveData(body) == OnInbound(releaseWindow: body.count, failure: .failed(error, reset: true))
            )
        }

        @Test("DATA after the status or after the call ended is dropped, its window given back at once")
        func afterEnd() {
            var ended = Machine.responding()
            _ = ended.receiveResponseHead(CourierHTTP2Tests.trailers([("grpc-status", "0")]), endStream: true)
            #expect(ended.receiveData(framed([1])) == OnInbound(releaseWindow: 6))
            #expect(ended.readAll() == [.status(.ok, [:]), .end])

            var cancelled = Machine.responding()
            _ = cancelled.receiveData(framed([1]))  // 6 held
            #expect(cancelled.cancel() == true)
            #expect(cancelled.receiveData(framed([2])) == OnInbound(releaseWindow: 12))
        }

        @Test("A call that ends with unread messages hands their held window over, once")
        func heldWindowOnEnd() {
            var machine = Machine.responding()
            _ = machine.receiveData(framed([1, 2]))
            #expect(machine.cancel() == true)
            #expect(machine.releaseHeldWindow() == 7)
            #expect(machine.releaseHeldWindow() == 0)
            let next = machine.nextInbound()
            #expect(next.read == .message([1, 2]))
            #expect(next.releaseWindow == 0)
        }
    }

    @Suite("Client: the stream closes")
    struct ClientStreamCloses {
        @Test(
            "Reset before the status (response head read): the call fails with the code's error",
            arguments: resetErrors
        )
        func beforeStatus(code: HTTP2ErrorCode, error: RPCError) {
            var machine = Machine.responding()
            _ = machine.receiveData(framed([1]))
            #expect(machine.streamClosed(code) == .failed(error))
            #expect(machine.states == StreamStates(.open, .open, .failed(error)))
            #expect(machine.readAll() == [.message([1]), .failed(error)])
            #expect(machine.sendMessage(MessageBuffer([1])) == .failed(error))
            #expect(Machine.clientError(forReset: code) == error)
        }

        @Test(
            "Reset before any response with no retry left: the call fails with the code's error",
            arguments: resetErrors
        )
        func beforeHead(code: HTTP2ErrorCode, error: RPCError) {
            var machine = Machine.opened(maxTransparentRetries: 0)
            #expect(machine.streamClosed(code) == .failed(error))
            #expect(machine.states == StreamStates(.open, .idle, .failed(error)))
            #expect(machine.readAll() == [.failed(error)])
        }

        @Test(
            "Closed after the status, whatever the code: ended; the status is still read",
            arguments: resetErrors.map(\.0)
        )
        func afterStatus(code: HTTP2ErrorCode) {
            var machine = Machine.responding()
            _ = machine.receiveResponseHead(CourierHTTP2Tests.trailers([("grpc-status", "0")]), endStream: true)
            #expect(machine.streamClosed(code) == .ended)
            #expect(machine.states == StreamStates(.open, .closed, .closed))
            #expect(machine.readAll() == [.status(.ok, [:]), .end])
            #expect(machine.sendMessage(MessageBuffer([1])) == .failed(rpcEnded))
        }

        @Test("Closed after the call was cancelled: ended; the cancellation stays")
        func afterCancel() {
            var machine = Machine.opened()
            _ = machine.cancel()
            #expect(machine.streamClosed(.cancel) == .ended)
            #expect(machine.streamClosed(.refusedStream) == .ended)  // no retry for a cancelled call
            #expect(machine.states == StreamStates(.open, .idle, .failed(callCancelled)))
        }
    }

    @Suite("Client: transparent retry")
    struct ClientTransparentRetry {
        static let messages: [[UInt8]] = [[1, 2, 3], [UInt8](repeating: 4, count: 20), []]
        static var body: [UInt8] { messages.flatMap { framed($0) } }

        private func queueMessages(_ machine: inout Machine) {
            for message in Self.messages {
                #expect(machine.sendMessage(MessageBuffer(message)).isQueued == true)
            }
        }

        @Test(
            "Refused before anything came back: sent again, every byte replayed whatever was pulled before",
            arguments: [0, 1, 10, 33, 38]
        )
        func replaysEveryByte(pulledBefore: Int) {
            var machine = Machine.opened()
            queueMessages(&machine)
            let before = machine.pull(pulledBefore)
            #expect(before.bytes == Array(Self.body.prefix(pulledBefore)))
            #expect(machine.streamClosed(.refusedStream) == .retry)
            #expect(machine.states == StreamStates(.awaitingStream, .idle))
            #expect(machine.transparentRetries == 1)
            #expect(!machine.hasStream)
            #expect(machine.queuedBytes == Self.body.count)
            #expect(machine.requestMetadata == ["x-request": "1"])
            #expect(machine.streamOpened() == false)
            #expect(machine.states == StreamStates(.open, .idle))
            _ = machine.sendMessage(MessageBuffer([5]))  // written after the retry: follows the replay
            _ = machine.finishRequest()
            let after = machine.pullAll(pieceSize: 7)
            #expect(after.bytes == Self.body + framed([5]))
            #expect(after.end == .endStream)
            #expect(machine.states == StreamStates(.closed, .idle))
        }

        @Test("A complete request (END_STREAM sent) is replayed whole, END_STREAM included")
        func replaysCompleteRequest() {
            var machine = Machine.opened()
            queueMessages(&machine)
            _ = machine.finishRequest()
            let first = machine.pullAll(pieceSize: 5)
            #expect(first.end == .endStream)
            #expect(machine.streamClosed(.refusedStream) == .retry)
            #expect(machine.states == StreamStates(.awaitingStream, .idle))
            _ = machine.streamOpened()
            let second = machine.pullAll(pieceSize: 9)
            #expect(second.bytes == first.bytes)
            #expect(second.bytes == Self.body)
            #expect(second.end == .endStream)
        }

        @Test(
            "A deferred provider on the refused stream doesn't carry over: nothing to resume until the new stream pulls"
        )
        func deferredDoesNotCarryOver() {
            var machine = Machine.opened()
            #expect(machine.pull(10).pull.deferred == true)
            #expect(machine.streamClosed(.refusedStream) == .retry)
            #expect(machine.sendMessage(MessageBuffer([1])) == .queued(head: nil, resumeData: false, mustWait: false))
            _ = machine.streamOpened()
            #expect(machine.sendMessage(MessageBuffer([2])) == .queued(head: nil, resumeData: false, mustWait: false))
            #expect(machine.pullAll().bytes == framed([1]) + framed([2]))
        }

        @Test("Only once: refused again, the call fails with UNAVAILABLE")
        func once() {
            var machine = Machine.opened()
            #expect(machine.streamClosed(.refusedStream) == .retry)
            _ = machine.streamOpened()
            let error = RPCError(code: .unavailable, message: "The server refused the stream.")
            #expect(machine.streamClosed(.refusedStream) == .failed(error))
            #expect(machine.transparentRetries == 1)
            #expect(machine.states == StreamStates(.open, .idle, .failed(error)))
        }

        @Test("Not with a budget of 0")
        func noBudget() {
            var machine = Machine.opened(maxTransparentRetries: 0)
            #expect(
                machine.streamClosed(.refusedStream)
                    == .failed(RPCError(code: .unavailable, message: "The server refused the stream."))
            )
        }

        @Test("As many times as the budget allows", arguments: [2, 3])
        func budget(retries: Int) {
            var machine = Machine.opened(maxTransparentRetries: retries)
            for attempt in 1...retries {
                #expect(machine.streamClosed(.refusedStream) == .retry)
                #expect(machine.transparentRetries == attempt)
                _ = machine.streamOpened()
            }
            #expect(
                machine.streamClosed(.refusedStream)
                    == .failed(RPCError(code: .unavailable, message: "The server refused the stream."))
            )
        }

        @Test("Not after the response head: the server processed the stream")
        func notAfterResponseHead() {
            var machine = Machine.opened()
            _ = machine.receiveResponseHead(okResponseHead(), endStream: false)
            let error = RPCError(code: .unavailable, message: "The server refused the stream.")
            #expect(machine.streamClosed(.refusedStream) == .failed(error))
            #expect(machine.transparentRetries == 0)
        }

        @Test("Not after a response that failed the call (no retry once the head was seen)")
        func notAfterBadHead() {
            var machine = Machine.opened()
            _ = machine.receiveResponseHead(okResponseHead([("grpc-encoding", "br")]), endStream: false)
            #expect(machine.streamClosed(.refusedStream) == .ended)
            #expect(machine.transparentRetries == 0)
        }

        @Test("A 1xx head doesn't count as a response: still retried")
        func afterInformational() {
            var machine = Machine.opened()
            _ = machine.receiveResponseHead(responseHead([(":status", "100")]), endStream: false)
            #expect(machine.streamClosed(.refusedStream) == .retry)
        }

        @Test(
            "Not once more than replayLimit bytes were queued; at the limit it is",
            arguments: [(15, true), (16, false)]
        )
        func replayLimit(messageBytes: Int, retried: Bool) {
            var machine = Machine.opened(replayLimit: 20)
            _ = machine.sendMessage(MessageBuffer([UInt8](repeating: 1, count: messageBytes)))  // + 5 bytes of prefix
            _ = machine.pullAll()
            let expected: Machine.OnStreamClosed =
                retried ? .retry : .failed(RPCError(code: .unavailable, message: "The server refused the stream."))
            #expect(machine.streamClosed(.refusedStream) == expected)
            #expect(machine.transparentRetries == (retried ? 1 : 0))
        }

        @Test(
            "Other codes are never retried",
            arguments: [HTTP2ErrorCode.noError, .cancel, .internalError, .enhanceYourCalm]
        )
        func otherCodes(code: HTTP2ErrorCode) {
            var machine = Machine.opened()
            #expect(machine.streamClosed(code) == .failed(Machine.clientError(forReset: code)))
            #expect(machine.transparentRetries == 0)
        }
    }

    @Suite("Client: fail, cancel, protocol errors")
    struct ClientEnds {
        @Test("fail before the status: readers and writers get the error; a second fail is ignored")
        func failBeforeStatus() {
            var machine = Machine.responding()
            _ = machine.receiveData(framed([1]))
            let error = RPCError(code: .unavailable, message: "The connection was lost.")
            #expect(machine.fail(error) == true)
            #expect(machine.states == StreamStates(.open, .open, .failed(error)))
            #expect(machine.readAll() == [.message([1]), .failed(error)])
            #expect(machine.sendMessage(MessageBuffer([1])) == .failed(error))
            #expect(machine.fail(RPCError(code: .internal, message: "Other.")) == false)
            #expect(machine.termination == .failed(error))
        }

        @Test("fail after the status keeps the status readable; writers get 'RPC ended'")
        func failAfterStatus() {
            var machine = Machine.responding()
            _ = machine.receiveResponseHead(CourierHTTP2Tests.trailers([("grpc-status", "9")]), endStream: true)
            #expect(machine.fail(RPCError(code: .unavailable, message: "Lost.")) == true)
            #expect(machine.states == StreamStates(.open, .closed, .closed))
            #expect(machine.readAll() == [.status(Status(code: .failedPrecondition), [:]), .end])
            #expect(machine.sendMessage(MessageBuffer([1])) == .failed(rpcEnded))
        }

        @Test("cancel with an open stream: reset it; the call fails with CANCELLED")
        func cancelOpen() {
            var machine = Machine.opened()
            #expect(machine.cancel() == true)
            #expect(machine.states == StreamStates(.open, .idle, .failed(callCancelled)))
            #expect(machine.readAll() == [.failed(callCancelled)])
            #expect(!machine.hasStream)
        }

        @Test("cancel with a half-closed stream: reset it")
        func cancelHalfClosed() {
            var machine = Machine.opened()
            _ = machine.finishRequest()
            _ = machine.pullAll()
            #expect(machine.cancel() == true)
            #expect(machine.states == StreamStates(.closed, .idle, .failed(callCancelled)))
        }

        @Test("cancel before the call has a stream: nothing to reset", arguments: [false, true])
        func cancelWithoutStream(headSent: Bool) {
            var machine = Machine.client()
            if headSent { _ = machine.sendRequestHead([:]) }
            #expect(machine.cancel() == false)
            #expect(machine.states == StreamStates(headSent ? .awaitingStream : .idle, .idle, .failed(callCancelled)))
        }

        @Test("cancel twice, or after the stream closed: ignored")
        func cancelIgnored() {
            var twice = Machine.opened()
            _ = twice.cancel()
            #expect(twice.cancel() == false)

            var closed = Machine.opened()
            _ = closed.receiveResponseHead(okResponseHead([("grpc-status", "0")]), endStream: true)
            _ = closed.streamClosed(.noError)
            #expect(closed.cancel() == false)
            #expect(closed.states == StreamStates(.open, .closed, .closed))
            #expect(closed.readAll() == [.status(.ok, [:]), .end])
        }

        @Test("cancel after the status with the stream still open: reset it; the status stays readable")
        func cancelAfterStatus() {
            var machine = Machine.opened()
            _ = machine.receiveResponseHead(okResponseHead([("grpc-status", "0")]), endStream: true)
            #expect(machine.cancel() == true)
            #expect(machine.states == StreamStates(.open, .closed, .closed))
            #expect(machine.readAll() == [.status(.ok, [:]), .end])
        }

        @Test("protocolError: the call fails; reset while it has a stream, once")
        func protocolError() {
            var machine = Machine.responding()
            let error = RPCError(code: .resourceExhausted, message: "The response header list exceeds 8192 bytes.")
            #expect(machine.protocolError(error) == true)
            #expect(machine.states == StreamStates(.open, .open, .failed(error)))
            #expect(machine.protocolError(error) == false)

            var waiting = Machine.client()
            _ = waiting.sendRequestHead([:])
            #expect(waiting.protocolError(error) == false)
            #expect(waiting.termination == .failed(error))
        }

        @Test("The reader in every client state")
        func reader() {
            var machine = Machine.opened()
            #expect(machine.nextInbound().read == .wait)
            _ = machine.receiveResponseHead(okResponseHead([("x-a", "1")]), endStream: false)
            _ = machine.receiveData(framed([1]))
            _ = machine.receiveResponseHead(CourierHTTP2Tests.trailers([("grpc-status", "0")]), endStream: true)
            #expect(machine.readAll() == [.metadata(["x-a": "1"]), .message([1]), .status(.ok, [:]), .end])
            #expect(machine.nextInbound().read == .end)
            _ = machine.streamClosed(.noError)
            #expect(machine.nextInbound().read == .end)
        }
    }
}

/// The server states in which the response can't be written any more.
enum ServerEnd: CaseIterable, Sendable, CustomStringConvertible {
    /// The status is queued behind messages.
    case statusQueued
    /// Trailers-Only went out.
    case trailersOnly
    /// The trailers went out (END_STREAM sent).
    case trailersSent
    /// The client reset the stream.
    case reset
    /// The request body was unusable and the adapter terminated the RPC.
    case failed
    /// The head was rejected (415).
    case rejected

    fileprivate func machine() -> Machine {
        var machine = Machine.serving()
        switch self {
        case .statusQueued:
            _ = machine.sendMessage(MessageBuffer([1]))
            _ = machine.sendStatus(.ok, trailers: [:])
        case .trailersOnly:
            _ = machine.sendStatus(Status(code: .aborted), trailers: [:])
        case .trailersSent:
            _ = machine.sendHead([:])
            _ = machine.sendStatus(.ok, trailers: [:])
            _ = machine.pullAll()
            _ = machine.sentEndOfStream()
        case .reset:
            _ = machine.sendHead([:])
            _ = machine.streamClosed(.cancel)
        case .failed:
            if case .terminate(let error) = machine.receiveData([4, 0, 0, 0, 0]).failure {
                _ = machine.terminate(status: error.status, trailers: [:])
            }
        case .rejected:
            machine = Machine.server()
            _ = machine.receiveRequestHead(requestHead([(":method", "POST"), (":path", "/a/b")]), endStream: false)
        }
        return machine
    }

    var description: String {
        switch self {
        case .statusQueued: "status queued"
        case .trailersOnly: "Trailers-Only sent"
        case .trailersSent: "trailers sent"
        case .reset: "reset by the client"
        case .failed: "request body unusable"
        case .rejected: "head rejected"
        }
    }
}

extension GRPCStreamStateMachine.OnSendMessage {
    var isQueued: Bool {
        if case .queued = self { true } else { false }
    }
}
