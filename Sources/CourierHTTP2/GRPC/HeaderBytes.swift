/// A received header name or value: bytes nghttp2 owns for the duration of a callback.
struct HeaderBytes {
    let base: UnsafePointer<UInt8>?
    let count: Int

    /// Whether the bytes are exactly `literal`.
    @inline(__always)
    func equals(_ literal: StaticString) -> Bool {
        guard count == literal.utf8CodeUnitCount else { return false }
        let expected = literal.utf8Start
        for index in 0..<count where base![index] != expected[index] { return false }
        return true
    }

    var string: String { String(decoding: UnsafeBufferPointer(start: base, count: count), as: UTF8.self) }

    /// `application/grpc`, optionally followed by `+format` or `;params`, in any case.
    var isGRPCContentType: Bool {
        let prefix: StaticString = "application/grpc"
        let length = prefix.utf8CodeUnitCount
        guard count >= length, let base else { return false }
        let expected = prefix.utf8Start
        for index in 0..<length {
            var byte = base[index]
            if byte >= 0x41 && byte <= 0x5A { byte |= 0x20 }  // ASCII to lower case
            if byte != expected[index] { return false }
        }
        return count == length || base[length] == UInt8(ascii: "+") || base[length] == UInt8(ascii: ";")
    }
}

extension HeaderBytes {
    /// Whether the bytes equal `count` bytes at `other`.
    @inline(__always)
    func bytesEqual(_ other: UnsafePointer<UInt8>) -> Bool {
        guard let base else { return count == 0 }
        for index in 0..<count where base[index] != other[index] { return false }
        return true
    }
}
