internal import CNGHTTP2

/// Framed messages waiting to go out on one stream, handed to nghttp2's data provider in pieces of any
/// size. Loop-confined, like its stream.
///
/// A client stream can ask it to keep what was sent (up to a limit) so that a stream the server refused
/// without processing can be sent again on another connection (gRPC's transparent retry).
struct OutboundQueue {
    private var chunks: [[UInt8]] = []
    private var ranges: [Range<Int>] = []
    private var head = 0
    /// Bytes of `chunks[head]` already handed out.
    private var headOffset = 0
    /// Bytes queued and not yet handed to nghttp2.
    private(set) var byteCount = 0
    /// Whether handed-out messages are kept for ``rewind()``.
    private(set) var retaining = false
    private var retainedLimit = 0
    private var totalBytes = 0

    var isEmpty: Bool { byteCount == 0 }

    /// Keeps every message, sent or not, until ``stopRetaining()`` or until more than `limit` bytes have
    /// been queued in all.
    mutating func startRetaining(limit: Int) {
        retaining = true
        retainedLimit = limit
        if totalBytes > limit { stopRetaining() }
    }

    /// Forgets the messages already handed out.
    mutating func stopRetaining() {
        guard retaining else { return }
        retaining = false
        if head > 0 {
            chunks.removeFirst(head)
            ranges.removeFirst(head)
            head = 0
        }
        totalBytes = byteCount + headOffset
    }

    /// Queues everything again from the first message (only while retaining).
    mutating func rewind() {
        precondition(retaining, "rewind needs retained messages")
        head = 0
        headOffset = 0
        byteCount = totalBytes
    }

    /// Queues a framed message: `storage[range]`.
    mutating func append(_ storage: [UInt8], range: Range<Int>) {
        chunks.append(storage)
        ranges.append(range)
        byteCount += range.count
        totalBytes += range.count
        if retaining, totalBytes > retainedLimit { stopRetaining() }
    }

    mutating func removeAll() {
        chunks.removeAll()
        ranges.removeAll()
        head = 0
        headOffset = 0
        byteCount = 0
        totalBytes = 0
    }

    /// Copies up to `length` bytes into `buffer`; returns how many.
    mutating func read(into buffer: UnsafeMutablePointer<UInt8>, length: Int) -> Int {
        var copied = 0
        while copied < length, head < chunks.count {
            let range = ranges[head]
            let start = range.lowerBound + headOffset
            let take = min(range.upperBound - start, length - copied)
            chunks[head].withUnsafeBytes { raw in
                (buffer + copied).update(from: raw.baseAddress!.assumingMemoryBound(to: UInt8.self) + start, count: take)
            }
            copied += take
            byteCount -= take
            if start + take == range.upperBound {
                head += 1
                headOffset = 0
            } else {
                headOffset += take
            }
        }
        if head == chunks.count, !retaining {
            chunks.removeAll(keepingCapacity: true)
            ranges.removeAll(keepingCapacity: true)
            head = 0
            totalBytes = 0
        }
        return copied
    }
}
