package import Courier

/// Splits the bytes of a request or response body into gRPC messages: a 1-byte compressed flag, a 4-byte
/// big-endian length, then the message. DATA frame boundaries have nothing to do with message boundaries.
///
/// Limits are decided from the length prefix, before anything is allocated, and a prefix that lies
/// (says 2 GiB, sends 10 bytes) never makes the deframer allocate more than 64 KiB or 4× what it has received.
package struct GRPCMessageDeframer {
    /// A deframed message.
    package struct Message: Equatable {
        /// Whether the compressed flag was set.
        package var compressed: Bool
        /// The message's bytes (still compressed when `compressed` is set).
        package var bytes: MessageBuffer
    }

    /// Why the body is invalid; each maps to the status gRPC prescribes.
    enum Failure: Error, Equatable {
        /// The length prefix exceeds the limit: `RESOURCE_EXHAUSTED`.
        case messageTooLarge(length: Int, limit: Int)
        /// The flag byte is neither 0 nor 1: `INTERNAL`.
        case invalidFlag(UInt8)
        /// The compressed flag is set but the stream has no `grpc-encoding`: `INTERNAL`.
        case compressedWithoutEncoding
        /// The body ended inside a message: `INTERNAL`.
        case truncated(received: Int, expected: Int)

        var rpcError: RPCError {
            switch self {
            case .messageTooLarge(let length, let limit):
                RPCError(
                    code: .resourceExhausted,
                    message: "Received a message of \(length) bytes, over the limit of \(limit) bytes."
                )
            case .invalidFlag(let flag):
                RPCError(code: .internal, message: "Invalid message flag \(flag).")
            case .compressedWithoutEncoding:
                RPCError(code: .internal, message: "Compressed message received without grpc-encoding.")
            case .truncated(let received, let expected):
                RPCError(
                    code: .internal,
                    message: "The stream ended inside a message (\(received) of \(expected) bytes received)."
                )
            }
        }
    }

    /// The largest message accepted; `nil` for no limit.
    var maxMessageBytes: Int?
    /// Whether the stream declared a `grpc-encoding` other than identity.
    var compressionAllowed: Bool

    private var header: (UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0)
    private var headerCount = 0
    private var body: [UInt8] = []
    private var expected = 0
    private var compressed = false

    /// Initial capacity reserved for a message body: the rest grows as bytes arrive.
    private static let maxUpfrontReservation = 64 * 1024

    package init(maxMessageBytes: Int?, compressionAllowed: Bool = false) {
        self.maxMessageBytes = maxMessageBytes
        self.compressionAllowed = compressionAllowed
    }

    /// Whether a message has been started but not completed.
    var isInsideMessage: Bool { headerCount > 0 }

    /// Consumes bytes, calling `emit` for each complete message.
    ///
    /// - Throws: ``Failure`` for an invalid body; `emit`'s errors.
    package mutating func process(_ bytes: UnsafeRawBufferPointer, emit: (Message) throws -> Void) throws {
        var index = 0
        while index < bytes.count {
            if headerCount < 5 {
                let byte = bytes[index]
                index += 1
                switch headerCount {
                case 0: header.0 = byte
                case 1: header.1 = byte
                case 2: header.2 = byte
                case 3: header.3 = byte
                default: header.4 = byte
                }
                headerCount += 1
                if headerCount == 5 { try beginMessage(emit: emit) }
                continue
            }
            let take = min(expected - body.count, bytes.count - index)
            if body.count + take > body.capacity {
                // Grow to at most 4× what has arrived, never past the declared length: a lying prefix
                // costs at most 4× the bytes actually sent, and a large message is copied twice at most
                // on its way in (64 KiB → 256 KiB → 1 MiB) instead of at every doubling.
                grow(to: min(expected, max(body.count + take, 4 * (body.count + take))))
            }
            body.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[index..<(index + take)]))
            index += take
            if body.count == expected { try completeMessage(emit: emit) }
        }
    }

    /// Convenience for arrays.
    mutating func process(_ bytes: [UInt8], emit: (Message) throws -> Void) throws {
        try bytes.withUnsafeBytes { try process($0, emit: emit) }
    }

    /// Checks that the body did not end inside a message.
    func finish() throws {
        if headerCount > 0 {
            throw Failure.truncated(received: headerCount < 5 ? headerCount : 5 + body.count, expected: 5 + expected)
        }
    }

    private mutating func beginMessage(emit: (Message) throws -> Void) throws {
        switch header.0 {
        case 0: compressed = false
        case 1:
            guard compressionAllowed else { throw Failure.compressedWithoutEncoding }
            compressed = true
        default: throw Failure.invalidFlag(header.0)
        }
        let length = Int(header.1) << 24 | Int(header.2) << 16 | Int(header.3) << 8 | Int(header.4)
        if let limit = maxMessageBytes, length > limit {
            throw Failure.messageTooLarge(length: length, limit: limit)
        }
        expected = length
        // A recycled buffer that fits the whole message costs nothing new, whatever the prefix says.
        if length > Self.maxUpfrontReservation, var recycled = LargeBufferPool.shared.take(capacity: length) {
            recycled.removeAll(keepingCapacity: true)
            body = recycled
        } else {
            body = []
            body.reserveCapacity(min(length, Self.maxUpfrontReservation))
        }
        if length == 0 { try completeMessage(emit: emit) }
    }

    /// Moves the body into storage of at least `capacity` bytes: a recycled buffer if one fits, else
    /// a new one; the old storage, if large, goes to the pool.
    private mutating func grow(to capacity: Int) {
        guard var recycled = LargeBufferPool.shared.take(capacity: capacity) else {
            body.reserveCapacity(capacity)
            return
        }
        recycled.removeAll(keepingCapacity: true)
        recycled.append(contentsOf: body)
        swap(&body, &recycled)
        LargeBufferPool.shared.recycle(recycled)
    }

    private mutating func completeMessage(emit: (Message) throws -> Void) throws {
        let message = Message(compressed: compressed, bytes: MessageBuffer(storage: body, messageOffset: 0))
        body = []
        headerCount = 0
        expected = 0
        try emit(message)
    }
}

/// A gRPC message ready to send: its 5-byte prefix, kept apart, and the serialized bytes, untouched
/// (no copy, and no copy-on-write of a buffer someone else still holds).
package struct FramedMessage {
    package var prefix: (UInt8, UInt8, UInt8, UInt8, UInt8)
    package var storage: [UInt8]
    package var body: Range<Int>

    /// Prefix and body.
    package var count: Int { 5 + body.count }

    /// The frame as one array (tests and tools).
    package var bytes: [UInt8] {
        [prefix.0, prefix.1, prefix.2, prefix.3, prefix.4] + storage[body]
    }
}

/// Frames outgoing messages: a flag byte and the big-endian length, in front of the message.
package enum GRPCMessageFramer {
    /// The frame of `message`.
    ///
    /// - Parameters:
    ///   - message: The serialized (and possibly compressed) message.
    ///   - compressed: Whether to set the compressed flag.
    package static func frame(_ message: MessageBuffer, compressed: Bool) -> FramedMessage {
        let length = message.count
        precondition(length <= Int(UInt32.max), "A gRPC message can't exceed 4 GiB.")
        let prefix = (
            UInt8(compressed ? 1 : 0),
            UInt8(truncatingIfNeeded: length >> 24),
            UInt8(truncatingIfNeeded: length >> 16),
            UInt8(truncatingIfNeeded: length >> 8),
            UInt8(truncatingIfNeeded: length)
        )
        let start = message.headroom
        return FramedMessage(prefix: prefix, storage: message.storageArray, body: start..<(start + length))
    }
}
