// `grpc-message`: percent-decoding arbitrary values never fails, and encoding any string decodes back to it.
internal import CourierFuzzSupport

@testable internal import CourierHTTP2

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzGRPCMessage(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let value = String(decoding: UnsafeBufferPointer(start: data, count: count), as: UTF8.self)
    let decoded = GRPCStatusMessage.decode(value)
    for text in [value, decoded] {
        let encoded = GRPCStatusMessage.encode(text)
        fuzzCheck(encoded.utf8.allSatisfy { $0 >= 0x20 && $0 <= 0x7E }, "encode left a byte outside 0x20-0x7E")
        fuzzCheck(GRPCStatusMessage.decode(encoded) == text, "decode(encode(s)) != s")
    }
    return 0
}
