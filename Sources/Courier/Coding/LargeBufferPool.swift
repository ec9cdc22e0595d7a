/// Large message buffers kept for the next message instead of being freed.
///
/// A buffer of a megabyte handed back to glibc is trimmed from the heap (or unmapped) and, for the next
/// message, mapped and faulted in again page by page: on 1 MiB unary calls that was a quarter of the
/// server's CPU (DesignNotes/Performance.md). Transports and codecs recycle the storage of large
/// messages here once they are done with it — a received message once it is deserialized, a sent one
/// once its bytes are on their way — and take it back for the next large message they receive or
/// serialize.
///
/// Only buffers of ``minimumCapacity``…``maximumCapacity`` bytes are kept, at most ``maximumCount`` of
/// them and ``maximumBytes`` in all; the rest go back to the allocator as before. A buffer still shared
/// with someone else is safe here: arrays copy on write, so the next user gets its own storage (and the
/// pool only saves nothing that time).
package final class LargeBufferPool: Sendable {
    /// The pool transports and codecs share.
    package static let shared = LargeBufferPool()

    /// The smallest capacity kept: below it, glibc's free lists already reuse memory cheaply.
    package static let minimumCapacity = 64 * 1024
    /// The largest capacity kept.
    package static let maximumCapacity = 16 * 1024 * 1024
    /// At most this many buffers are kept.
    package static let maximumCount = 16
    /// At most this many bytes (capacities) are kept in all.
    package static let maximumBytes = 16 * 1024 * 1024

    private struct State {
        var buffers: [[UInt8]] = []
        var bytes = 0
    }

    private let state = CourierMutex(State())

    /// Creates an empty pool (tests; everything else uses ``shared``).
    package init() {}

    /// A kept buffer with a capacity of at least `capacity` bytes and at most 4× that (so a small
    /// message doesn't take a buffer a large one needs), or `nil`. Its count and contents are whatever
    /// its last user left: callers set both.
    package func take(capacity: Int) -> [UInt8]? {
        guard capacity >= Self.minimumCapacity / 2, capacity <= Self.maximumCapacity else { return nil }
        return state.withLock { state -> [UInt8]? in
            var best: Int?
            for index in state.buffers.indices {
                let candidate = state.buffers[index].capacity
                guard candidate >= capacity, candidate <= 4 * capacity else { continue }
                if let current = best, state.buffers[current].capacity <= candidate { continue }
                best = index
            }
            guard let best else { return nil }
            let buffer = state.buffers.swapRemoveAt(best)
            state.bytes -= buffer.capacity
            return buffer
        }
    }

    /// Keeps `buffer` for a later ``take(capacity:)`` if it is large enough and the pool has room;
    /// otherwise lets it go.
    package func recycle(_ buffer: [UInt8]) {
        let capacity = buffer.capacity
        guard capacity >= Self.minimumCapacity, capacity <= Self.maximumCapacity else { return }
        state.withLock { state in
            guard state.buffers.count < Self.maximumCount, state.bytes + capacity <= Self.maximumBytes else { return }
            state.bytes += capacity
            state.buffers.append(buffer)
        }
    }

    private static let zeros = [UInt8](repeating: 0, count: 64 * 1024)

    /// Appends `count` zero bytes: memory copies from a block of zeros (fast in every build, where an
    /// element-wise `repeatElement` append is not), without growing past the capacity asked for.
    static func appendZeros(_ count: Int, to storage: inout [UInt8]) {
        var remaining = count
        zeros.withUnsafeBufferPointer { zeros in
            while remaining > 0 {
                let take = min(remaining, zeros.count)
                storage.append(contentsOf: UnsafeBufferPointer(rebasing: zeros[0..<take]))
                remaining -= take
            }
        }
    }

    /// The number of buffers kept and their capacities in bytes (tests, diagnostics).
    package var statistics: (count: Int, bytes: Int) {
        state.withLock { ($0.buffers.count, $0.bytes) }
    }

    /// Lets every kept buffer go (tests).
    package func removeAll() {
        let buffers = state.withLock { state -> [[UInt8]] in
            defer {
                state.buffers = []
                state.bytes = 0
            }
            return state.buffers
        }
        _ = buffers
    }
}

extension Array {
    fileprivate mutating func swapRemoveAt(_ index: Int) -> Element {
        swapAt(index, count - 1)
        return removeLast()
    }
}

extension MessageBuffer {
    /// A zero-filled message of `count` bytes with `headroom` in front, for an encoder that overwrites
    /// every byte. Large ones reuse a buffer from ``LargeBufferPool`` (filling resident memory, not
    /// faulting fresh pages in); new ones leave the message bytes to the encoder except when small, where
    /// zeroing costs nothing and keeps the bytes defined even if an encoder stops early.
    package static func forOverwriting(
        count: Int,
        headroom: Int = MessageBuffer.defaultHeadroom,
        pool: LargeBufferPool = .shared
    ) -> MessageBuffer {
        let total = headroom + count
        if total >= LargeBufferPool.minimumCapacity, var storage = pool.take(capacity: total) {
            // O(1) when the pool held the only reference; a fresh allocation (never a copy) when a
            // cached message still shares it.
            storage.removeAll(keepingCapacity: true)
            LargeBufferPool.appendZeros(total, to: &storage)
            return MessageBuffer(storage: storage, messageOffset: headroom)
        }
        let storage = [UInt8](unsafeUninitializedCapacity: total) { buffer, initialized in
            buffer.baseAddress!.initialize(repeating: 0, count: headroom)
            if count <= 4096 { (buffer.baseAddress! + headroom).initialize(repeating: 0, count: count) }
            initialized = total
        }
        return MessageBuffer(storage: storage, messageOffset: headroom)
    }

    /// Hands a large message's storage to ``LargeBufferPool`` once nobody needs the message any more
    /// (a small one is simply freed).
    @usableFromInline
    package consuming func recycle() {
        if storage.capacity >= LargeBufferPool.minimumCapacity { LargeBufferPool.shared.recycle(storage) }
    }
}
