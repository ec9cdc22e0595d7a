/// A message compression algorithm, by its `grpc-encoding` name.
public struct CompressionAlgorithm: Sendable, Hashable, CustomStringConvertible {
    /// The name sent in `grpc-encoding`.
    public let name: String

    private init(_ name: String) { self.name = name }

    /// No compression.
    public static let identity = CompressionAlgorithm("identity")
    /// gzip (RFC 1952).
    public static let gzip = CompressionAlgorithm("gzip")
    /// deflate (zlib format, RFC 1950).
    public static let deflate = CompressionAlgorithm("deflate")

    /// The algorithms Courier implements.
    public static let all: [CompressionAlgorithm] = [.gzip, .deflate, .identity]

    /// The algorithm with a `grpc-encoding` name, if Courier implements it.
    ///
    /// - Parameter name: The name, such as `gzip`.
    public init?(name: some StringProtocol) {
        guard let known = Self.all.first(where: { $0.name == name }) else { return nil }
        self = known
    }

    public var description: String { name }
}
