public import CoreMetrics  // init takes a MetricsFactory
public import Courier  // conforms to ConnectionObserver

/// Gauges of a transport's open connections and active streams, as swift-metrics meters: give it to the
/// HTTP/2 transport's configuration (`configuration.connectionObserver`).
///
/// ```swift
/// var configuration = HTTP2ServerTransport.Configuration()
/// configuration.connectionObserver = ConnectionMetrics(side: .server)
/// ```
///
/// The meters are `courier.server.connections` and `courier.server.streams` (or `courier.client.…`):
/// gRFC A66 defines no connection instruments, so these carry Courier's prefix. The transport reports
/// once per connection or stream event, never per message.
public struct ConnectionMetrics: ConnectionObserver {
    /// Which end of the connections the transport is.
    public enum Side: String, Sendable {
        /// A server transport: accepted connections.
        case server
        /// A client transport: dialled connections.
        case client
    }

    /// The meter names: `courier.<side>.connections` and `courier.<side>.streams`.
    public static func names(side: Side) -> (connections: String, streams: String) {
        ("courier.\(side.rawValue).connections", "courier.\(side.rawValue).streams")
    }

    private let connections: Meter
    private let streams: Meter

    /// Creates the gauges.
    ///
    /// - Parameters:
    ///   - side: Which end the transport is; it names the meters.
    ///   - dimensions: Labels for both meters, such as `[("courier.transport", "public")]` when a process
    ///     runs several transports.
    ///   - factory: Where the meters are made; default: the bootstrapped `MetricsSystem.factory`.
    public init(side: Side, dimensions: [(String, String)] = [], factory: (any MetricsFactory)? = nil) {
        let factory = factory ?? MetricsSystem.factory
        let names = Self.names(side: side)
        self.connections = Meter(label: names.connections, dimensions: dimensions, factory: factory)
        self.streams = Meter(label: names.streams, dimensions: dimensions, factory: factory)
    }

    public func connectionOpened() { connections.increment() }
    public func connectionClosed() { connections.decrement() }
    public func streamOpened() { streams.increment() }
    public func streamClosed() { streams.decrement() }
}
