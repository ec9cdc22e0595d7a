import Courier
import Testing

@testable import CourierHTTP2

/// Large messages reuse buffers from `LargeBufferPool.shared` on the way in (deframer) and hand them
/// back on the way out (outbound queue). Other tests share the pool concurrently, so these check what
/// must hold whatever the pool holds: the bytes are right, and a buffer someone else still holds is
/// never written.
@Suite("Large messages and the shared buffer pool")
struct LargeMessageReuseTests {
    func frame(_ payload: [UInt8]) -> [UInt8] {
        GRPCMessageFramer.frame(MessageBuffer(payload), compressed: false).bytes
    }

    @Test("A large message deframes byte for byte, in pieces of any size, with dirty shared buffers in the pool")
    func deframeWithPooledBuffers() throws {
        // Buffers the test still holds, offered to the pool: they must come out untouched.
        let held = (0..<4).map { _ in [UInt8](repeating: 0xEE, count: (1 << 20) + 100) }
        for buffer in held { LargeBufferPool.shared.recycle(buffer) }
        let payloads = [(1 << 20) + 7, 300_000, 70_000].map { size in
            (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ size) }
        }
        let wire = payloads.flatMap(frame)
        var deframer = GRPCMessageDeframer(maxMessageBytes: 4 << 20)
        var received: [MessageBuffer] = []
        var offset = 0
        var piece = 1
        while offset < wire.count {
            let end = min(wire.count, offset + piece)
            try wire[offset..<end].withUnsafeBytes { bytes in
                try deframer.process(bytes) { received.append($0.bytes) }
            }
            offset = end
            piece = piece * 3 + 1  // 1, 4, 13, … 16 KiB-ish and beyond: every boundary case
            if piece > 40_000 { piece = 16_384 }
        }
        try deframer.finish()
        #expect(received.map { Array($0) } == payloads)
        for buffer in held { #expect(buffer.allSatisfy { $0 == 0xEE }) }
        // Received messages go back to the pool once deserialized; the next ones must still be right.
        for message in received { message.recycle() }
        var again: [MessageBuffer] = []
        var second = GRPCMessageDeframer(maxMessageBytes: 4 << 20)
        try wire.withUnsafeBytes { bytes in try second.process(bytes) { again.append($0.bytes) } }
        #expect(again.map { Array($0) } == payloads)
    }

    @Test("A prefix that lies about a large length, with a pooled buffer: truncated, nothing else")
    func lyingPrefix() throws {
        LargeBufferPool.shared.recycle([UInt8](repeating: 1, count: 2 << 20))
        var deframer = GRPCMessageDeframer(maxMessageBytes: 4 << 20)
        let wire: [UInt8] = [0, 0x00, 0x18, 0x00, 0x00] + [1, 2, 3]  // says 1.5 MiB, sends 3 bytes
        try wire.withUnsafeBytes { bytes in try deframer.process(bytes) { _ in Issue.record("no message") } }
        #expect(throws: GRPCMessageDeframer.Failure.truncated(received: 8, expected: 5 + 0x18_0000)) {
            try deframer.finish()
        }
    }

    @Test("A message fully sent goes back to the pool, one still retained for a retry does not")
    func outboundRecycles() throws {
        let payload = [UInt8](repeating: 0x5A, count: 1 << 20)
        let message = MessageBuffer(payload)
        var queue = OutboundQueue()
        queue.startRetaining(limit: 4 << 20)
        queue.append(GRPCMessageFramer.frame(message, compressed: false))
        var sink = [UInt8](repeating: 0, count: (1 << 20) + 5)
        let copied = sink.withUnsafeMutableBufferPointer { queue.read(into: $0.baseAddress!, length: $0.count) }
        #expect(copied == (1 << 20) + 5)
        #expect(Array(sink[5...]) == payload)
        // Retained: still the queue's, so a rewind sends the same bytes.
        queue.rewind()
        var again = [UInt8](repeating: 0, count: (1 << 20) + 5)
        _ = again.withUnsafeMutableBufferPointer { queue.read(into: $0.baseAddress!, length: $0.count) }
        #expect(again == sink)
        // And the caller's copy is never written, whoever takes the recycled storage next.
        queue.stopRetaining()
        for _ in 0..<4 { _ = MessageBuffer.forOverwriting(count: 1 << 20) }
        #expect(Array(message) == payload)
    }
}
