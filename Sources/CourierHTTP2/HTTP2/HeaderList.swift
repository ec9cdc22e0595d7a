internal import CNGHTTP2

#if canImport(Glibc)
internal import Glibc
#endif

/// A header block laid out for nghttp2: names and values in one byte buffer, `nghttp2_nv`s pointing
/// into it. nghttp2 copies what it is given, so the block only has to live for the submit call; it is
/// laid out on the stack (no heap allocation per block).
struct HeaderList {
    private(set) var fields: [(name: String, value: String)] = []

    init(_ fields: [(name: String, value: String)] = []) {
        self.fields = fields
    }

    /// An empty list with room for `capacity` fields, so that adding them allocates once.
    init(capacity: Int) {
        fields.reserveCapacity(capacity)
    }

    mutating func add(_ name: String, _ value: String) {
        fields.append((name, value))
    }

    mutating func add(contentsOf other: [(name: String, value: String)]) {
        fields.append(contentsOf: other)
    }

    func withNV<R>(_ body: (UnsafePointer<nghttp2_nv>, Int) -> R) -> R {
        var byteCount = 0
        for index in fields.indices { byteCount += fields[index].name.utf8.count + fields[index].value.utf8.count }
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: max(1, byteCount)) { bytes in
            withUnsafeTemporaryAllocation(of: nghttp2_nv.self, capacity: max(1, fields.count)) { nvs in
                var offset = 0
                // By index, the strings borrowed in place: a `for field in fields` copy, and the `var` that
                // `withUTF8` needs, retained each string twice (32 retains per request head).
                for index in fields.indices {
                    let name = HeaderList.copy(fields[index].name, into: bytes, at: &offset)
                    let value = HeaderList.copy(fields[index].value, into: bytes, at: &offset)
                    nvs.initializeElement(
                        at: index,
                        to: nghttp2_nv(
                            name: name.baseAddress,
                            value: value.baseAddress,
                            namelen: name.count,
                            valuelen: value.count,
                            flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue)
                        )
                    )
                }
                return body(nvs.baseAddress!, fields.count)
            }
        }
    }

    private static func copy(
        _ string: borrowing String,
        into bytes: UnsafeMutableBufferPointer<UInt8>,
        at offset: inout Int
    ) -> UnsafeMutableBufferPointer<UInt8> {
        let start = offset
        let copied = string.utf8.withContiguousStorageIfAvailable { utf8 in
            if let source = utf8.baseAddress { (bytes.baseAddress! + start).update(from: source, count: utf8.count) }
            return utf8.count
        }
        if let copied {
            offset += copied
        } else {  // not contiguous UTF-8 (a bridged string): copied byte by byte
            let owned = copy string
            for byte in owned.utf8 {
                bytes[offset] = byte
                offset += 1
            }
        }
        return UnsafeMutableBufferPointer(rebasing: bytes[start..<offset])
    }
}

/// A header block that never changes (the usual response head, `grpc-status: 0`): laid out once, for
/// the life of the process, and handed to nghttp2 with the no-copy flags.
final class StaticHeaderList: @unchecked Sendable {
    // @unchecked Sendable: immutable after init; the memory is never freed.
    let nv: UnsafePointer<nghttp2_nv>
    let count: Int

    init(_ fields: [(name: String, value: String)]) {
        let nvs = UnsafeMutablePointer<nghttp2_nv>.allocate(capacity: max(1, fields.count))
        for (index, field) in fields.enumerated() {
            let name = StaticHeaderList.immortalCopy(field.name)
            let value = StaticHeaderList.immortalCopy(field.value)
            let flags = UInt8(NGHTTP2_NV_FLAG_NO_COPY_NAME.rawValue | NGHTTP2_NV_FLAG_NO_COPY_VALUE.rawValue)
            (nvs + index).initialize(
                to: nghttp2_nv(
                    name: name.base,
                    value: value.base,
                    namelen: name.count,
                    valuelen: value.count,
                    flags: flags
                )
            )
        }
        self.nv = UnsafePointer(nvs)
        self.count = fields.count
    }

    private static func immortalCopy(_ string: String) -> (base: UnsafeMutablePointer<UInt8>, count: Int) {
        let utf8 = Array(string.utf8)
        let base = UnsafeMutablePointer<UInt8>.allocate(capacity: max(1, utf8.count))
        base.initialize(from: utf8, count: utf8.count)
        return (base, utf8.count)
    }

    /// `:status 200`, `content-type: application/grpc`, `grpc-accept-encoding`: the head of a response
    /// without compression or metadata.
    static let plainResponse = StaticHeaderList([
        (":status", "200"), ("content-type", "application/grpc"), ("grpc-accept-encoding", GRPCHeaders.acceptEncoding),
    ])

    /// `grpc-status: 0` and nothing else: the trailers of a successful call without trailing metadata.
    static let okTrailers = StaticHeaderList([("grpc-status", "0")])
}
