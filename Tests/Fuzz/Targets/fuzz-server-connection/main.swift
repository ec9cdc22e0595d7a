// The server's whole HTTP/2 + gRPC path fed arbitrary bytes as a client's: one connection per input, the
// peer reading everything, then closing. It must end in answers, resets, a GOAWAY or a closed connection:
// never a trap, a hang (the harness's bound, libFuzzer's -timeout) or unbounded memory (-rss_limit_mb).
// Input: [chunk seed][bytes the client sends...] (seeds start with the client preface).
internal import CourierFuzzSupport

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzServerConnection(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    var input = FuzzInput(data, count)
    let seed = input.byte()
    ServerHarness.shared.run(input.rest(), seed: seed)
    return 0
}
