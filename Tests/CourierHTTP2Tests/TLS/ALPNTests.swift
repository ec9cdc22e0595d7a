import Testing

@testable import CourierHTTP2

extension TLSTests {
    /// The server's ALPN selection over the client's list in wire form (RFC 7301): what the OpenSSL callback decides,
    /// without a handshake. Nested in ``TLSTests`` so that `--filter TLSTests` runs it.
    @Suite("ALPN lists")
    struct ALPNLists {
        /// A list in wire form from names.
        private func list(_ names: String...) -> [UInt8] {
            names.flatMap { [UInt8($0.utf8.count)] + Array($0.utf8) }
        }

        /// The name `h2Range` selects, as text.
        private func selected(_ offered: [UInt8]) -> String? {
            ALPN.h2Range(in: offered).map { String(decoding: offered[$0], as: UTF8.self) }
        }

        @Test("A well-formed list is split into its names, in order")
        func names() {
            let names = ALPN.protocolNames(in: list("http/1.1", "h2", "spdy/3.1"))
            #expect(names?.map { String(decoding: $0, as: UTF8.self) } == ["http/1.1", "h2", "spdy/3.1"])
            #expect(ALPN.protocolNames(in: [2, 0x68, 0x32])?.map(Array.init) == [ALPN.h2])
            // A 255-byte name, the longest a length byte allows, fits exactly.
            let longest = [UInt8(255)] + [UInt8](repeating: 0x61, count: 255)
            #expect(ALPN.protocolNames(in: longest)?.map(\.count) == [255])
        }

        @Test("h2 is selected wherever the client lists it: alone, first, in the middle, last")
        func selectsH2() {
            #expect(selected(list("h2")) == "h2")
            #expect(selected(list("h2", "http/1.1")) == "h2")
            #expect(selected(list("http/1.1", "h2", "spdy/3.1")) == "h2")
            #expect(selected(list("http/1.1", "spdy/3.1", "h2")) == "h2")
            // The range is of the name's bytes, after its length byte: OpenSSL is handed a pointer into the list.
            #expect(ALPN.h2Range(in: list("http/1.1", "h2")) == 10..<12)
        }

        @Test("A well-formed list without h2 selects nothing (names that merely start or end like it included)")
        func withoutH2() {
            #expect(selected(list("http/1.1")) == nil)
            #expect(selected(list("h2c", "h3", "xh2", "h")) == nil)
            #expect(selected(list("H2")) == nil)
        }

        @Test("Malformed lists select nothing, even with h2 before the damage")
        func malformed() {
            // Empty.
            #expect(ALPN.protocolNames(in: [UInt8]()) == nil)
            #expect(selected([]) == nil)
            // A length byte that runs past the end: alone, after h2, one byte short.
            #expect(ALPN.protocolNames(in: [5]) == nil)
            #expect(selected(list("h2") + [8, 0x68, 0x74]) == nil)
            #expect(selected([3, 0x68, 0x32]) == nil)
            #expect(selected([255] + [UInt8](repeating: 0x61, count: 254)) == nil)
            // A zero-length name: first, after h2, last.
            #expect(ALPN.protocolNames(in: [0]) == nil)
            #expect(selected([0] + list("h2")) == nil)
            #expect(selected(list("h2") + [0]) == nil)
            #expect(selected(list("http/1.1") + [0] + list("h2")) == nil)
        }

        @Test("The parser works on a slice (OpenSSL's buffer is a pointer into a larger record)")
        func slices() {
            let record: [UInt8] = [0xFF, 0xFF] + list("http/1.1", "h2") + [0xFF]
            let offered = record[2..<(record.count - 1)]
            let range = ALPN.h2Range(in: offered)
            #expect(range == 12..<14)
            #expect(range.map { Array(record[$0]) } == ALPN.h2)
        }

        @Test("A client offers h2 alone")
        func clientOffer() {
            #expect(ALPN.clientOffer == [2, 0x68, 0x32])
            #expect(ALPN.protocolNames(in: ALPN.clientOffer)?.map(Array.init) == [ALPN.h2])
        }
    }
}
