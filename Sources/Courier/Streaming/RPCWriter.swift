/// Something that messages can be written to, with backpressure.
///
/// `write` suspends while the reader has not caught up (the transport's buffers or the peer's
/// flow-control window are full), so a fast producer never holds more than a bounded amount of memory.
/// It throws once the RPC can no longer carry messages: the peer finished or cancelled it, or its
/// deadline passed.
public protocol RPCWriterProtocol<Element>: Sendable {
    /// The type of element written.
    associatedtype Element: Sendable

    /// Writes one element, suspending until there is room for it.
    ///
    /// - Parameter element: The element.
    /// - Throws: ``RPCError`` when the RPC has ended.
    func write(_ element: Element) async throws

    /// Writes one element with per-message options, suspending until there is room for it.
    ///
    /// Writers that carry messages to a transport honour the options; writers that only transform
    /// elements pass them on. The default implementation ignores them.
    ///
    /// - Parameters:
    ///   - element: The element.
    ///   - options: How to send this message, such as ``RPCWriteOptions/uncompressed``.
    /// - Throws: ``RPCError`` when the RPC has ended.
    func write(_ element: Element, options: RPCWriteOptions) async throws

    /// Writes elements in order. See ``write(_:)``.
    ///
    /// - Parameter elements: The elements.
    func write(contentsOf elements: some Sequence<Element>) async throws
}

extension RPCWriterProtocol {
    /// Ignores `options` and writes `element`.
    public func write(_ element: Element, options: RPCWriteOptions) async throws {
        try await write(element)
    }

    /// Writes each element in turn.
    public func write(contentsOf elements: some Sequence<Element>) async throws {
        for element in elements { try await write(element) }
    }
}

/// A type-erased ``RPCWriterProtocol``: how user code writes streaming messages.
///
/// ```swift
/// try await writer.write(reply)
/// ```
public struct RPCWriter<Element: Sendable>: RPCWriterProtocol {
    @usableFromInline
    let wrapped: any RPCWriterProtocol<Element>

    /// Wraps another writer.
    ///
    /// - Parameter other: The writer to wrap.
    @inlinable
    public init(wrapping other: some RPCWriterProtocol<Element>) {
        self.wrapped = other
    }

    @inlinable
    public func write(_ element: Element) async throws {
        try await wrapped.write(element)
    }

    @inlinable
    public func write(_ element: Element, options: RPCWriteOptions) async throws {
        try await wrapped.write(element, options: options)
    }

    @inlinable
    public func write(contentsOf elements: some Sequence<Element>) async throws {
        try await wrapped.write(contentsOf: elements)
    }
}

/// Per-message options for ``RPCWriterProtocol/write(_:options:)``.
///
/// ```swift
/// try await writer.write(alreadyCompressedImage, options: .uncompressed)
/// ```
public struct RPCWriteOptions: Sendable, Hashable {
    /// Whether the message may be compressed with the call's compression (the default). Set it to
    /// `false` for data that doesn't compress, or whose compressed size could leak secrets (CRIME/BREACH).
    public var compress: Bool

    /// Creates options.
    ///
    /// - Parameter compress: See ``compress``.
    public init(compress: Bool = true) {
        self.compress = compress
    }

    /// Compress if the call compresses.
    public static var `default`: RPCWriteOptions { RPCWriteOptions() }

    /// Send this message uncompressed even if the call compresses.
    public static var uncompressed: RPCWriteOptions { RPCWriteOptions(compress: false) }
}

/// A writer that transforms each element before passing it on, for interceptors.
public struct MappingRPCWriter<Element: Sendable, Base: Sendable>: RPCWriterProtocol {
    private let base: RPCWriter<Base>
    private let transform: @Sendable (Element) async throws -> Base

    /// Creates a writer that applies `transform` and writes the result to `base`.
    ///
    /// - Parameters:
    ///   - base: The writer to write to.
    ///   - transform: Applied to each element; it may observe, change or reject (by throwing) it.
    public init(base: RPCWriter<Base>, transform: @escaping @Sendable (Element) async throws -> Base) {
        self.base = base
        self.transform = transform
    }

    public func write(_ element: Element) async throws {
        try await base.write(transform(element))
    }

    public func write(_ element: Element, options: RPCWriteOptions) async throws {
        try await base.write(transform(element), options: options)
    }
}
