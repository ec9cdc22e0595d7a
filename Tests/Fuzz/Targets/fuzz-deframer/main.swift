// The gRPC message deframer (5-byte prefix + message) on arbitrary bytes, in arbitrary DATA-frame cuts.
// Input: [limit choice][chunk seed][compression allowed][body...].
internal import Courier
internal import CourierFuzzSupport

@testable internal import CourierHTTP2

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDeframer(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    var input = FuzzInput(data, count)
    let limits: [Int?] = [nil, 0, 1, 16, 1024, 4 * 1024 * 1024]
    let limit = limits[Int(input.byte()) % limits.count]
    let seed = input.byte()
    let compressionAllowed = input.byte() & 1 == 1
    let body = input.rest()
    var deframer = GRPCMessageDeframer(maxMessageBytes: limit, compressionAllowed: compressionAllowed)
    var emitted = 0
    var messages = 0
    do {
        for chunk in FuzzInput.chunks(of: body, seed: seed) {
            try chunk.withUnsafeBytes { bytes in
                try deframer.process(bytes) { message in
                    messages += 1
                    emitted += 5 + message.bytes.count
                    if let limit { fuzzCheck(message.bytes.count <= limit, "a message over the limit was emitted") }
                    fuzzCheck(compressionAllowed || !message.compressed, "a compressed message without an encoding")
                }
            }
        }
        try deframer.finish()
        fuzzCheck(emitted == body.count, "complete body, but \(emitted) of \(body.count) bytes emitted")
    } catch let failure as GRPCMessageDeframer.Failure {
        // Every failure maps to a status: RESOURCE_EXHAUSTED for a message over the limit, else INTERNAL.
        let code = failure.rpcError.code
        fuzzCheck(code == .internal || code == .resourceExhausted, "unexpected status \(code)")
    } catch {
        fuzzCheck(false, "unexpected error \(error)")
    }
    fuzzCheck(emitted <= body.count, "emitted more bytes than received")
    return 0
}
