public import Courier  // the codec conforms to MessageSerializer and MessageDeserializer
public import SwiftProtobuf  // generic over SwiftProtobuf.Message

/// Serializes protobuf messages in the binary format, straight into a `MessageBuffer`: one
/// allocation, no copy, with the headroom a transport needs for framing.
public struct ProtobufSerializer<Message: SwiftProtobuf.Message>: MessageSerializer {
    /// Creates the serializer.
    public init() {}

    /// Serializes `message`.
    ///
    /// - Throws: `RPCError` `INTERNAL` if the message can't be serialized (a proto2 message with
    ///   required fields missing).
    public func serialize(_ message: Message) throws -> MessageBuffer {
        do {
            return try message.serializedBytes()
        } catch {
            throw RPCError(
                code: .internal,
                message: "Failed to serialize a \(Message.protoMessageName) message.",
                cause: error
            )
        }
    }
}

/// Deserializes protobuf messages in the binary format, reading the transport's bytes in place.
public struct ProtobufDeserializer<Message: SwiftProtobuf.Message>: MessageDeserializer {
    /// Creates the deserializer.
    public init() {}

    /// Deserializes `buffer`.
    ///
    /// - Throws: `RPCError` `INTERNAL` naming the message type when the bytes don't parse.
    public func deserialize(_ buffer: MessageBuffer) throws -> Message {
        do {
            return try Message(serializedBytes: buffer)
        } catch {
            throw RPCError(
                code: .internal,
                message: "Failed to parse a \(buffer.count)-byte \(Message.protoMessageName) message: \(error)",
                cause: error
            )
        }
    }
}

/// Both directions of the protobuf binary format for one message type.
public struct ProtobufCodec<Message: SwiftProtobuf.Message>: MessageCodec {
    /// Creates the codec.
    public init() {}

    public func serialize(_ message: Message) throws -> MessageBuffer {
        try ProtobufSerializer<Message>().serialize(message)
    }

    public func deserialize(_ buffer: MessageBuffer) throws -> Message {
        try ProtobufDeserializer<Message>().deserialize(buffer)
    }
}

// swift-protobuf asks the byte container for a buffer of exactly the message's size and writes into
// it; `MessageBuffer` adds the framing headroom in front, so serializing costs one allocation.
extension MessageBuffer: SwiftProtobufContiguousBytes {
    /// Creates a message of `count` bytes, each `repeating`, with the default headroom.
    ///
    /// swift-protobuf asks for `repeating: 0` and then overwrites every byte (its encoder writes
    /// sequentially and checks that it filled the buffer exactly), so a zero fill would be a second pass
    /// over the message for nothing (≈5 % of a 1 MiB unary call): for 0 the message bytes are left for
    /// the encoder; only the headroom is zeroed.
    public init(repeating: UInt8, count: Int) {
        let headroom = MessageBuffer.defaultHeadroom
        guard repeating == 0 else {
            self.init(storage: [UInt8](repeating: repeating, count: headroom + count), messageOffset: headroom)
            return
        }
        // The message bytes: written by the encoder before anyone reads them (a large buffer comes back
        // from the pool of recycled ones, see `LargeBufferPool`).
        self = MessageBuffer.forOverwriting(count: count, headroom: headroom)
    }
}
