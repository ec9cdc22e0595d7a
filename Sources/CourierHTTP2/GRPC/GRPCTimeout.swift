/// The `grpc-timeout` header: at most 8 ASCII digits and a unit (`H` hours, `M` minutes, `S` seconds,
/// `m` milliseconds, `u` microseconds, `n` nanoseconds).
enum GRPCTimeout {
    /// Parses a header value.
    ///
    /// - Returns: The timeout, or `nil` if the value is malformed (empty, more than 8 digits, a sign, an
    ///   unknown unit).
    static func parse(_ value: some StringProtocol) -> Duration? {
        let utf8 = Array(value.utf8)
        guard utf8.count >= 2, utf8.count <= 9, let unit = utf8.last else { return nil }
        var amount: Int64 = 0
        for byte in utf8.dropLast() {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            amount = amount * 10 + Int64(byte - UInt8(ascii: "0"))
        }
        switch unit {
        case UInt8(ascii: "H"): return .seconds(amount * 3600)
        case UInt8(ascii: "M"): return .seconds(amount * 60)
        case UInt8(ascii: "S"): return .seconds(amount)
        case UInt8(ascii: "m"): return .milliseconds(amount)
        case UInt8(ascii: "u"): return .microseconds(amount)
        case UInt8(ascii: "n"): return .nanoseconds(amount)
        default: return nil
        }
    }

    /// Encodes a timeout in the finest unit whose amount fits in 8 digits, rounding up so that the
    /// server never sees a shorter timeout than the client has. Negative timeouts encode as `0n`.
    static func encode(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        guard seconds >= 0, !(seconds == 0 && attoseconds <= 0) else { return "0n" }
        let limit: Int64 = 99_999_999
        // Total nanoseconds, rounded up. Past Int64 nanoseconds (292 years) the count is whole seconds,
        // rounded up: saturating the nanoseconds instead encoded 292 years for anything longer (found by
        // fuzz-grpc-timeout), a shorter timeout than the caller's.
        let (wholeNanos, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        let fraction = (attoseconds + 999_999_999) / 1_000_000_000
        guard !overflow, !wholeNanos.addingReportingOverflow(fraction).overflow else {
            let wholeSeconds = seconds == .max ? seconds : seconds + (attoseconds > 0 ? 1 : 0)
            for (size, unit) in [(Int64(1), "S"), (60, "M"), (3600, "H")] {
                let amount = wholeSeconds / size + (wholeSeconds % size == 0 ? 0 : 1)
                if amount <= limit { return "\(amount)\(unit)" }
            }
            return "\(limit)H"
        }
        let nanos = wholeNanos + fraction
        let units: [(Int64, Character)] = [
            (1, "n"), (1_000, "u"), (1_000_000, "m"), (1_000_000_000, "S"), (60_000_000_000, "M"),
            (3_600_000_000_000, "H"),
        ]
        for (size, unit) in units {
            let amount = nanos / size + (nanos % size == 0 ? 0 : 1)
            if amount <= limit { return "\(amount)\(unit)" }
        }
        return "\(limit)H"
    }
}
