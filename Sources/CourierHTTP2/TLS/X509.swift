internal import COpenSSL
internal import Courier

extension PeerIdentity {
    /// The identity in a certificate: its subject, RFC 2253 style, and its DNS, URI and IP subjectAltNames,
    /// each kind in the certificate's order. `certificate` is an `X509 *` the caller owns; everything OpenSSL
    /// allocates here is freed here, and every copy is bounded by a length OpenSSL reports.
    init(certificate: OpaquePointer) {
        self.init(subject: Self.subject(of: certificate))
        appendSubjectAlternativeNames(of: certificate)
    }

    /// The subject as `X509_NAME_print_ex` writes it with `XN_FLAG_RFC2253` (`O=Example,CN=client`: reversed,
    /// special characters and non-ASCII bytes escaped), or "" if OpenSSL can't print it.
    private static func subject(of certificate: OpaquePointer) -> String {
        guard let name = X509_get_subject_name(certificate), let bio = BIO_new(BIO_s_mem()) else { return "" }
        defer { BIO_free(bio) }
        guard X509_NAME_print_ex(bio, name, 0, COpenSSL_XN_FLAG_RFC2253) >= 0 else { return "" }
        let length = Int32(clamping: BIO_ctrl_pending(bio))
        guard length > 0 else { return "" }
        let text = [UInt8](unsafeUninitializedCapacity: Int(length)) { buffer, count in
            count = Int(max(0, BIO_read(bio, buffer.baseAddress, length)))
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// Appends the certificate's DNS names, URIs and IP addresses; other kinds of name (email, directory
    /// names, ...) are skipped.
    private mutating func appendSubjectAlternativeNames(of certificate: OpaquePointer) {
        // A GENERAL_NAMES stack we own; nil without the extension (or with a malformed or repeated one).
        guard let decoded = X509_get_ext_d2i(certificate, NID_subject_alt_name, nil, nil) else { return }
        let names = OpaquePointer(decoded)
        defer { GENERAL_NAMES_free(names) }
        // sk_GENERAL_NAME_num and _value are macros over OPENSSL_sk_num and _value that only check types.
        for index in 0..<max(0, OPENSSL_sk_num(names)) {
            guard let name = OPENSSL_sk_value(names, index)?.assumingMemoryBound(to: GENERAL_NAME.self) else {
                continue
            }
            // Only these kinds hold an ASN1_STRING in the union `d`; reading another kind's member as one
            // would read unrelated memory.
            switch name.pointee.type {
            case GEN_DNS:
                dnsNames.append(String(decoding: Self.bytes(of: name.pointee.d.dNSName), as: UTF8.self))
            case GEN_URI:
                uris.append(String(decoding: Self.bytes(of: name.pointee.d.uniformResourceIdentifier), as: UTF8.self))
            case GEN_IPADD:
                // 4 or 16 raw bytes; anything else (a malformed entry) is skipped.
                if let text = SocketAddress.ipText(Self.bytes(of: name.pointee.d.iPAddress)) {
                    ipAddresses.append(text)
                }
            default:
                continue
            }
        }
    }

    /// A copy of an ASN1_STRING's bytes, as many as its length says (they need not end in a NUL).
    private static func bytes(of string: UnsafeMutablePointer<ASN1_STRING>?) -> [UInt8] {
        guard let string, let data = ASN1_STRING_get0_data(string) else { return [] }
        return Array(UnsafeBufferPointer(start: data, count: max(0, Int(ASN1_STRING_length(string)))))
    }
}
