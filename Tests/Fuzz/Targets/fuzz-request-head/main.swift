// A request's HEADERS as the server validates them: each field through `GRPCRequestHead.add` (byte
// matching, the header-list limit, metadata and base64), then the head through the stream state machine.
// Input: [limit choice][end stream][name field][value field]... (one length byte, then the bytes, per field).
internal import Courier
internal import CourierFuzzSupport

@testable internal import CourierHTTP2

// nonisolated(unsafe): libFuzzer calls the target on one thread only.
nonisolated(unsafe) private let paths = PathInterner()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRequestHead(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    var input = FuzzInput(data, count)
    let limits = [16 * 1024, 64, 1024]
    var head = GRPCRequestHead(maxListBytes: limits[Int(input.byte()) % limits.count])
    let endStream = input.byte() & 1 == 1
    var withinLimit = true
    while !input.isAtEnd, withinLimit {
        let name = input.field()
        let value = input.field()
        withinLimit = name.withUnsafeBufferPointer { name in
            value.withUnsafeBufferPointer { value in
                head.add(
                    name: HeaderBytes(base: name.baseAddress, count: name.count),
                    value: HeaderBytes(base: value.baseAddress, count: value.count),
                    paths: paths
                )
            }
        }
    }
    guard withinLimit else { return 0 }  // the stream is reset (431-like); nothing more to check
    var machine = GRPCStreamStateMachine(
        configuration: .server(.init(maxRequestMessageBytes: 4 * 1024 * 1024, maxBufferedBytes: 64 * 1024))
    )
    switch machine.receiveRequestHead(head, endStream: endStream) {
    case .serve:
        fuzzCheck(head.methodIsPOST && head.hasGRPCContentType && !head.path.isEmpty, "served an invalid head")
        fuzzCheck(head.invalidMetadata == nil, "served a head with invalid metadata")
        if let timeout = machine.timeout { fuzzCheck(timeout >= .zero, "negative timeout") }
    case .reject(.trailersOnly(let status)):
        fuzzCheck(status.code != .ok, "rejected with OK")
    case .reject:
        break
    }
    return 0
}
