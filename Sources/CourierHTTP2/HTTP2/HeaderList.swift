internal import CNGHTTP2

/// A header block laid out for nghttp2: names and values in one byte buffer, `nghttp2_nv`s pointing
/// into it. nghttp2 copies what it is given, so the block only has to live for the submit call.
struct HeaderList {
    private(set) var fields: [(name: String, value: String)] = []

    init(_ fields: [(name: String, value: String)] = []) {
        self.fields = fields
    }

    mutating func add(_ name: String, _ value: String) {
        fields.append((name, value))
    }

    mutating func add(contentsOf other: [(name: String, value: String)]) {
        fields.append(contentsOf: other)
    }

    func withNV<R>(_ body: (UnsafePointer<nghttp2_nv>, Int) -> R) -> R {
        var bytes: [UInt8] = []
        var offsets: [(Int, Int, Int, Int)] = []
        offsets.reserveCapacity(fields.count)
        for field in fields {
            let nameStart = bytes.count
            bytes.append(contentsOf: field.name.utf8)
            let valueStart = bytes.count
            bytes.append(contentsOf: field.value.utf8)
            offsets.append((nameStart, valueStart - nameStart, valueStart, bytes.count - valueStart))
        }
        return bytes.withUnsafeMutableBufferPointer { storage in
            let base = storage.baseAddress ?? UnsafeMutablePointer<UInt8>.allocate(capacity: 1)
            var nvs = offsets.map { offset in
                nghttp2_nv(
                    name: base + offset.0,
                    value: base + offset.2,
                    namelen: offset.1,
                    valuelen: offset.3,
                    flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue)
                )
            }
            if nvs.isEmpty {
                var dummy = nghttp2_nv()
                return body(&dummy, 0)
            }
            let result = nvs.withUnsafeMutableBufferPointer { body($0.baseAddress!, $0.count) }
            if storage.baseAddress == nil { base.deallocate() }
            return result
        }
    }
}
