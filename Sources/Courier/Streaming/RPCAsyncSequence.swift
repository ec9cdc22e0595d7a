/// A type-erased asynchronous sequence: how streams of messages reach user code.
///
/// Server handlers receive request messages as an `RPCAsyncSequence`, and clients receive response
/// messages the same way. Interceptors wrap one in another to observe or change each message.
/// Iterating it does not hop threads: elements are handed over by the transport on the caller's
/// executor (or the transport's event loop, which handlers run on).
public struct RPCAsyncSequence<Element: Sendable, Failure: Error>: AsyncSequence, @unchecked Sendable {
    // @unchecked Sendable: an existential can't spell `any AsyncSequence<...> & Sendable` with primary
    // associated types, so the `Sendable` requirement is enforced by `init` and dropped here.
    @usableFromInline
    let wrapped: any AsyncSequence<Element, Failure>

    /// Wraps another sequence.
    ///
    /// - Parameter other: The sequence to wrap.
    @inlinable
    public init<Source: AsyncSequence<Element, Failure> & Sendable>(wrapping other: Source) {
        self.wrapped = other
    }

    @inlinable
    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(wrapped.makeAsyncIterator())
    }

    /// The iterator.
    public struct AsyncIterator: AsyncIteratorProtocol {
        @usableFromInline
        var wrapped: any AsyncIteratorProtocol<Element, Failure>

        @inlinable
        init(_ wrapped: any AsyncIteratorProtocol<Element, Failure>) {
            self.wrapped = wrapped
        }

        @inlinable
        public mutating func next(isolation actor: isolated (any Actor)?) async throws(Failure) -> Element? {
            try await wrapped.next(isolation: actor)
        }

        @inlinable
        public mutating func next() async throws -> Element? {
            try await next(isolation: nil)
        }
    }
}

@available(*, unavailable)
extension RPCAsyncSequence.AsyncIterator: Sendable {}

extension RPCAsyncSequence where Failure == any Error {
    /// A sequence of exactly the given elements.
    ///
    /// - Parameter elements: The elements.
    public static func elements(_ elements: [Element]) -> Self {
        RPCAsyncSequence(wrapping: ArraySequence(elements: elements))
    }

    /// A sequence that throws `error` after yielding nothing.
    ///
    /// - Parameter error: The error.
    public static func throwing(_ error: any Error) -> Self {
        RPCAsyncSequence(wrapping: ThrowingSequence<Element>(error: error))
    }
}

private struct ArraySequence<Element: Sendable>: AsyncSequence, Sendable {
    typealias Failure = any Error
    let elements: [Element]
    func makeAsyncIterator() -> Iterator { Iterator(base: elements.makeIterator()) }
    struct Iterator: AsyncIteratorProtocol {
        var base: IndexingIterator<[Element]>
        mutating func next(isolation actor: isolated (any Actor)?) async throws -> Element? { base.next() }
        mutating func next() async throws -> Element? { base.next() }
    }
}

private struct ThrowingSequence<Element: Sendable>: AsyncSequence, Sendable {
    typealias Failure = any Error
    let error: any Error
    func makeAsyncIterator() -> Iterator { Iterator(error: error) }
    struct Iterator: AsyncIteratorProtocol {
        let error: any Error
        mutating func next(isolation actor: isolated (any Actor)?) async throws -> Element? { throw error }
        mutating func next() async throws -> Element? { throw error }
    }
}
