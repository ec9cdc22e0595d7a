// What an example server tells a soak about itself: its open connections and live streams, in a file.
public import Courier
internal import Synchronization

#if canImport(Glibc)
internal import Glibc
#endif

/// Counts a server transport's open connections and live streams (install it as the transport's
/// `connectionObserver`) and publishes them to a file for scripts (`dev/soak.sh`).
public final class ConnectionStats: ConnectionObserver {
    private let connections = Atomic<Int>(0)
    private let streams = Atomic<Int>(0)

    /// Creates a counter at zero.
    public init() {}

    public func connectionOpened() { connections.add(1, ordering: .relaxed) }
    public func connectionClosed() { connections.subtract(1, ordering: .relaxed) }
    public func streamOpened() { streams.add(1, ordering: .relaxed) }
    public func streamClosed() { streams.subtract(1, ordering: .relaxed) }

    /// Writes `connections=N streams=M` to `path` (a temporary file, then a rename, so that a reader never
    /// sees half a line), every 200 ms until cancelled.
    public func publish(to path: String) async {
        let temporary = path + ".tmp"
        while !Task.isCancelled {
            let line =
                "connections=\(connections.load(ordering: .relaxed)) streams=\(streams.load(ordering: .relaxed))\n"
            if let file = fopen(temporary, "w") {
                fputs(line, file)
                fclose(file)
                rename(temporary, path)
            }
            try? await Task.sleep(for: .milliseconds(200))
        }
    }
}
