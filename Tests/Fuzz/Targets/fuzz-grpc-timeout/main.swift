// `grpc-timeout`: parsing arbitrary values, and the encoder's promise (never shorter, at most 8 digits).
// Input: a header value, or (first byte 0xFF) 16 bytes of a Duration to encode.
internal import CourierFuzzSupport

@testable internal import CourierHTTP2

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzGRPCTimeout(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    var input = FuzzInput(data, count)
    if input.bytes.first == 0xFF {
        _ = input.byte()
        var seconds: Int64 = 0
        var attoseconds: Int64 = 0
        for byte in input.take(8) { seconds = seconds << 8 | Int64(byte) }
        for byte in input.take(8) { attoseconds = attoseconds << 8 | Int64(byte) }
        let duration = Duration(
            secondsComponent: seconds,
            attosecondsComponent: attoseconds % 1_000_000_000_000_000_000
        )
        check(encoded: GRPCTimeout.encode(duration), of: duration)
        return 0
    }
    let value = String(decoding: input.rest(), as: UTF8.self)
    if let parsed = GRPCTimeout.parse(value) {
        fuzzCheck(parsed >= .zero, "'\(value)' parsed as the negative \(parsed)")
        check(encoded: GRPCTimeout.encode(parsed), of: parsed)
    }
    return 0
}

private func check(encoded: String, of duration: Duration) {
    guard let decoded = GRPCTimeout.parse(encoded) else {
        fuzzCheck(false, "encode(\(duration)) = '\(encoded)' does not parse")
        return
    }
    fuzzCheck(encoded.utf8.count <= 9, "'\(encoded)' has more than 8 digits")
    let longest = Duration.seconds(Int64(99_999_999) * 3600)
    if duration > .zero && duration <= longest {
        fuzzCheck(decoded >= duration, "encode(\(duration)) = '\(encoded)' is shorter")
    }
}
