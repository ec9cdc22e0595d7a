// Response HEADERS blocks as a client validates them (response head, trailers, Trailers-Only; HTTP status
// mapping, grpc-status, grpc-message, grpc-encoding, metadata), then DATA between them.
// Input: blocks of [kind][field count][name field][value field]...; kind bit 0: END_STREAM, bit 1: a DATA
// frame follows (a length-prefixed field).
internal import Courier
internal import CourierFuzzSupport

@testable internal import CourierHTTP2

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzResponseHead(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    var input = FuzzInput(data, count)
    var machine = GRPCStreamStateMachine(
        configuration: .client(
            .init(
                requestCompression: nil,
                maxResponseMessageBytes: 1024 * 1024,
                maxBufferedBytes: 64 * 1024,
                replayLimit: 64 * 1024,
                maxTransparentRetries: 1
            )
        )
    )
    fuzzCheck(machine.sendRequestHead([:]) == .open, "request head refused")
    machine.streamOpened()
    var statuses = 0
    var ended = false
    while !input.isAtEnd, !ended {
        let kind = input.byte()
        let fields = Int(input.byte() % 16)
        var head = GRPCResponseHead()
        for _ in 0..<fields {
            let name = String(decoding: input.field(), as: UTF8.self)
            let value = String(decoding: input.field(), as: UTF8.self)
            guard head.add(name: name, value: value, maxListBytes: 8 * 1024) else { break }
        }
        switch machine.receiveResponseHead(head, endStream: kind & 1 == 1) {
        case .failed:
            ended = true
        case .ignore, .delivered:
            break
        }
        if kind & 2 == 2 {
            let body = input.field()
            let result = body.withUnsafeBytes { machine.receiveData($0) }
            if result.failure != nil { ended = true }
        }
        while case .part(let part) = machine.nextInbound().result {
            if case .status(let status, _) = part {
                statuses += 1
                if status.code == .ok { fuzzCheck(head.grpcStatus != nil, "OK without grpc-status") }
            }
        }
    }
    if !ended { _ = machine.receiveEndWithoutTrailers() }
    while case .part(let part) = machine.nextInbound().result {
        if case .status = part { statuses += 1 }
    }
    fuzzCheck(statuses <= 1, "\(statuses) statuses for one call")
    return 0
}
