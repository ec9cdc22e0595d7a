public import Courier  // KeyValueService is a Courier service
internal import Foundation
internal import SwiftProtobuf
internal import Synchronization

/// `kv.KeyValue`: Get and Put over a store kept in one actor.
///
/// With ``Placement/loop`` the actor runs on the serial executor of the event loop that serves the first
/// RPC (``ServerContext/executor``): handlers on that loop call it on their own thread, without a hop.
/// With more than one loop, RPCs on the other loops hop to it, as they would to any actor; a store that
/// must scale across loops shards its keys, one actor per loop. Without an executor (the in-memory
/// transport) the store is a plain actor.
public struct KeyValueService: Kv_KeyValue.ServiceProtocol {
    /// Where the store's actor runs.
    public enum Placement: String, Sendable, CaseIterable {
        /// On the event loop's executor: no thread hop from a handler on that loop.
        case loop
        /// On the default executor, as a plain actor, for comparison. Called from a handler on the loop,
        /// it runs on the loop's thread while uncontended (the RPC's task prefers the loop).
        case plain
        /// A plain actor, called with a preference for Swift's global concurrent executor: every call hops
        /// to a pool thread and back, as from a server whose handlers don't run on their loop. For
        /// measuring the hop only.
        case global
    }

    private let holder: StoreHolder

    /// Creates the service with an empty store.
    ///
    /// - Parameter placement: Where the store's actor runs.
    public init(placement: Placement = .loop) {
        holder = StoreHolder(placement: placement)
    }

    public func get(
        request: ServerRequest<Kv_GetRequest>,
        context: ServerContext
    ) async throws -> ServerResponse<Kv_GetResponse> {
        let store = holder.store(for: context)
        let key = request.message.key
        let value = await holder.call { await store.get(key) }
        return ServerResponse(
            message: .with {
                $0.found = value != nil
                $0.value = value ?? Data()
            }
        )
    }

    public func put(
        request: ServerRequest<Kv_PutRequest>,
        context: ServerContext
    ) async throws -> ServerResponse<Kv_PutResponse> {
        let store = holder.store(for: context)
        let (key, value) = (request.message.key, request.message.value)
        let replaced = await holder.call { await store.put(key, value) }
        return ServerResponse(message: .with { $0.replaced = replaced })
    }
}

/// Makes the store on the first RPC, when the loop's executor is known, and keeps it.
private final class StoreHolder: Sendable {
    let placement: KeyValueService.Placement
    private let store = Mutex<(any KeyValueStore)?>(nil)

    init(placement: KeyValueService.Placement) { self.placement = placement }

    /// Runs `body` where the placement says: here, or (``KeyValueService/Placement/global``) preferring
    /// the global concurrent executor.
    func call<Result: Sendable>(_ body: () async -> Result) async -> Result {
        guard placement == .global else { return await body() }
        return await withTaskExecutorPreference(globalConcurrentExecutor) { await body() }
    }

    func store(for context: ServerContext) -> any KeyValueStore {
        store.withLock { store in
            if let store { return store }
            let made: any KeyValueStore
            if placement == .loop, let executor = context.executor {
                made = LoopStore(executor: executor)
            } else {
                made = PlainStore()
            }
            store = made
            return made
        }
    }
}

/// What a store does; the two actors below differ only in where they run.
private protocol KeyValueStore: Actor {
    func get(_ key: String) -> Data?
    func put(_ key: String, _ value: Data) -> Bool
}

/// The store on an event loop's executor: its methods run on that loop's thread.
private actor LoopStore: KeyValueStore {
    private let executor: any SerialExecutor
    private var values: [String: Data] = [:]

    /// Jobs for this actor go to the loop (Swift's custom actor executors, SE-0392).
    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    init(executor: any SerialExecutor) { self.executor = executor }

    func get(_ key: String) -> Data? { values[key] }
    func put(_ key: String, _ value: Data) -> Bool { values.updateValue(value, forKey: key) != nil }
}

/// The store as a plain actor, on Swift's default executor.
private actor PlainStore: KeyValueStore {
    private var values: [String: Data] = [:]

    func get(_ key: String) -> Data? { values[key] }
    func put(_ key: String, _ value: Data) -> Bool { values.updateValue(value, forKey: key) != nil }
}
