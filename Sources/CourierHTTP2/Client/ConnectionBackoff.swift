/// gRPC's connection backoff (grpc/grpc doc/connection-backoff.md): 1 s, ×1.6 per attempt, ±20 % jitter,
/// at most 120 s.
public struct ConnectionBackoff: Sendable, Hashable {
    /// The first delay. Default 1 s.
    public var initial: Duration
    /// The growth per attempt. Default 1.6.
    public var multiplier: Double
    /// The random spread, as a fraction of the delay. Default 0.2.
    public var jitter: Double
    /// The longest delay. Default 120 s.
    public var maximum: Duration

    /// Creates a backoff.
    ///
    /// - Parameters:
    ///   - initial: The first delay.
    ///   - multiplier: The growth per attempt.
    ///   - jitter: The random spread, as a fraction.
    ///   - maximum: The longest delay.
    public init(
        initial: Duration = .seconds(1),
        multiplier: Double = 1.6,
        jitter: Double = 0.2,
        maximum: Duration = .seconds(120)
    ) {
        self.initial = initial
        self.multiplier = multiplier
        self.jitter = jitter
        self.maximum = maximum
    }

    struct Iterator: Equatable {
        let backoff: ConnectionBackoff
        var current: Double

        mutating func next() -> Duration {
            let base = min(current, Self.seconds(backoff.maximum))
            current = min(current * backoff.multiplier, Self.seconds(backoff.maximum))
            let spread = base * backoff.jitter
            return .milliseconds(Int64(max(0, base + Double.random(in: -spread...spread)) * 1000))
        }

        /// The delay the next call of ``next()`` is based on, without jitter: the connect timeout of an
        /// attempt is at least this (grpc/grpc doc/connection-backoff.md).
        var upcoming: Duration {
            .milliseconds(Int64(min(current, Self.seconds(backoff.maximum)) * 1000))
        }

        static func seconds(_ duration: Duration) -> Double {
            Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        }
    }

    func makeIterator() -> Iterator {
        Iterator(backoff: self, current: Iterator.seconds(initial))
    }
}
