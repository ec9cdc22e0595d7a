import Courier
import Testing

@testable import CourierHTTP2

@Suite("Outbound queue")
struct OutboundQueueTests {
    func drain(_ queue: inout OutboundQueue, pieceSize: Int) -> [UInt8] {
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: pieceSize)
        while !queue.isEmpty {
            let count = buffer.withUnsafeMutableBufferPointer { queue.read(into: $0.baseAddress!, length: pieceSize) }
            #expect(count > 0)
            out += buffer[..<count]
        }
        return out
    }

    @Test("Prefixes and bodies come out whole in pieces of any size, with or without headroom")
    func pieces() {
        let messages = [
            MessageBuffer([1, 2, 3]), MessageBuffer([]), MessageBuffer(storage: [9, 8, 7, 6], messageOffset: 1),
            MessageBuffer(storage: Array(0..<100).map(UInt8.init), messageOffset: 0),
        ]
        let expected = messages.flatMap { GRPCMessageFramer.frame($0, compressed: false).bytes }
        for pieceSize in [1, 2, 3, 4, 5, 6, 7, 13, 64, 1000] {
            var queue = OutboundQueue()
            for message in messages { queue.append(GRPCMessageFramer.frame(message, compressed: false)) }
            #expect(queue.byteCount == expected.count)
            #expect(drain(&queue, pieceSize: pieceSize) == expected, "piece size \(pieceSize)")
            #expect(queue.byteCount == 0)
        }
    }

    @Test("While retaining, rewind hands everything out again; past the limit it forgets")
    func rewind() {
        var queue = OutboundQueue()
        queue.startRetaining(limit: 64)
        queue.append(GRPCMessageFramer.frame(MessageBuffer([1, 2, 3]), compressed: false))
        queue.append(GRPCMessageFramer.frame(MessageBuffer([4]), compressed: true))
        let first = drain(&queue, pieceSize: 3)
        #expect(first == [0, 0, 0, 0, 3, 1, 2, 3, 1, 0, 0, 0, 1, 4])
        queue.rewind()
        #expect(drain(&queue, pieceSize: 4) == first)
        queue.append(GRPCMessageFramer.frame(MessageBuffer([UInt8](repeating: 5, count: 100)), compressed: false))
        #expect(!queue.retaining)
        #expect(drain(&queue, pieceSize: 50).count == 105)
    }
}
