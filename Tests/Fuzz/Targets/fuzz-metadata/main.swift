// Received metadata: names and values as a peer may send them, `-bin` values in base64 (padded or not,
// comma-joined), then sent back: what arrives must round-trip.
// Input: [name field][value field]... (one length byte, then the bytes, per field).
internal import Courier
internal import CourierFuzzSupport

@testable internal import CourierHTTP2

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMetadata(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    var input = FuzzInput(data, count)
    var metadata = Metadata()
    while !input.isAtEnd {
        let name = String(decoding: input.field(), as: UTF8.self)
        let valueBytes = input.field()
        let value = String(decoding: valueBytes, as: UTF8.self)
        if let decoded = Base64.decode(value) {
            fuzzCheck(Base64.decode(Base64.encode(decoded)) == decoded, "base64 does not round-trip")
        }
        fuzzCheck(Base64.decode(Base64.encode(valueBytes)) == valueBytes, "base64 of raw bytes does not round-trip")
        do {
            try GRPCHeaders.addReceived(name: name, value: value, to: &metadata)
        } catch {
            fuzzCheck(error.code == .internal, "status \(error.code) for bad metadata")
            fuzzCheck(name.hasSuffix("-bin"), "only -bin values can be invalid")
        }
    }
    // What is sent is what would be received again.
    var again = Metadata()
    for field in GRPCHeaders.fields(for: metadata) {
        do {
            try GRPCHeaders.addReceived(name: field.name, value: field.value, to: &again)
        } catch {
            fuzzCheck(false, "sent metadata '\(field.name)' does not parse back")
        }
    }
    fuzzCheck(again.count == GRPCHeaders.fields(for: metadata).count, "fields lost on the way back")
    return 0
}
