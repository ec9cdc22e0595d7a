// A client connection fed arbitrary bytes as its server's, with one to four calls (the four kinds) on it:
// every call must end with a status or an error and the connection must close, never a trap, a hang or
// unbounded memory. Input: [call options (see ClientHarness.run)][chunk seed][server bytes...].
internal import CourierFuzzSupport

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzClientConnectionInput(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    var input = FuzzInput(data, count)
    let options = input.byte()
    let seed = input.byte()
    fuzzClientConnection(input.rest(), options: options, seed: seed)
    return 0
}
