/// ALPN protocol lists in their wire form (RFC 7301, section 3.1): each name is a length byte followed by
/// that many bytes, and names are never empty. Courier speaks HTTP/2 only: a client offers `h2`, a server
/// selects it or refuses the connection. Pure Swift; `TLSSession.swift` hands OpenSSL's buffers to it.
enum ALPN {
    /// The protocol name of HTTP/2 over TLS.
    static let h2: [UInt8] = Array("h2".utf8)

    /// The list a client offers: `h2` alone.
    static let clientOffer: [UInt8] = [UInt8(h2.count)] + h2

    /// The names in `list`, in order; nil if the list is malformed: empty, a zero-length name, or a length
    /// that runs past the end.
    static func protocolNames<Bytes: Collection<UInt8>>(in list: Bytes) -> [Bytes.SubSequence]? {
        guard !list.isEmpty else { return nil }
        var names: [Bytes.SubSequence] = []
        var index = list.startIndex
        while index != list.endIndex {
            let length = Int(list[index])
            let start = list.index(after: index)
            guard length > 0, let end = list.index(start, offsetBy: length, limitedBy: list.endIndex) else {
                return nil
            }
            names.append(list[start..<end])
            index = end
        }
        return names
    }

    /// Where the name `h2` is in a client's list (its two bytes, not its length byte), wherever the client
    /// put it; nil if the list doesn't offer it or is malformed (then nothing in it is trusted).
    static func h2Range<Bytes: Collection<UInt8>>(in offered: Bytes) -> Range<Bytes.Index>? {
        guard let name = protocolNames(in: offered)?.first(where: { $0.elementsEqual(h2) }) else { return nil }
        return name.startIndex..<name.endIndex
    }
}
