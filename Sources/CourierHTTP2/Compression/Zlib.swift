internal import CZlib
internal import Courier

/// gzip and deflate for gRPC messages, one message at a time (gRPC starts a new compression context per
/// message).
enum Zlib {
    enum Failure: Error, Equatable {
        /// The decompressed message would exceed the limit: `RESOURCE_EXHAUSTED`.
        case tooLarge(limit: Int)
        /// The bytes aren't valid compressed data: `INTERNAL`.
        case corrupt
    }

    private static func windowBits(_ algorithm: CompressionAlgorithm) -> Int32 {
        algorithm == .gzip ? 15 + 16 : 15
    }

    /// Compresses a message into a buffer with framing headroom.
    static func compress(_ input: MessageBuffer, algorithm: CompressionAlgorithm) -> MessageBuffer {
        var stream = z_stream()
        precondition(CZlib_deflateInit2(&stream, Z_DEFAULT_COMPRESSION, windowBits(algorithm)) == Z_OK, "deflateInit2")
        defer { deflateEnd(&stream) }
        let bound = Int(deflateBound(&stream, uLong(input.count)))
        var output = MessageBuffer(count: bound)
        let written = input.withUnsafeBytes { source -> Int in
            output.withUnsafeMutableBytes { destination -> Int in
                stream.next_in = UnsafeMutablePointer(mutating: source.baseAddress?.assumingMemoryBound(to: Bytef.self))
                stream.avail_in = uInt(source.count)
                stream.next_out = destination.baseAddress?.assumingMemoryBound(to: Bytef.self)
                stream.avail_out = uInt(destination.count)
                let rc = deflate(&stream, Z_FINISH)
                precondition(rc == Z_STREAM_END, "deflate with a deflateBound-sized buffer must finish")
                return destination.count - Int(stream.avail_out)
            }
        }
        return output.prefixMessage(written)
    }

    /// Decompresses a message, refusing to produce more than `limit` bytes (a zip bomb stops at the
    /// limit, without a large allocation).
    static func decompress(
        _ input: MessageBuffer,
        algorithm: CompressionAlgorithm,
        limit: Int?
    ) throws(Failure) -> MessageBuffer {
        var stream = z_stream()
        guard CZlib_inflateInit2(&stream, windowBits(algorithm)) == Z_OK else { throw .corrupt }
        defer { inflateEnd(&stream) }
        let limit = limit ?? Int(Int32.max)
        var output: [UInt8] = []
        output.reserveCapacity(min(limit, max(64, input.count * 2)))
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        let result: Failure? = input.withUnsafeBytes { source -> Failure? in
            stream.next_in = UnsafeMutablePointer(mutating: source.baseAddress?.assumingMemoryBound(to: Bytef.self))
            stream.avail_in = uInt(source.count)
            while true {
                let (rc, produced) = chunk.withUnsafeMutableBytes { buffer -> (Int32, Int) in
                    stream.next_out = buffer.baseAddress!.assumingMemoryBound(to: Bytef.self)
                    stream.avail_out = uInt(buffer.count)
                    let rc = inflate(&stream, Z_NO_FLUSH)
                    return (rc, buffer.count - Int(stream.avail_out))
                }
                if output.count + produced > limit { return .tooLarge(limit: limit) }
                output.append(contentsOf: chunk[0..<produced])
                switch rc {
                case Z_STREAM_END:
                    return stream.avail_in == 0 ? nil : .corrupt
                case Z_OK:
                    continue
                case Z_BUF_ERROR where produced > 0:
                    continue
                default:
                    return .corrupt
                }
            }
        }
        if let result { throw result }
        return MessageBuffer(storage: output, messageOffset: 0)
    }

    static func rpcError(_ failure: Failure, algorithm: CompressionAlgorithm) -> RPCError {
        switch failure {
        case .tooLarge(let limit):
            RPCError(
                code: .resourceExhausted,
                message: "A \(algorithm)-compressed message decompresses to more than \(limit) bytes."
            )
        case .corrupt:
            RPCError(code: .internal, message: "A message could not be decompressed with \(algorithm).")
        }
    }
}

extension MessageBuffer {
    /// The first `count` bytes of the message, headroom kept.
    func prefixMessage(_ count: Int) -> MessageBuffer {
        var storage = storageArray
        storage.removeLast(storage.count - headroom - count)
        return MessageBuffer(storage: storage, messageOffset: headroom)
    }
}

extension GRPCMessageFramer {
    /// Frames a message, compressing it first when the stream has an encoding.
    static func frame(_ message: MessageBuffer, compression: CompressionAlgorithm?) -> FramedMessage {
        if let compression {
            return frame(Zlib.compress(message, algorithm: compression), compressed: true)
        }
        return frame(message, compressed: false)
    }
}
