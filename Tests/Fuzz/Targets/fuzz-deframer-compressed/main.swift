// A server stream's request body with `grpc-encoding: gzip` or `deflate`: deframing, decompression with its
// limit (zip bombs), and the window accounting, through the stream state machine the transport uses.
// Input: [algorithm][limit choice][chunk seed][body...].
internal import Courier
internal import CourierFuzzSupport

@testable internal import CourierHTTP2

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDeframerCompressed(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    var input = FuzzInput(data, count)
    let encodings = ["gzip", "deflate", "identity"]
    let encoding = encodings[Int(input.byte()) % encodings.count]
    let limits: [Int?] = [4 * 1024 * 1024, nil, 0, 100, 64 * 1024]
    let limit = limits[Int(input.byte()) % limits.count]
    let seed = input.byte()
    let body = input.rest()

    var machine = GRPCStreamStateMachine(
        configuration: .server(.init(maxRequestMessageBytes: limit, maxBufferedBytes: 64 * 1024))
    )
    var head = GRPCRequestHead(maxListBytes: 16 * 1024)
    head.path = "/fuzz.Fuzz/Method"
    head.methodIsPOST = true
    head.hasGRPCContentType = true
    head.encoding = encoding
    fuzzCheck(machine.receiveRequestHead(head, endStream: false) == .serve, "a valid head was rejected")

    var received = 0
    var released = 0
    var failed = false
    func drain() {
        while true {
            let next = machine.nextInbound()
            released += next.releaseWindow
            switch next.result {
            case .part(.message(let message)):
                if let limit { fuzzCheck(message.count <= limit, "a decompressed message over the limit") }
            case .part: fuzzCheck(false, "a server stream delivered a non-message part")
            case .failed(let error):
                fuzzCheck(error.code == .internal || error.code == .resourceExhausted, "status \(error.code)")
                failed = true
                return
            case .end, .wait: return
            }
        }
    }
    for chunk in FuzzInput.chunks(of: body, seed: seed) {
        received += chunk.count
        let result = chunk.withUnsafeBytes { machine.receiveData($0) }
        released += result.releaseWindow
        if case .terminate(let error) = result.failure {
            fuzzCheck(error.code == .internal || error.code == .resourceExhausted, "status \(error.code)")
            failed = true
        }
        drain()
    }
    released += machine.receiveEndOfStream().releaseWindow
    drain()
    released += machine.releaseHeldWindow()
    // Every byte received goes back to the peer's window exactly once, whatever the body held.
    fuzzCheck(released == received, "released \(released) of \(received) bytes (failed: \(failed))")
    return 0
}
