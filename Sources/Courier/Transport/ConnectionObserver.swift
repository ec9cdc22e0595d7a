/// Hears about a transport's connections and streams as they open and close, for gauges such as open
/// connections and active streams (`CourierMetrics`' `ConnectionMetrics` is one).
///
/// A transport calls it on its own threads (the HTTP/2 transports: the event loop that owns the
/// connection), once per event, never per message: an implementation must be thread-safe and quick, and
/// must not block. Every `…Opened` is matched by one `…Closed`.
public protocol ConnectionObserver: Sendable {
    /// A connection opened (server: accepted; client: connected, before its HTTP/2 session starts).
    func connectionOpened()
    /// A connection that ``connectionOpened()`` reported has closed.
    func connectionClosed()
    /// An RPC's stream opened on a connection.
    func streamOpened()
    /// A stream that ``streamOpened()`` reported has closed.
    func streamClosed()
}
