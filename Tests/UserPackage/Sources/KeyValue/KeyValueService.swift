// Written as a new user writes it, in a package with Swift's default settings: plain imports, plain
// `async` methods, no upcoming features.
import Courier
import CourierProtobuf
import Foundation
import SwiftProtobuf
import Synchronization

/// An in-memory key-value store served over gRPC: the four RPC kinds of `kv.KeyValue`.
public struct KeyValueService: Kv_KeyValue.ServiceProtocol {
    private let store = Store()

    private final class Store: Sendable {
        let entries = Mutex<[String: Kv_Entry]>([:])
    }

    /// Creates an empty store.
    public init() {}

    public func get(
        request: ServerRequest<Kv_GetRequest>,
        context: ServerContext
    ) async throws
        -> ServerResponse<Kv_Entry>
    {
        guard let entry = store.entries.withLock({ $0[request.message.key] }) else {
            throw RPCError(code: .notFound, message: "No entry for \(request.message.key).")
        }
        return ServerResponse(
            message: entry,
            metadata: ["x-served-by": "kv \(ProcessInfo.processInfo.processIdentifier)"]
        )
    }

    public func watch(
        request: ServerRequest<Kv_WatchRequest>,
        context: ServerContext
    ) async throws
        -> StreamingServerResponse<Kv_Change>
    {
        let matches = store.entries.withLock { entries in
            entries.values.filter { $0.key.hasPrefix(request.message.prefix) }.sorted { $0.key < $1.key }
        }
        let limit = request.message.limit > 0 ? Int(request.message.limit) : matches.count
        return StreamingServerResponse { writer in
            for entry in matches.prefix(limit) {
                try await writer.write(.with { $0.entry = entry })
            }
            return ["x-matched": "\(matches.count)"]
        }
    }

    public func putMany(
        request: StreamingServerRequest<Kv_Entry>,
        context: ServerContext
    ) async throws
        -> ServerResponse<Kv_PutSummary>
    {
        var written: Int32 = 0
        for try await entry in request.messages {
            store.entries.withLock { $0[entry.key] = entry }
            written += 1
        }
        return ServerResponse(message: .with { $0.written = written })
    }

    public func sync(
        request: StreamingServerRequest<Kv_Command>,
        context: ServerContext
    ) async throws
        -> StreamingServerResponse<Kv_Change>
    {
        StreamingServerResponse { writer in
            for try await command in request.messages {
                switch command.op {
                case .put(let entry):
                    store.entries.withLock { $0[entry.key] = entry }
                    try await writer.write(.with { $0.entry = entry })
                case .delete(let key):
                    let removed = store.entries.withLock { $0.removeValue(forKey: key) }
                    try await writer.write(
                        .with {
                            $0.entry = removed ?? .with { $0.key = key }
                            $0.deleted = true
                        }
                    )
                case nil:
                    throw RPCError(code: .invalidArgument, message: "A command needs put or delete.")
                }
            }
            return [:]
        }
    }
}

/// Rejects calls without the right `x-api-key`, written as ServerInterceptor's doc comment shows.
public struct APIKeyInterceptor: ServerInterceptor {
    let key: String
    let threads: ThreadLog?

    /// Accepts calls that carry `key`.
    public init(key: String, threads: ThreadLog? = nil) {
        self.key = key
        self.threads = threads
    }

    public func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: ServerInterceptorNext<Input, Output>
    ) async throws -> StreamingServerResponse<Output> {
        threads?.record("server interceptor")
        guard request.metadata.firstString(forKey: "x-api-key") == key else {
            throw RPCError(code: .unauthenticated, message: "Missing or wrong API key.")
        }
        let response = try await next(request, context)
        threads?.record("server interceptor, after next")
        return response
    }
}

/// Adds `x-api-key` and a request id to every call, written as ClientInterceptor's doc comment shows.
public struct APIKeyClientInterceptor: ClientInterceptor {
    let key: String
    private let counter = Counter()

    /// Sends `key` with every call.
    public init(key: String) {
        self.key = key
    }

    public func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingClientRequest<Input>,
        context: ClientContext,
        next: ClientInterceptorNext<Input, Output>
    ) async throws -> StreamingClientResponse<Output> {
        var request = request
        counter.increment()
        let id = counter.count
        request.metadata.addString(key, forKey: "x-api-key")
        request.metadata.add("req-\(id)", forKey: "x-request-id")
        return try await next(request, context)
    }
}

/// A thread-safe count.
public final class Counter: Sendable {
    private let value = Atomic<Int>(0)

    /// Creates a count of zero.
    public init() {}

    /// Adds one.
    public func increment() { value.add(1, ordering: .relaxed) }

    /// The count.
    public var count: Int { value.load(ordering: .relaxed) }
}

/// A writer of the user's own: counts what passes through (conforms to RPCWriterProtocol).
public struct CountingWriter<Element: Sendable>: RPCWriterProtocol {
    let base: RPCWriter<Element>
    let counter: Counter

    /// Writes to `base`, counting in `counter`.
    public init(base: RPCWriter<Element>, counter: Counter) {
        self.base = base
        self.counter = counter
    }

    public func write(_ element: Element) async throws {
        counter.increment()
        try await base.write(element)
    }
}

/// A transport of the user's own: wraps another and counts the streams it opens (conforms to
/// ClientTransport, with `body` spelled as the requirement spells it).
public struct CountingClientTransport: ClientTransport {
    let base: any ClientTransport
    /// The streams opened so far.
    public let streams = Counter()

    /// Wraps `base`.
    public init(wrapping base: some ClientTransport) {
        self.base = base
    }

    public var clock: any RPCClock { base.clock }

    public func connect() async throws { try await base.connect() }

    public func beginGracefulShutdown() { base.beginGracefulShutdown() }

    public func withStream<Result: Sendable>(
        descriptor: MethodDescriptor,
        options: CallOptions,
        _ body: nonisolated(nonsending) (any ClientTransportStream) async throws -> Result
    ) async throws -> Result {
        streams.increment()
        return try await base.withStream(descriptor: descriptor, options: options, body)
    }
}

/// Where user code ran: thread ids by label.
public final class ThreadLog: Sendable {
    private let entries = Mutex<[(String, pthread_t)]>([])

    /// Creates an empty log.
    public init() {}

    /// Records the calling thread under `label`.
    public func record(_ label: String) {
        let thread = pthread_self()
        entries.withLock { $0.append((label, thread)) }
    }

    /// Everything recorded, in order.
    public var all: [(label: String, thread: pthread_t)] { entries.withLock { $0.map { ($0.0, $0.1) } } }
}
