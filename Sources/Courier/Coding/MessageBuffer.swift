/// The bytes of one serialized message, with room reserved in front for a transport's framing.
///
/// Codecs produce a `MessageBuffer` and transports carry it without copying: a network transport writes
/// the gRPC length prefix into the reserved ``headroom`` (5 bytes by default) and sends the whole
/// buffer as it is. The buffer is a collection of the message's bytes only; the headroom is not part of
/// it.
///
/// - Important: Use ``init(count:headroom:)`` followed by ``withUnsafeMutableBytes(_:)`` to serialize
///   straight into the buffer; that allocates once and copies nothing.
public struct MessageBuffer: Sendable, Hashable {
    @usableFromInline
    var storage: [UInt8]
    @usableFromInline
    var start: Int

    /// On a message being sent: whether the transport may compress it with the call's `grpc-encoding`
    /// (the default). `false` sends this message uncompressed even on a compressed call, as gRPC C++'s
    /// `WriteOptions::set_no_compression()` does. Not part of equality.
    public var allowsCompression = true

    /// On a received message: whether it arrived compressed (the gRPC message prefix's flag was set).
    /// Transports set it; it is not part of equality.
    public var arrivedCompressed = false

    /// The number of bytes reserved in front by default: the gRPC message prefix.
    public static let defaultHeadroom = 5

    /// Creates an empty message.
    public init() {
        self.storage = [UInt8](repeating: 0, count: Self.defaultHeadroom)
        self.start = Self.defaultHeadroom
    }

    /// Creates a zero-filled message of `count` bytes.
    ///
    /// - Parameters:
    ///   - count: The message's length in bytes.
    ///   - headroom: Bytes reserved in front of the message.
    @inlinable
    public init(count: Int, headroom: Int = MessageBuffer.defaultHeadroom) {
        self.storage = [UInt8](repeating: 0, count: headroom + count)
        self.start = headroom
    }

    /// Creates a message by copying bytes.
    ///
    /// - Parameter bytes: The message's bytes.
    @inlinable
    public init<Bytes: Sequence<UInt8>>(_ bytes: Bytes) {
        var storage = [UInt8]()
        storage.reserveCapacity(Self.defaultHeadroom + bytes.underestimatedCount)
        storage.append(contentsOf: repeatElement(0, count: Self.defaultHeadroom))
        storage.append(contentsOf: bytes)
        self.storage = storage
        self.start = Self.defaultHeadroom
    }

    /// Adopts storage whose message starts at `offset`; the bytes before it are headroom.
    ///
    /// - Parameters:
    ///   - storage: The bytes, headroom included.
    ///   - offset: Where the message starts, `0...storage.count`.
    @inlinable
    public init(storage: [UInt8], messageOffset offset: Int) {
        precondition(offset >= 0 && offset <= storage.count, "messageOffset out of range")
        self.storage = storage
        self.start = offset
    }

    /// The whole storage, headroom included (for transports that hand it to the kernel as it is).
    package var storageArray: [UInt8] { storage }

    /// The bytes reserved in front of the message.
    @inlinable
    public var headroom: Int { start }

    /// Calls `body` with the message's bytes.
    @inlinable
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try storage.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[start...])) }
    }

    /// Calls `body` with the message's bytes, writable.
    @inlinable
    public mutating func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        let start = self.start
        return try storage.withUnsafeMutableBytes { try body(UnsafeMutableRawBufferPointer(rebasing: $0[start...])) }
    }

    /// Calls `body` with the whole storage, headroom included, and the offset where the message starts.
    ///
    /// Transports use this to write a frame header into the headroom.
    @inlinable
    public mutating func withUnsafeMutableStorage<R>(
        _ body: (_ storage: UnsafeMutableRawBufferPointer, _ messageOffset: Int) throws -> R
    ) rethrows -> R {
        let start = self.start
        return try storage.withUnsafeMutableBytes { try body($0, start) }
    }

    public static func == (lhs: MessageBuffer, rhs: MessageBuffer) -> Bool {
        lhs.elementsEqual(rhs)
    }

    public func hash(into hasher: inout Hasher) {
        withUnsafeBytes { hasher.combine(bytes: $0) }
    }
}

extension MessageBuffer: RandomAccessCollection {
    public var startIndex: Int { 0 }
    public var endIndex: Int { storage.count - start }
    @inlinable
    public subscript(position: Int) -> UInt8 {
        precondition(position >= 0 && position < storage.count - start, "index out of range")
        return storage[start + position]
    }
}
