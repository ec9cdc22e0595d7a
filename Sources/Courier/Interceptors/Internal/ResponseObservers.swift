internal import Synchronization

// Helpers for interceptors that observe how an RPC ends (metrics, tracing, request logs): each calls its
// closure once, with `nil` for OK or the error the RPC ended with. `package`: not API.

extension RPCError {
    /// The error a client sees for `error` thrown by a call or its response body.
    package init(clientError error: any Error) {
        switch error {
        case let rpcError as RPCError: self = rpcError
        case is CancellationError: self = RPCError(code: .cancelled, message: "The call was cancelled.", cause: error)
        default: self = RPCError(code: .unknown, message: "The call failed.", cause: error)
        }
    }
}

extension StreamingServerResponse {
    /// This response, calling `onEnd` once when it has been produced: `nil` when the producer returned
    /// (the status will be OK), else the error the RPC fails with. A rejected response calls it at once.
    ///
    /// - Parameter onEnd: Called once.
    /// - Returns: The observed response.
    package func observingEnd(_ onEnd: @escaping @Sendable (RPCError?) -> Void) -> Self {
        switch accepted {
        case .failure(let error):
            onEnd(error)
            return self
        case .success(var contents):
            let producer = contents.producer
            contents.producer = { writer in
                let trailers: Metadata
                do {
                    trailers = try await producer(writer)
                } catch {
                    onEnd(RPCError(serverError: error))
                    throw error
                }
                onEnd(nil)
                return trailers
            }
            var observed = self
            observed.accepted = .success(contents)
            return observed
        }
    }
}

extension StreamingClientResponse {
    /// This response, calling `onEnd` once when its body has ended: `nil` for OK, else the call's error. A
    /// rejected response calls it at once. A body abandoned before its end (never read, or read part of
    /// the way: the call is then cancelled) calls it with `CANCELLED` when the last copy of the body is
    /// released.
    ///
    /// - Parameter onEnd: Called once.
    /// - Returns: The observed response.
    package func observingEnd(_ onEnd: @escaping @Sendable (RPCError?) -> Void) -> Self {
        switch accepted {
        case .failure(let error):
            onEnd(error)
            return self
        case .success(var contents):
            contents.bodyParts = RPCAsyncSequence(
                wrapping: ObservedBody(base: contents.bodyParts, end: BodyEnd(onEnd))
            )
            var observed = self
            observed.accepted = .success(contents)
            return observed
        }
    }
}

/// Calls its closure once: when the body ends, or, if it never does, when the body is released.
private final class BodyEnd: Sendable {
    private let onEnd: @Sendable (RPCError?) -> Void
    private let ended = Atomic(false)

    init(_ onEnd: @escaping @Sendable (RPCError?) -> Void) { self.onEnd = onEnd }

    func end(_ error: RPCError?) {
        guard !ended.exchange(true, ordering: .acquiringAndReleasing) else { return }
        onEnd(error)
    }

    deinit {
        if !ended.load(ordering: .acquiring) {
            onEnd(RPCError(code: .cancelled, message: "The response body was abandoned before its end."))
        }
    }
}

private struct ObservedBody<Element: Sendable>: AsyncSequence, Sendable {
    typealias Failure = any Error
    let base: RPCAsyncSequence<Element, any Error>
    let end: BodyEnd

    func makeAsyncIterator() -> Iterator { Iterator(base: base.makeAsyncIterator(), end: end) }

    struct Iterator: AsyncIteratorProtocol {
        var base: RPCAsyncSequence<Element, any Error>.AsyncIterator
        let end: BodyEnd
        var ended = false

        mutating func next(isolation actor: isolated (any Actor)?) async throws -> Element? {
            try await next()
        }

        mutating func next() async throws -> Element? {
            guard !ended else { return nil }
            do {
                if let element = try await base.next() { return element }
                ended = true
                end.end(nil)
                return nil
            } catch {
                ended = true
                end.end(RPCError(clientError: error))
                throw error
            }
        }
    }
}

/// An interceptor that can tell it would pass every RPC straight on (metrics or tracing on a no-op
/// backend). Servers and clients leave such interceptors out of their chains, so that installing them
/// costs nothing until a backend is bootstrapped (and unary RPCs keep the fast path). `package`: not API.
package protocol PassThroughReporting: Sendable {
    /// Whether every RPC would be passed on unchanged and unobserved.
    var passesEveryRPCThrough: Bool { get }
}

/// A server interceptor that also observes RPCs to methods the server doesn't serve, which are answered
/// with `UNIMPLEMENTED` before any interceptor runs: metrics count them under `grpc.method` `other`
/// (gRFC A66), request logs log them. `package`: not API.
package protocol UnregisteredMethodObserving: Sendable {
    /// An RPC to `path`, which no service serves, from `peer`, was answered with `UNIMPLEMENTED`
    /// `duration` after it arrived.
    func observeUnregisteredMethod(path: String, peer: String, duration: Duration)
}

/// A client interceptor that sees the attempts below it, for a call with a retry or hedging policy (an
/// interceptor runs once per call, above the attempts): metrics record gRFC A66's attempt instruments per
/// attempt. `package`: not API.
package protocol ClientAttemptObserving: Sendable {
    /// Attempt `number` (1-based) starts; the closure returned is called once when it ends, with `nil` for
    /// OK or the error it ended with, and its stream's byte counts.
    func attemptStarted(_ number: Int) -> @Sendable (RPCError?, RPCMessageByteCounts?) -> Void
}
