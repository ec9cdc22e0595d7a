import Courier
import Testing

@testable import CourierHTTP2

/// Every input a fuzz target (Tests/Fuzz, `./dev/fuzz.sh`) found to break Courier, replayed through the code it
/// broke, so that the fix stays. Named after the target that found it.
@Suite("Inputs the fuzzers found")
struct FuzzRegressionTests {
    @Test("fuzz-grpc-timeout: a timeout past 292 years is not encoded shorter (Int64 nanoseconds saturated)")
    func timeoutPastInt64Nanoseconds() throws {
        // The fuzzer's input: 0xFF, then seconds 359_999_996_400 (99,999,999 hours less one), no fraction.
        for duration: Duration in [
            .seconds(359_999_996_400), .seconds(Int64(9_300_000_000)), .seconds(Int64(1) << 34) + .nanoseconds(1),
            .seconds(99_999_999 * 3600),
        ] {
            let encoded = GRPCTimeout.encode(duration)
            #expect(encoded.utf8.count <= 9)
            let decoded = try #require(GRPCTimeout.parse(encoded))
            #expect(decoded >= duration, "\(duration) encoded as \(encoded)")
        }
        #expect(GRPCTimeout.encode(.seconds(9_300_000_000)) == "2583334H")
        #expect(GRPCTimeout.encode(.seconds(Int64.max)) == "99999999H")
    }
}
