/// The fuzzer's bytes, read front to back: option bytes first, then the payload, cut into chunks.
///
/// Every read past the end returns zeros or nothing, so any input is a valid run.
public struct FuzzInput {
    public let bytes: [UInt8]
    public private(set) var index = 0

    public init(_ data: UnsafePointer<UInt8>, _ count: Int) {
        bytes = Array(UnsafeBufferPointer(start: data, count: count))
    }

    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    public var isAtEnd: Bool { index >= bytes.count }

    /// The next byte, or 0 past the end.
    public mutating func byte() -> UInt8 {
        guard index < bytes.count else { return 0 }
        defer { index += 1 }
        return bytes[index]
    }

    /// The next `count` bytes (fewer at the end).
    public mutating func take(_ count: Int) -> [UInt8] {
        let end = min(bytes.count, index + max(0, count))
        defer { index = end }
        return Array(bytes[index..<end])
    }

    /// A length-prefixed field: one length byte, then that many bytes.
    public mutating func field() -> [UInt8] {
        take(Int(byte()))
    }

    /// Everything left.
    public mutating func rest() -> [UInt8] {
        take(bytes.count - index)
    }

    /// Cuts `payload` into chunks whose sizes come from `seed`: the same input always gives the same
    /// cuts. A seed of 0 gives one chunk.
    public static func chunks(of payload: [UInt8], seed: UInt8) -> [ArraySlice<UInt8>] {
        guard seed != 0, !payload.isEmpty else { return [payload[...]] }
        var chunks: [ArraySlice<UInt8>] = []
        var state = UInt32(seed) &* 2_654_435_761
        var start = 0
        while start < payload.count {
            state = state &* 1_103_515_245 &+ 12345
            let size = 1 + Int(state >> 16) % (Int(seed) * 8)
            let end = min(payload.count, start + size)
            chunks.append(payload[start..<end])
            start = end
        }
        return chunks
    }
}

/// Stops the fuzzer with a message: a broken invariant is a finding, as a crash is.
public func fuzzCheck(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
    if !condition() { fatalError("invariant broken: \(message())") }
}
