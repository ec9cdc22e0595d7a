import Testing

@testable import Courier

@Suite("LargeBufferPool: large message buffers kept for the next message")
struct LargeBufferPoolTests {
    func buffer(capacity: Int, filledWith byte: UInt8 = 0) -> [UInt8] {
        var buffer = [UInt8]()
        buffer.reserveCapacity(capacity)
        buffer.append(contentsOf: repeatElement(byte, count: capacity / 2))
        return buffer
    }

    func address(_ buffer: [UInt8]) -> UnsafeRawPointer? {
        buffer.withUnsafeBytes { $0.baseAddress }
    }

    @Test("A recycled large buffer comes back, the same storage")
    func reuse() throws {
        let pool = LargeBufferPool()
        let original = buffer(capacity: 1 << 20)
        let storage = address(original)
        pool.recycle(original)
        #expect(pool.statistics.count == 1)
        let taken = try #require(pool.take(capacity: 1 << 20))
        #expect(address(taken) == storage)
        #expect(pool.statistics.count == 0)
        #expect(pool.statistics.bytes == 0)
        #expect(pool.take(capacity: 1 << 20) == nil)
    }

    @Test("Small and huge buffers are let go")
    func bounds() {
        let pool = LargeBufferPool()
        pool.recycle(buffer(capacity: 16 * 1024))
        pool.recycle(buffer(capacity: LargeBufferPool.maximumCapacity + 4096))
        #expect(pool.statistics.count == 0)
        #expect(pool.take(capacity: 100) == nil)
        #expect(pool.take(capacity: LargeBufferPool.maximumCapacity + 1) == nil)
    }

    @Test("The best fit is taken, never one over 4× the need, never one too small")
    func bestFit() throws {
        let pool = LargeBufferPool()
        pool.recycle(buffer(capacity: 4 << 20))
        pool.recycle(buffer(capacity: 1 << 20))
        pool.recycle(buffer(capacity: 2 << 20))
        #expect(pool.take(capacity: 8 << 20) == nil)  // too small, all of them
        #expect(pool.take(capacity: 128 * 1024) == nil)  // 1 MiB is over 4× that
        let taken = try #require(pool.take(capacity: 1_500_000))
        #expect(taken.capacity >= 2 << 20 && taken.capacity < 4 << 20)
        #expect(pool.statistics.count == 2)
    }

    @Test("At most maximumCount buffers and maximumBytes in all")
    func limits() {
        let pool = LargeBufferPool()
        for _ in 0..<(LargeBufferPool.maximumCount + 4) { pool.recycle(buffer(capacity: 64 * 1024)) }
        #expect(pool.statistics.count == LargeBufferPool.maximumCount)
        pool.removeAll()
        #expect(pool.statistics.count == 0)
        let large = buffer(capacity: 4 << 20).capacity
        for _ in 0..<8 { pool.recycle(buffer(capacity: 4 << 20)) }
        // As many as fit: no room for another.
        #expect(pool.statistics.count < 8)
        #expect(pool.statistics.bytes <= LargeBufferPool.maximumBytes)
        #expect(pool.statistics.bytes + large > LargeBufferPool.maximumBytes)
    }

    @Test("A buffer someone still holds stays theirs: the next user gets its own storage")
    func sharedBufferIsCopiedOnWrite() throws {
        let pool = LargeBufferPool()
        let held = buffer(capacity: 1 << 20, filledWith: 7)
        pool.recycle(held)
        var taken = try #require(pool.take(capacity: 1 << 20))
        taken.removeAll(keepingCapacity: true)
        taken.append(contentsOf: repeatElement(9, count: 1000))
        #expect(held.allSatisfy { $0 == 7 })
        #expect(held.count == (1 << 20) / 2)
        #expect(address(taken) != address(held))
    }

    /// Recycles a 1 MiB buffer full of 0xAB, held by nobody else; returns its address.
    func recycleDirty(into pool: LargeBufferPool) -> UnsafeRawPointer? {
        let dirty = buffer(capacity: (1 << 20) + 64, filledWith: 0xAB)
        defer { pool.recycle(dirty) }
        return address(dirty)
    }

    @Test(
        "forOverwriting: the asked-for size and headroom; a reused buffer comes back zeroed",
        arguments: [0, 10, 4096, 100_000, 1 << 20]
    )
    func forOverwriting(count: Int) throws {
        let pool = LargeBufferPool()
        let dirtyAddress = recycleDirty(into: pool)
        var message = MessageBuffer.forOverwriting(count: count, pool: pool)
        #expect(message.count == count)
        #expect(message.headroom == MessageBuffer.defaultHeadroom)
        let reused = message.withUnsafeMutableStorage { storage, offset in
            #expect(storage.count == offset + count)
            #expect(storage[0..<offset].allSatisfy { $0 == 0 })
            return UnsafeRawPointer(storage.baseAddress) == dirtyAddress
        }
        // Only a message the buffer fits and doesn't dwarf (over 4×) reuses it: here, 1 MiB.
        #expect(reused == (count == 1 << 20))
        if reused || count <= 4096 { #expect(message.allSatisfy { $0 == 0 }) }
    }
}
