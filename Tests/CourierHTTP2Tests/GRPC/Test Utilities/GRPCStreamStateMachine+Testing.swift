import Courier
import Testing

@testable import CourierHTTP2

// Helpers for driving a `GRPCStreamStateMachine` as a value: heads from string pairs, messages as bytes,
// the data provider drained into a buffer, and reader results as an Equatable value.

/// A request head as the server's adapter builds it, field by field.
func requestHead(
    _ fields: [(String, String)],
    paths: PathInterner = PathInterner(),
    maxListBytes: Int = 8192
) -> GRPCRequestHead {
    var head = GRPCRequestHead(maxListBytes: maxListBytes)
    for (name, value) in fields {
        var name = name
        var value = value
        let added = name.withUTF8 { name in
            value.withUTF8 { value in
                head.add(
                    name: HeaderBytes(base: name.baseAddress, count: name.count),
                    value: HeaderBytes(base: value.baseAddress, count: value.count),
                    paths: paths
                )
            }
        }
        precondition(added, "header list over the limit")
    }
    return head
}

/// The fields of a valid request, then `extra`.
func validRequest(_ extra: [(String, String)] = []) -> GRPCRequestHead {
    requestHead(validRequestFields + extra)
}

let validRequestFields: [(String, String)] = [
    (":method", "POST"), (":scheme", "http"), (":path", "/echo.Echo/Get"), (":authority", "localhost"),
    ("content-type", "application/grpc"), ("te", "trailers"),
]

/// A response HEADERS block as the client's adapter builds it, field by field.
func responseHead(_ fields: [(String, String)]) -> GRPCResponseHead {
    var head = GRPCResponseHead()
    for (name, value) in fields {
        let added = head.add(name: name, value: value)
        precondition(added, "header list over the limit")
    }
    return head
}

/// `:status 200` and gRPC's content-type, then `extra`.
func okResponseHead(_ extra: [(String, String)] = []) -> GRPCResponseHead {
    responseHead([(":status", "200"), ("content-type", "application/grpc")] + extra)
}

/// Trailers (no pseudo-headers).
func trailers(_ fields: [(String, String)]) -> GRPCResponseHead {
    responseHead(fields)
}

/// A message framed as it travels in DATA: flag, big-endian length, bytes.
func framed(_ bytes: [UInt8], compressed: Bool = false) -> [UInt8] {
    GRPCMessageFramer.frame(MessageBuffer(bytes), compressed: compressed).bytes
}

/// A message compressed with `algorithm` and framed with the compressed flag.
func compressedFrame(_ bytes: [UInt8], _ algorithm: CompressionAlgorithm) -> [UInt8] {
    GRPCMessageFramer.frame(MessageBuffer(bytes), compression: algorithm).bytes
}

/// Splits a body into gRPC messages (and whether each had the compressed flag); fails the test on a bad body.
func deframe(_ body: [UInt8]) -> [GRPCMessageDeframer.Message] {
    var deframer = GRPCMessageDeframer(maxMessageBytes: nil, compressionAllowed: true)
    var messages: [GRPCMessageDeframer.Message] = []
    do {
        try deframer.process(body) { messages.append($0) }
        try deframer.finish()
    } catch {
        Issue.record("the body doesn't deframe: \(error)")
    }
    return messages
}

/// What a reader gets, as a value.
enum Read: Equatable, CustomStringConvertible {
    case metadata(Metadata)
    case message([UInt8])
    case status(Status, Metadata)
    case end
    case failed(RPCError)
    case wait

    var description: String {
        switch self {
        case .metadata(let metadata): "metadata(\(metadata))"
        case .message(let bytes): "message(\(bytes))"
        case .status(let status, let metadata): "status(\(status), \(metadata))"
        case .end: "end"
        case .failed(let error): "failed(\(error))"
        case .wait: "wait"
        }
    }
}

extension GRPCStreamStateMachine.NextInbound {
    var read: Read {
        switch result {
        case .part(.metadata(let metadata)): .metadata(metadata)
        case .part(.message(let buffer)): .message(Array(buffer))
        case .part(.status(let status, let metadata)): .status(status, metadata)
        case .end: .end
        case .failed(let error): .failed(error)
        case .wait: .wait
        }
    }

    /// The message's buffer, when the result is a message.
    var buffer: MessageBuffer? {
        if case .part(.message(let buffer)) = result { buffer } else { nil }
    }
}

extension GRPCStreamStateMachine {
    /// A server stream with small limits: 1 KiB messages, 100 queued bytes.
    static func server(maxRequestMessageBytes: Int? = 1024, maxBufferedBytes: Int = 100) -> Self {
        GRPCStreamStateMachine(
            configuration: .server(
                .init(maxRequestMessageBytes: maxRequestMessageBytes, maxBufferedBytes: maxBufferedBytes)
            )
        )
    }

    /// A client stream with small limits: 1 KiB messages, 100 queued bytes, 1000 bytes kept for one retry.
    static func client(
        compression: CompressionAlgorithm? = nil,
        maxResponseMessageBytes: Int? = 1024,
        maxBufferedBytes: Int = 100,
        replayLimit: Int = 1000,
        maxTransparentRetries: Int = 1
    ) -> Self {
        GRPCStreamStateMachine(
            configuration: .client(
                .init(
                    requestCompression: compression,
                    maxResponseMessageBytes: maxResponseMessageBytes,
                    maxBufferedBytes: maxBufferedBytes,
                    replayLimit: replayLimit,
                    maxTransparentRetries: maxTransparentRetries
                )
            )
        )
    }

    /// A server stream whose request head was accepted (the handler runs).
    static func serving(_ extra: [(String, String)] = [], endStream: Bool = false, maxBufferedBytes: Int = 100) -> Self
    {
        var machine = Self.server(maxBufferedBytes: maxBufferedBytes)
        let result = machine.receiveRequestHead(validRequest(extra), endStream: endStream)
        precondition(result == .serve, "the request head was rejected: \(result)")
        return machine
    }

    /// A client stream with an HTTP/2 stream (head submitted).
    static func opened(
        compression: CompressionAlgorithm? = nil,
        maxBufferedBytes: Int = 100,
        replayLimit: Int = 1000,
        maxTransparentRetries: Int = 1
    ) -> Self {
        var machine = Self.client(
            compression: compression,
            maxBufferedBytes: maxBufferedBytes,
            replayLimit: replayLimit,
            maxTransparentRetries: maxTransparentRetries
        )
        let result = machine.sendRequestHead(["x-request": "1"])
        precondition(result == .open, "the request head failed: \(result)")
        _ = machine.streamOpened()
        return machine
    }

    /// A client stream whose response head (200, gRPC, `extra`) was delivered and read.
    static func responding(_ extra: [(String, String)] = [], maxResponseMessageBytes: Int? = 1024) -> Self {
        var machine = Self.client(maxResponseMessageBytes: maxResponseMessageBytes)
        _ = machine.sendRequestHead([:])
        _ = machine.streamOpened()
        let result = machine.receiveResponseHead(okResponseHead(extra), endStream: false)
        precondition(result == .delivered, "the response head failed: \(result)")
        let read = machine.nextInbound().read
        precondition(read == .metadata(okResponseHead(extra).metadata), "unexpected \(read)")
        return machine
    }

    mutating func receiveData(_ bytes: [UInt8]) -> OnInbound {
        bytes.withUnsafeBytes { receiveData($0) }
    }

    /// One pull of up to `length` bytes.
    mutating func pull(_ length: Int) -> (bytes: [UInt8], pull: DataPull) {
        var buffer = [UInt8](repeating: 0, count: max(length, 1))
        let pull = buffer.withUnsafeMutableBufferPointer { pullData(into: $0.baseAddress!, length: length) }
        return (Array(buffer[..<pull.count]), pull)
    }

    /// Pulls in pieces of `pieceSize` until the provider defers or ends the body.
    mutating func pullAll(pieceSize: Int = 1 << 16) -> (bytes: [UInt8], end: DataPull.End?, pulls: [DataPull]) {
        var bytes: [UInt8] = []
        var pulls: [DataPull] = []
        while true {
            let (piece, pull) = self.pull(pieceSize)
            bytes += piece
            pulls.append(pull)
            if pull.end != nil || pull.deferred { return (bytes, pull.end, pulls) }
            precondition(pulls.count < 100_000, "the data provider never stops")
        }
    }

    /// Reads everything the reader can get now, up to (and including) the first non-part result.
    mutating func readAll() -> [Read] {
        var reads: [Read] = []
        while true {
            let read = nextInbound().read
            reads.append(read)
            switch read {
            case .metadata, .message, .status: continue
            case .end, .failed, .wait: return reads
            }
        }
    }
}

/// Where a stream machine is: both directions and the termination, compared at once.
struct StreamStates: Equatable, CustomStringConvertible {
    var send: GRPCStreamStateMachine.SendState
    var receive: GRPCStreamStateMachine.ReceiveState
    var termination: GRPCStreamStateMachine.Termination?

    init(
        _ send: GRPCStreamStateMachine.SendState,
        _ receive: GRPCStreamStateMachine.ReceiveState,
        _ termination: GRPCStreamStateMachine.Termination? = nil
    ) {
        self.send = send
        self.receive = receive
        self.termination = termination
    }

    var description: String {
        "send \(send), receive \(receive), termination \(termination.map { "\($0)" } ?? "nil")"
    }
}

extension GRPCStreamStateMachine {
    var states: StreamStates { StreamStates(send, receive, termination) }
}
