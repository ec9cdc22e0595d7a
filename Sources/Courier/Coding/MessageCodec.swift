/// Turns messages into bytes.
///
/// Courier calls a serializer once per outgoing message. Serialize straight into a ``MessageBuffer``
/// made with ``MessageBuffer/init(count:headroom:)`` so that the transport can frame it without a copy.
///
/// ```swift
/// struct UTF8Codec: MessageCodec {
///     func serialize(_ message: String) throws -> MessageBuffer { MessageBuffer(message.utf8) }
///     func deserialize(_ buffer: MessageBuffer) throws -> String { String(decoding: buffer, as: UTF8.self) }
/// }
/// ```
public protocol MessageSerializer<Message>: Sendable {
    /// The type of message serialized.
    associatedtype Message

    /// Serializes a message.
    ///
    /// - Parameter message: The message.
    /// - Returns: Its bytes.
    /// - Throws: Any error; Courier sends an ``RPCError`` as it is and wraps anything else in
    ///   `INTERNAL`.
    func serialize(_ message: Message) throws -> MessageBuffer
}

/// Turns bytes into messages.
///
/// Bytes that don't parse must throw, never crash: Courier answers them with `INTERNAL`.
public protocol MessageDeserializer<Message>: Sendable {
    /// The type of message deserialized.
    associatedtype Message

    /// Deserializes a message.
    ///
    /// - Parameter buffer: The message's bytes.
    /// - Returns: The message.
    /// - Throws: Any error; Courier sends an ``RPCError`` as it is and wraps anything else in
    ///   `INTERNAL`.
    func deserialize(_ buffer: MessageBuffer) throws -> Message
}

/// A serializer and deserializer of the same message type, such as a protobuf codec.
public protocol MessageCodec<Message>: MessageSerializer, MessageDeserializer {}

/// A codec that passes bytes through unchanged, for proxies and tests.
public struct RawBytesCodec: MessageCodec {
    /// Creates the codec.
    public init() {}

    public func serialize(_ message: MessageBuffer) throws -> MessageBuffer { message }
    public func deserialize(_ buffer: MessageBuffer) throws -> MessageBuffer { buffer }
}

extension MessageSerializer {
    /// Serializes, mapping codec errors to `INTERNAL`.
    @inlinable
    package func serializeForRPC(_ message: Message) throws(RPCError) -> MessageBuffer {
        do {
            return try serialize(message)
        } catch let error as RPCError {
            throw error
        } catch {
            throw RPCError(code: .internal, message: "Failed to serialize message.", cause: error)
        }
    }
}

extension MessageSerializer {
    /// Serializes a message to send: marked for compression as `options` say, and within `limit`
    /// (`RESOURCE_EXHAUSTED` otherwise).
    @inlinable
    package func serializeForSending(
        _ message: Message,
        options: RPCWriteOptions,
        limit: Int?,
        kind: MessageKind
    ) throws(RPCError) -> MessageBuffer {
        var buffer = try serializeForRPC(message)
        buffer.allowsCompression = options.compress
        try kind.checkSize(buffer, limit: limit)
        return buffer
    }
}

/// Which way a message travels, for the limit errors that name it.
@usableFromInline
package enum MessageKind: String, Sendable {
    case request = "Request"
    case response = "Response"

    /// Throws `RESOURCE_EXHAUSTED` if `buffer` is over `limit`.
    @usableFromInline
    package func checkSize(_ buffer: MessageBuffer, limit: Int?) throws(RPCError) {
        if let limit, buffer.count > limit {
            throw RPCError(
                code: .resourceExhausted,
                message: "\(rawValue) message of \(buffer.count) bytes exceeds the limit of \(limit) bytes."
            )
        }
    }
}

extension MessageDeserializer {
    /// Deserializes, mapping codec errors to `INTERNAL`.
    @inlinable
    package func deserializeForRPC(_ buffer: consuming MessageBuffer) throws(RPCError) -> Message {
        do {
            let message = try deserialize(buffer)
            // Done with the bytes: a large buffer goes back to the pool for the next message.
            buffer.recycle()
            return message
        } catch let error as RPCError {
            throw error
        } catch {
            throw RPCError(
                code: .internal,
                message: "Failed to deserialize a \(buffer.count)-byte message.",
                cause: error
            )
        }
    }
}
