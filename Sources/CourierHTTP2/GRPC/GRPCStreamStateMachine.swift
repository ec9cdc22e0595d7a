internal import Courier

/// The protocol state of one gRPC call on one end of an HTTP/2 stream: a value with events in and
/// actions out, configured for the client or the server end. No C, no I/O, no continuations.
///
/// The HTTP/2 streams (``HTTP2ServerStream``, ``HTTP2ClientStream``) are adapters: they turn nghttp2
/// callbacks and the core's calls into events on this machine, and perform the actions it returns
/// (submit headers or trailers through their connection, reset the stream, open N bytes of window, resume
/// or fail a parked reader or writer). Everything a gRPC stream *means* is decided here: what a request
/// or response head must carry, deframing and decompression with their limits, when flow-control window
/// is given back, what a peer's reset or a local cancellation reports, when a refused stream may be sent
/// again, and which status ends the call.
///
/// ```
/// server:  receiveRequestHead → receiveData* → receiveEndOfStream        (inbound, from the client)
///          sendHead? → sendMessage* → sendStatus | terminate               (outbound, from the handler)
///          pullData* (nghttp2's data provider) → .trailers
/// client:  sendRequestHead → streamOpened → sendMessage* → finishRequest    (outbound, from the caller)
///          pullData* → .endStream
///          receiveResponseHead → receiveData* → receiveResponseHead (trailers)
/// both:    nextInbound (the reader), streamClosed (RST_STREAM, connection lost), cancel/fail
/// ```
///
/// Each direction moves forward only: ``SendState`` idle → (awaitingStream →) open → (closing →)
/// closed, ``ReceiveState`` idle → open → closed; ``termination`` says when the stream can carry nothing
/// more. Events that don't apply in the current state are ignored and say so in their result.
struct GRPCStreamStateMachine {
    enum Configuration {
        case client(Client)
        case server(Server)

        struct Client {
            /// How request messages are compressed; `nil` for identity.
            var requestCompression: CompressionAlgorithm?
            /// The largest response message accepted (also the decompression limit); `nil` for none.
            var maxResponseMessageBytes: Int?
            /// Queued request bytes above which a writer must wait.
            var maxBufferedBytes: Int
            /// Request bytes kept for a transparent retry; beyond it the call can't be retried.
            var replayLimit: Int
            /// How many times a refused stream is sent again (gRPC's transparent retry).
            var maxTransparentRetries: Int
        }

        struct Server {
            /// The largest request message accepted (also the decompression limit); `nil` for none.
            var maxRequestMessageBytes: Int?
            /// Queued response bytes above which a writer must wait.
            var maxBufferedBytes: Int
        }
    }

    /// What this end has sent.
    enum SendState: Equatable {
        /// Nothing: no request head (client) or response head (server) yet.
        case idle
        /// Client: the request head is written and waits for an HTTP/2 stream (the connection isn't ready,
        /// or the stream is about to be sent again after the server refused it).
        case awaitingStream
        /// The head is out; messages may follow.
        case open
        /// Server: the status waits behind the queued messages.
        case closing
        /// END_STREAM has been handed to HTTP/2: trailers, Trailers-Only, an immediate rejection, or the
        /// request's last DATA.
        case closed
    }

    /// What this end has received.
    enum ReceiveState: Equatable {
        /// Client: no response head yet. (A server stream starts open: request headers made it.)
        case idle
        /// Messages may arrive.
        case open
        /// The peer has ended its side: END_STREAM (server), the status (client).
        case closed
    }

    /// Why the stream can carry nothing more.
    enum Termination: Equatable {
        /// The HTTP/2 stream is gone: reset by the peer, the connection lost, or (client) closed after
        /// the status arrived.
        case closed
        /// The call failed: readers and writers get this error.
        case failed(RPCError)
    }

    /// The head of a server's response.
    enum ResponseHead: Equatable {
        /// `:status 200`, `content-type`, `grpc-accept-encoding`: no compression, no metadata (a block laid
        /// out once per process).
        case plain
        /// With `grpc-encoding` and/or metadata.
        case custom(compression: CompressionAlgorithm?, metadata: Metadata)
    }

    /// The trailers that end a server's response after its messages.
    enum Trailers: Equatable {
        /// `grpc-status: 0` alone (a block laid out once per process).
        case ok
        case status(Status, Metadata)
    }

    /// An answer the server gives without running a handler.
    enum Rejection: Equatable {
        /// A plain HTTP status (405 for a method other than POST, 415 for a content-type that isn't gRPC).
        case httpStatus(Int)
        /// A Trailers-Only response with this status.
        case trailersOnly(Status)
    }

    let configuration: Configuration
    private(set) var send: SendState = .idle
    private(set) var receive: ReceiveState
    private(set) var termination: Termination?

    private var deframer: GRPCMessageDeframer
    private var inbound = FIFO<RPCResponsePart>()
    private var outbound = OutboundQueue()
    /// Received DATA bytes not yet given back to the peer's flow-control window.
    private var unconsumedBytes = 0
    /// nghttp2's data provider found nothing to send and waits to be resumed.
    private var dataDeferred = false
    private var inboundCompression: CompressionAlgorithm?
    private(set) var outboundCompression: CompressionAlgorithm?

    // Server.
    private var pendingTrailers: Trailers?
    /// The client's `grpc-accept-encoding`, unparsed.
    private var acceptEncoding: String?
    /// The request's `grpc-timeout`.
    private(set) var timeout: Duration?

    // Client.
    /// The request metadata, kept for a transparent retry.
    private(set) var requestMetadata = Metadata()
    private var halfClosed = false
    private var responseStarted = false
    private(set) var transparentRetries = 0

    init(configuration: Configuration) {
        self.configuration = configuration
        switch configuration {
        case .client(let client):
            receive = .idle
            deframer = GRPCMessageDeframer(maxMessageBytes: client.maxResponseMessageBytes)
            outboundCompression = client.requestCompression == .identity ? nil : client.requestCompression
            outbound.startRetaining(limit: client.replayLimit)
        case .server(let server):
            receive = .open
            deframer = GRPCMessageDeframer(maxMessageBytes: server.maxRequestMessageBytes)
        }
    }

    private var isServer: Bool {
        if case .server = configuration { true } else { false }
    }

    private var maxBufferedBytes: Int {
        switch configuration {
        case .client(let client): client.maxBufferedBytes
        case .server(let server): server.maxBufferedBytes
        }
    }

    private var maxInboundMessageBytes: Int? {
        switch configuration {
        case .client(let client): client.maxResponseMessageBytes
        case .server(let server): server.maxRequestMessageBytes
        }
    }

    // MARK: - Errors

    static let streamEnded = RPCError(code: .cancelled, message: "The stream has ended.")
    static let clientCancelled = RPCError(code: .cancelled, message: "The client cancelled the RPC.")
    static let rpcEnded = RPCError(code: .cancelled, message: "The RPC has ended.")
    static let tooLarge = RPCError(code: .resourceExhausted, message: "A gRPC message can't exceed 4 GiB.")

    /// The error a client reports for a stream reset before its status arrived (PROTOCOL-HTTP2's mapping).
    static func clientError(forReset code: HTTP2ErrorCode) -> RPCError {
        switch code {
        case .refusedStream: RPCError(code: .unavailable, message: "The server refused the stream.")
        case .cancel: RPCError(code: .cancelled, message: "The server cancelled the RPC.")
        case .enhanceYourCalm:
            RPCError(code: .resourceExhausted, message: "The server reset the stream: ENHANCE_YOUR_CALM.")
        case .inadequateSecurity:
            RPCError(code: .permissionDenied, message: "The server reset the stream: INADEQUATE_SECURITY.")
        default:
            RPCError(code: .internal, message: "The stream was reset (HTTP/2 \(code)) before a status.")
        }
    }

    // MARK: - Inbound

    /// The result of received DATA or END_STREAM.
    struct OnInbound: Equatable {
        /// Bytes to give back to the peer's window now (`nghttp2_session_consume`).
        var releaseWindow = 0
        /// The body is unusable (bad prefix, bad compression, over a limit, cut short).
        var failure: Failure?

        enum Failure: Equatable {
            /// Server: end the RPC with this status now (``terminate(status:trailers:)``); the reader
            /// gets the same error.
            case terminate(RPCError)
            /// Client: the call has failed with this error (readers and writers get it); reset the stream
            /// when `reset` says so.
            case failed(RPCError, reset: Bool)
        }
    }

    /// Whether received data is dropped (and its window given back at once): the RPC's outcome is settled.
    private var discardsInbound: Bool {
        if termination != nil || receive == .closed { return true }
        // A server that has finished its response reads no more of the request.
        return isServer && (send == .closing || send == .closed)
    }

    /// The bytes of the messages received so far, as they arrived (compressed or not), without prefixes.
    private(set) var receivedMessageBytes = 0
    /// The bytes of the messages queued for sending so far, as framed (compressed or not), without prefixes.
    private(set) var sentMessageBytes = 0

    /// DATA bytes arrived (any part of any number of messages).
    mutating func receiveData(_ bytes: UnsafeRawBufferPointer) -> OnInbound {
        unconsumedBytes += bytes.count
        guard !discardsInbound else { return OnInbound(releaseWindow: takeUnconsumed()) }
        let limit = maxInboundMessageBytes
        let compression = inboundCompression
        do {
            try deframer.process(bytes) { message in
                receivedMessageBytes += message.bytes.count
                guard message.compressed, let compression else {
                    inbound.append(.message(message.bytes))
                    return
                }
                do throws(Zlib.Failure) {
                    var decompressed = try Zlib.decompress(message.bytes, algorithm: compression, limit: limit)
                    decompressed.arrivedCompressed = true
                    inbound.append(.message(decompressed))
                } catch {
                    throw Zlib.rpcError(error, algorithm: compression)
                }
            }
        } catch let failure as GRPCMessageDeframer.Failure {
            return inboundFailed(failure.rpcError)
        } catch let error as RPCError {
            return inboundFailed(error)
        } catch {
            return inboundFailed(RPCError(code: .internal, message: "Invalid message body."))
        }
        // The window opens again only once the reader has taken what is buffered: a slow reader holds at
        // most one window of unread messages. Bytes of a message still arriving count as taken.
        return OnInbound(releaseWindow: inbound.isEmpty ? takeUnconsumed() : 0)
    }

    /// Server: the request ended (END_STREAM on DATA or trailers).
    mutating func receiveEndOfStream() -> OnInbound {
        precondition(isServer, "a client's response ends with its trailers")
        guard receive != .closed else { return OnInbound() }
        receive = .closed
        guard termination == nil, send != .closing, send != .closed else { return OnInbound() }
        do {
            try deframer.finish()
        } catch {
            return inboundFailed(error.rpcError)
        }
        return OnInbound()
    }

    private mutating func inboundFailed(_ error: RPCError) -> OnInbound {
        inbound.removeAll()
        let release = takeUnconsumed()
        if isServer {
            guard termination == nil else { return OnInbound(releaseWindow: release) }
            termination = .failed(error)
            return OnInbound(releaseWindow: release, failure: .terminate(error))
        }
        let reset = hasStream
        guard fail(error) else { return OnInbound(releaseWindow: release) }
        return OnInbound(releaseWindow: release, failure: .failed(error, reset: reset))
    }

    /// Bytes held back from the peer's window for messages no reader has taken, handed over to be given
    /// back now. Call it when the stream is gone or the call has ended: no reader may ever take those
    /// messages, and nghttp2 doesn't return a closed stream's unconsumed bytes to the *connection* window
    /// by itself (`nghttp2_session_consume` still credits the connection after the stream is gone). Without
    /// it, each stream reset or cancelled with unread messages shrank the connection window for good.
    mutating func releaseHeldWindow() -> Int {
        takeUnconsumed()
    }

    private mutating func takeUnconsumed() -> Int {
        defer { unconsumedBytes = 0 }
        return unconsumedBytes
    }

    /// What the reader gets next.
    struct NextInbound {
        var result: Result
        /// Bytes to give back to the peer's window now.
        var releaseWindow = 0

        enum Result {
            case part(RPCResponsePart)
            /// Server: the client half-closed. Client: the status has been read.
            case end
            case failed(RPCError)
            /// Nothing yet: park the reader until the next inbound event.
            case wait
        }
    }

    /// Takes the next part for the reader.
    mutating func nextInbound() -> NextInbound {
        if let part = inbound.popFirst() {
            return NextInbound(result: .part(part), releaseWindow: inbound.isEmpty ? takeUnconsumed() : 0)
        }
        if case .failed(let error) = termination { return NextInbound(result: .failed(error)) }
        if receive == .closed { return NextInbound(result: .end) }
        if termination == .closed {
            return NextInbound(result: isServer ? .failed(Self.clientCancelled) : .end)
        }
        return NextInbound(result: .wait)
    }

    // MARK: - Server: the request head

    /// What the server does with a complete request head.
    enum OnRequestHead: Equatable {
        /// Run the handler.
        case serve
        /// Answer at once without a handler; the stream's send side is closed.
        case reject(Rejection)
    }

    /// The request's HEADERS are complete.
    mutating func receiveRequestHead(_ head: GRPCRequestHead, endStream: Bool) -> OnRequestHead {
        precondition(isServer && send == .idle, "a request head arrives once, on a server stream")
        if endStream { receive = .closed }
        acceptEncoding = head.acceptEncoding
        guard head.methodIsPOST else { return reject(.httpStatus(405)) }
        guard head.hasGRPCContentType else { return reject(.httpStatus(415)) }
        guard !head.path.isEmpty else {
            return reject(.trailersOnly(Status(code: .unimplemented, message: "Missing :path.")))
        }
        if let value = head.timeoutValue {
            guard let parsed = GRPCTimeout.parse(value) else {
                return reject(
                    .trailersOnly(Status(code: .internal, message: "Malformed grpc-timeout '\(value.prefix(16))'."))
                )
            }
            timeout = parsed
        }
        if let encoding = head.encoding, encoding != "identity" {
            guard let algorithm = CompressionAlgorithm(name: encoding) else {
                return reject(
                    .trailersOnly(
                        Status(code: .unimplemented, message: "Unsupported grpc-encoding '\(encoding.prefix(32))'.")
                    )
                )
            }
            inboundCompression = algorithm
            outboundCompression = algorithm  // answer in the request's encoding unless the handler chooses
            deframer.compressionAllowed = true
        }
        if let invalid = head.invalidMetadata { return reject(.trailersOnly(invalid.status)) }
        return .serve
    }

    private mutating func reject(_ rejection: Rejection) -> OnRequestHead {
        send = .closed
        return .reject(rejection)
    }

    /// The request's compression (`grpc-encoding`), if any.
    var requestCompression: CompressionAlgorithm? {
        isServer ? inboundCompression : outboundCompression
    }

    /// Server: the handler chose the response's compression (before the response head): identity for
    /// none; another algorithm only if the request used it or the client accepts it, else none.
    mutating func setResponseCompression(_ algorithm: CompressionAlgorithm) {
        guard isServer, send == .idle else { return }
        if algorithm == .identity {
            outboundCompression = nil
        } else if algorithm == inboundCompression || accepts(algorithm) {
            outboundCompression = algorithm
        } else {
            outboundCompression = nil
        }
    }

    private func accepts(_ algorithm: CompressionAlgorithm) -> Bool {
        guard let acceptEncoding else { return false }
        return acceptEncoding.split(separator: ",").contains {
            $0.filter { $0 != " " && $0 != "\t" } == algorithm.name
        }
    }

    // MARK: - Server: the response

    /// The error a writer gets, if it can't write.
    private var writeError: RPCError? {
        switch termination {
        case .failed(let error): return isServer ? Self.streamEnded : error
        case .closed: return isServer ? Self.streamEnded : Self.rpcEnded
        case nil: break
        }
        if isServer, send == .closing || send == .closed { return Self.streamEnded }
        return nil
    }

    /// The result of writing response metadata.
    enum OnSendHead: Equatable {
        /// Submit this head (with a data provider: messages and trailers follow).
        case submit(ResponseHead)
        /// The head is out already: nothing to do.
        case ignore
        case failed(RPCError)
    }

    /// Server: the handler wrote its response metadata.
    mutating func sendHead(_ metadata: Metadata) -> OnSendHead {
        precondition(isServer, "a client's head is sendRequestHead")
        if let error = writeError { return .failed(error) }
        guard send == .idle else { return .ignore }
        send = .open
        return .submit(responseHead(metadata))
    }

    private func responseHead(_ metadata: Metadata) -> ResponseHead {
        outboundCompression == nil && metadata.isEmpty
            ? .plain : .custom(compression: outboundCompression, metadata: metadata)
    }

    /// The result of writing a message.
    enum OnSendMessage: Equatable {
        /// Queued. Server: submit `head` first when it is set (the first message brings the response
        /// head). Resume the data provider when `resumeData` says so; the writer waits while `mustWait`.
        case queued(head: ResponseHead?, resumeData: Bool, mustWait: Bool)
        case failed(RPCError)
    }

    /// A message to send (request or response).
    mutating func sendMessage(_ buffer: MessageBuffer) -> OnSendMessage {
        if let error = writeError { return .failed(error) }
        guard buffer.count <= Int(UInt32.max) else { return .failed(Self.tooLarge) }
        var head: ResponseHead?
        if isServer {
            if send == .idle {
                send = .open
                head = responseHead([:])
            }
        } else {
            guard !halfClosed, send != .idle else {
                return .failed(RPCError(code: .internal, message: "A request message written out of order."))
            }
        }
        let framed = GRPCMessageFramer.frame(buffer, compression: buffer.allowsCompression ? outboundCompression : nil)
        sentMessageBytes += framed.body.count
        outbound.append(framed)
        return .queued(head: head, resumeData: takeDeferredIfSending(), mustWait: outbound.byteCount > maxBufferedBytes)
    }

    /// The result of sending the status.
    enum OnSendStatus: Equatable {
        /// Nothing was sent: submit one HEADERS frame with `:status 200`, the status and its trailers,
        /// ending the stream.
        case trailersOnly(Status, Metadata)
        /// Queued behind the messages; the data provider submits the trailers. Resume it when `resumeData`.
        case queued(resumeData: Bool)
        /// The response has ended already, or the stream is gone: nothing to do.
        case ignore
    }

    /// Server: the handler's status (the last part of the response).
    mutating func sendStatus(_ status: Status, trailers: Metadata) -> OnSendStatus {
        precondition(isServer, "a client doesn't send a status")
        guard send != .closing, send != .closed, termination != .closed else { return .ignore }
        if send == .idle {
            send = .closed
            return .trailersOnly(status, trailers)
        }
        send = .closing
        pendingTrailers =
            status.code == .ok && status.message.isEmpty && trailers.isEmpty
            ? .ok : .status(status, trailers)
        return .queued(resumeData: takeDeferredIfSending())
    }

    /// Server: ends the RPC now with `status` (its deadline passed, the request body was unusable),
    /// dropping messages not yet sent. A parked writer must be failed (``streamEnded``) when the result
    /// isn't ``OnSendStatus/ignore``.
    mutating func terminate(status: Status, trailers: Metadata) -> OnSendStatus {
        precondition(isServer, "a client cancels")
        guard send != .closing, send != .closed, termination != .closed else { return .ignore }
        // Keeps the rest of a message the data provider has started: cutting it short would leave the
        // client inside a message when the trailers come, and it would report INTERNAL ("ended inside a
        // message") instead of this status. (Was `removeAll()`.)
        outbound.removeAllButStarted()
        return sendStatus(status, trailers: trailers)
    }

    /// Server: HEADERS with END_STREAM went out (trailers, Trailers-Only, a rejection). True when the
    /// request hasn't ended: PROTOCOL-HTTP2 asks for RST_STREAM(NO_ERROR) so that the client stops sending.
    mutating func sentEndOfStream() -> Bool {
        send = .closed
        return receive != .closed && termination != .closed
    }

    // MARK: - Client: the request

    /// Client: the request metadata, which opens the stream.
    enum OnSendRequestHead: Equatable {
        /// Find a connection and open an HTTP/2 stream for this call (``streamOpened()`` once it has one).
        case open
        case failed(RPCError)
    }

    /// Client: the caller wrote the request metadata.
    mutating func sendRequestHead(_ metadata: Metadata) -> OnSendRequestHead {
        precondition(!isServer, "a server's head is sendHead")
        if let error = writeError { return .failed(error) }
        guard send == .idle else { return .failed(RPCError(code: .internal, message: "Request metadata sent twice.")) }
        requestMetadata = metadata
        send = .awaitingStream
        return .open
    }

    /// Client: an HTTP/2 stream was opened for the call (its head submitted, with a data provider).
    /// True when the call ended (was cancelled, failed) while it waited for the stream: the stream was
    /// opened for nothing and must be reset at once (RST_STREAM CANCEL). Before, the event was silently
    /// applied and a call cancelled while its connection was being made still sent its HEADERS, and its
    /// stream stayed open (no END_STREAM, no reset) until the server ended it.
    @discardableResult
    mutating func streamOpened() -> Bool {
        guard send == .awaitingStream else { return false }
        send = .open
        dataDeferred = false
        return termination != nil
    }

    /// Whether the call has an HTTP/2 stream (which a reset must name).
    var hasStream: Bool {
        !isServer && (send == .open || send == .closed) && termination == nil
    }

    /// Client: the caller half-closed. True when the data provider must be resumed (to send END_STREAM).
    mutating func finishRequest() -> Bool {
        // After the call ended nothing more is sent: ignored (it used to ask for the data provider of a
        // reset stream to be resumed).
        guard !halfClosed, termination == nil else { return false }
        halfClosed = true
        return takeDeferredIfSending()
    }

    private mutating func takeDeferredIfSending() -> Bool {
        guard dataDeferred else { return false }
        if !isServer && send != .open { return false }
        dataDeferred = false
        return true
    }

    // MARK: - The data provider (both ends)

    /// What nghttp2's data provider hands out.
    struct DataPull: Equatable {
        /// Bytes copied into nghttp2's buffer.
        var count: Int
        /// The body ends with this pull.
        var end: End?
        /// Nothing to send now: return NGHTTP2_ERR_DEFERRED (resume when ``OnSendMessage`` says so).
        var deferred = false
        /// The queue is below the limit again: a parked writer may go on.
        var writerMayResume: Bool

        enum End: Equatable {
            /// Client: EOF with END_STREAM (the request is complete).
            case endStream
            /// Server: EOF without END_STREAM, then these trailers (which end the stream).
            case trailers(Trailers)
        }
    }

    /// nghttp2 asks for up to `length` bytes of DATA.
    mutating func pullData(into buffer: UnsafeMutablePointer<UInt8>, length: Int) -> DataPull {
        let copied = outbound.read(into: buffer, length: length)
        let mayResume = outbound.byteCount <= maxBufferedBytes
        if outbound.isEmpty {
            if isServer, let trailers = pendingTrailers {
                pendingTrailers = nil
                return DataPull(count: copied, end: .trailers(trailers), writerMayResume: mayResume)
            }
            if !isServer, halfClosed, send == .open {
                send = .closed
                return DataPull(count: copied, end: .endStream, writerMayResume: mayResume)
            }
        }
        if copied == 0 {
            dataDeferred = true
            return DataPull(count: 0, deferred: true, writerMayResume: mayResume)
        }
        return DataPull(count: copied, writerMayResume: mayResume)
    }

    // MARK: - Client: the response

    /// The result of a response HEADERS block.
    enum OnResponseHead: Equatable {
        /// Nothing for the reader (a 1xx head, or the call has ended).
        case ignore
        /// Metadata or a status is ready for the reader.
        case delivered
        /// A protocol violation: the call has failed with this error; reset the stream when `reset`.
        case failed(RPCError, reset: Bool)
    }

    /// Client: a HEADERS block is complete: the response head, its trailers, or a Trailers-Only response.
    mutating func receiveResponseHead(_ head: GRPCResponseHead, endStream: Bool) -> OnResponseHead {
        precondition(!isServer, "a server receives a request head")
        guard termination == nil, receive != .closed else { return .ignore }
        guard receive == .idle else { return deliverTrailers(head) }
        if let status = head.status, (100..<200).contains(status) { return .ignore }  // the real head follows
        responseStarted = true
        outbound.stopRetaining()  // the server is processing the stream: it can't be sent again now
        guard head.status == 200, head.hasGRPCContentType else {
            // Not a gRPC response: the status comes from the HTTP status, unless grpc-status is present.
            if head.status == 200, let value = head.grpcStatus, let code = GRPCHeaders.parseStatusCode(value) {
                return deliverStatus(
                    Status(code: code, message: GRPCStatusMessage.decode(head.grpcMessage ?? "")),
                    head.metadata
                )
            }
            return deliverStatus(GRPCHeaders.status(forHTTPStatus: head.status ?? 0), head.metadata)
        }
        if endStream || head.grpcStatus != nil { return deliverTrailers(head) }
        if let invalid = head.invalidMetadata { return protocolFailure(invalid) }
        if let encoding = head.grpcEncoding, encoding != "identity" {
            guard let algorithm = CompressionAlgorithm(name: encoding) else {
                return protocolFailure(
                    RPCError(code: .internal, message: "Unsupported response grpc-encoding '\(encoding.prefix(32))'.")
                )
            }
            inboundCompression = algorithm
            deframer.compressionAllowed = true
        }
        receive = .open
        inbound.append(.metadata(head.metadata))
        return .delivered
    }

    /// Client: DATA with END_STREAM and no trailers: the response ended without a status.
    mutating func receiveEndWithoutTrailers() -> OnResponseHead {
        receiveResponseHead(GRPCResponseHead(), endStream: true)
    }

    private mutating func deliverTrailers(_ head: GRPCResponseHead) -> OnResponseHead {
        do {
            try deframer.finish()
        } catch {
            return protocolFailure(error.rpcError)
        }
        return deliverStatus(head.trailerStatus, head.metadata)
    }

    private mutating func deliverStatus(_ status: Status, _ trailers: Metadata) -> OnResponseHead {
        receive = .closed
        inbound.append(.status(status, trailers))
        return .delivered
    }

    private mutating func protocolFailure(_ error: RPCError) -> OnResponseHead {
        let reset = hasStream
        guard fail(error) else { return .ignore }
        return .failed(error, reset: reset)
    }

    /// Client: the call fails with `error` (a protocol violation found by the adapter, such as a header
    /// list over the limit). True when the stream must be reset.
    mutating func protocolError(_ error: RPCError) -> Bool {
        if case .failed(_, let reset) = protocolFailure(error) { return reset }
        return false
    }

    /// Client: the call fails with `error` (the connection was lost or couldn't be made, or the call was
    /// cancelled). A status already received is still read first. False if the call had ended already.
    @discardableResult
    mutating func fail(_ error: RPCError) -> Bool {
        guard termination == nil else { return false }
        termination = receive == .closed ? .closed : .failed(error)
        return true
    }

    /// Client: the caller cancelled. True when the stream must be reset (RST_STREAM CANCEL).
    mutating func cancel() -> Bool {
        let reset = hasStream
        guard fail(RPCError(code: .cancelled, message: "The RPC was cancelled.")) else { return false }
        return reset
    }

    // MARK: - The stream closes (both ends)

    /// What a closed HTTP/2 stream means.
    enum OnStreamClosed: Equatable {
        /// Server: the client went away before the response ended: cancel the handler; parked readers and
        /// writers get ``clientCancelled``.
        case cancelHandler
        /// The stream ended normally (server: the response had ended; client: the status had arrived).
        /// Parked writers get the write error.
        case ended
        /// Client: the call failed with this error.
        case failed(RPCError)
        /// Client: the server refused the stream without processing it: open a new stream for the call
        /// (on a usable connection); what was sent will be sent again.
        case retry
    }

    /// The HTTP/2 stream closed with `code` (RST_STREAM from the peer, or nghttp2 closing it), or the
    /// connection was lost (`.cancel`).
    mutating func streamClosed(_ code: HTTP2ErrorCode) -> OnStreamClosed {
        if isServer {
            let finished = send == .closing || send == .closed
            if termination == nil { termination = .closed }
            return finished ? .ended : .cancelHandler
        }
        if code == .refusedStream, canRetryTransparently {
            transparentRetries += 1
            send = .awaitingStream
            dataDeferred = false
            unconsumedBytes = 0
            outbound.rewind()
            return .retry
        }
        guard receive == .closed else {
            let error = Self.clientError(forReset: code)
            return fail(error) ? .failed(error) : .ended
        }
        if termination == nil { termination = .closed }
        return .ended
    }

    /// Whether a refused stream can be sent again: nothing came back, every byte sent is still held, and
    /// the retry budget isn't spent.
    private var canRetryTransparently: Bool {
        guard case .client(let client) = configuration else { return false }
        return transparentRetries < client.maxTransparentRetries && !responseStarted && outbound.retaining
            && termination == nil && receive == .idle && send != .idle
    }

    /// Bytes queued and not yet handed to HTTP/2.
    var queuedBytes: Int { outbound.byteCount }

    /// Whether the queue is over the limit: a writer must wait for it to drain.
    var outboundIsFull: Bool { outbound.byteCount > maxBufferedBytes }
}

extension Error {
    /// A deframer failure's status error (`finish()` throws only ``GRPCMessageDeframer/Failure``).
    fileprivate var rpcError: RPCError {
        (self as? GRPCMessageDeframer.Failure)?.rpcError
            ?? RPCError(code: .internal, message: "Invalid message body.")
    }
}
