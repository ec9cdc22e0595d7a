internal import CNGHTTP2

/// Framed messages waiting to go out on one stream, handed to nghttp2's data provider in pieces of any
/// size. Loop-confined, like its stream.
struct OutboundQueue {
    private var chunks: [[UInt8]] = []
    private var ranges: [Range<Int>] = []
    private var head = 0
    /// Bytes queued and not yet handed to nghttp2.
    private(set) var byteCount = 0

    var isEmpty: Bool { head == chunks.count }

    /// Queues a framed message: `storage[range]`.
    mutating func append(_ storage: [UInt8], range: Range<Int>) {
        chunks.append(storage)
        ranges.append(range)
        byteCount += range.count
    }

    mutating func removeAll() {
        chunks.removeAll()
        ranges.removeAll()
        head = 0
        byteCount = 0
    }

    /// Copies up to `length` bytes into `buffer`; returns how many.
    mutating func read(into buffer: UnsafeMutablePointer<UInt8>, length: Int) -> Int {
        var copied = 0
        while copied < length, head < chunks.count {
            let range = ranges[head]
            let take = min(range.count, length - copied)
            chunks[head].withUnsafeBytes { raw in
                (buffer + copied).update(
                    from: raw.baseAddress!.assumingMemoryBound(to: UInt8.self) + range.lowerBound,
                    count: take
                )
            }
            copied += take
            byteCount -= take
            if take == range.count {
                head += 1
            } else {
                ranges[head] = (range.lowerBound + take)..<range.upperBound
            }
        }
        if head == chunks.count {
            chunks.removeAll(keepingCapacity: true)
            ranges.removeAll(keepingCapacity: true)
            head = 0
        }
        return copied
    }
}
