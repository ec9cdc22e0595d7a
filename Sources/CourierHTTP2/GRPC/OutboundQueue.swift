internal import Courier

/// Framed messages waiting to go out on one stream, handed to nghttp2's data provider in pieces of any
/// size. Loop-confined, like its stream.
///
/// A client stream can ask it to keep what was sent (up to a limit) so that a stream the server refused
/// without processing can be sent again on another connection (gRPC's transparent retry).
struct OutboundQueue {
    private var chunks: [FramedMessage] = []
    private var head = 0
    /// Bytes of `chunks[head]` (prefix included) already handed out.
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

    /// Queues a framed message.
    mutating func append(_ message: FramedMessage) {
        chunks.append(message)
        byteCount += message.count
        totalBytes += message.count
        if retaining, totalBytes > retainedLimit { stopRetaining() }
    }

    /// Drops every message not yet started; the rest of a message partly handed out stays, so that what
    /// the peer receives still deframes. Retaining stops (what was handed out before is forgotten).
    mutating func removeAllButStarted() {
        guard headOffset > 0 else { return removeAll() }
        let started = chunks[head]
        chunks = [started]
        head = 0
        byteCount = started.count - headOffset
        totalBytes = started.count
        retaining = false
    }

    mutating func removeAll() {
        chunks.removeAll()
        head = 0
        headOffset = 0
        byteCount = 0
        totalBytes = 0
    }

    /// Copies up to `length` bytes into `buffer`; returns how many.
    mutating func read(into buffer: UnsafeMutablePointer<UInt8>, length: Int) -> Int {
        var copied = 0
        while copied < length, head < chunks.count {
            let total = chunks[head].count
            // The prefix first, byte by byte (at most 5), then the body in one copy.
            while headOffset < 5, copied < length {
                buffer[copied] = withUnsafeBytes(of: chunks[head].prefix) { $0[headOffset] }
                copied += 1
                headOffset += 1
                byteCount -= 1
            }
            if headOffset >= 5, copied < length {
                let body = chunks[head].body
                let start = body.lowerBound + headOffset - 5
                let take = min(body.upperBound - start, length - copied)
                if take > 0 {
                    chunks[head].storage.withUnsafeBufferPointer { source in
                        (buffer + copied).update(from: source.baseAddress! + start, count: take)
                    }
                }
                copied += take
                byteCount -= take
                headOffset += take
            }
            if headOffset == total {
                head += 1
                headOffset = 0
            }
        }
        if head == chunks.count, !retaining {
            // Every message is on its way: large storage goes back to the pool for the next message.
            // (By index: an iterator would hold a second reference to `chunks` in debug builds, and
            // removeAll below would then allocate a new array.)
            for index in chunks.indices where chunks[index].storage.capacity >= LargeBufferPool.minimumCapacity {
                LargeBufferPool.shared.recycle(chunks[index].storage)
            }
            chunks.removeAll(keepingCapacity: true)
            head = 0
            totalBytes = 0
        }
        return copied
    }
}
