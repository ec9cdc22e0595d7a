internal import Synchronization

/// One value per event loop, made the first time an RPC on that loop asks for it: for state sharded by
/// loop, such as one actor per loop on that loop's executor (``ServerContext/executor``), which the
/// loop's handlers then call without a thread hop.
///
/// ```swift
/// let counters = LoopLocal { executor in Counter(executor: executor) }
/// // In a handler:
/// let count = await counters.value(for: context).increment()
/// ```
///
/// A context without an executor (the in-memory transport) gets one value shared by all of them, made
/// with `nil`. Each loop's value sees only the RPCs that loop serves (a client's connection stays on
/// one loop); state every RPC must see belongs in a single actor. Lookups take a lock, held only to
/// find or insert the value.
public final class LoopLocal<Value: Sendable>: Sendable {
    private struct Entry {
        /// Held strongly, so that its identity can't be reused by another executor.
        let executor: (any SerialExecutor)?
        let value: Value
    }

    private let make: @Sendable ((any SerialExecutor)?) -> Value
    private let entries = CourierMutex<[Entry]>([])

    /// Creates an empty table.
    ///
    /// - Parameter make: Makes the value for an executor (`nil`: the transport has none), under the
    ///   table's lock, once per executor; it must not use the table.
    public init(_ make: @escaping @Sendable ((any SerialExecutor)?) -> Value) {
        self.make = make
    }

    /// The value for the loop serving the RPC, made on first use.
    ///
    /// - Parameter context: The RPC's context.
    /// - Returns: The value for ``ServerContext/executor``.
    public func value(for context: ServerContext) -> Value {
        value(for: context.executor)
    }

    /// The value for `executor`, made on first use.
    ///
    /// - Parameter executor: The executor, or `nil` for the value shared by contexts without one.
    /// - Returns: The value.
    public func value(for executor: (any SerialExecutor)?) -> Value {
        entries.withLock { entries in
            for entry in entries where entry.executor === executor { return entry.value }
            let value = make(executor)
            entries.append(Entry(executor: executor, value: value))
            return value
        }
    }

    /// Every value made so far, in the order they were made: to aggregate across loops.
    public var values: [Value] { entries.withLock { $0.map(\.value) } }
}
