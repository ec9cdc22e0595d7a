// The TLS record path (`TLSSession` over memory BIOs, as every TLS connection uses it): a server session
// fed arbitrary bytes as its client's records, or a client session (after its ClientHello) fed them as
// its server's, with plaintext written and close_notify sent along the way. It must end in a failure or
// a closed session, never a trap or a hang. The certificates come from `dev/make-test-certs.sh`, run by
// `dev/fuzz.sh` into `.build-fuzz/pki` (or `COURIER_FUZZ_PKI`).
// Input: [mode: bit 0 client, bit 1 the server asks for a client certificate][chunk seed][records...].
internal import CourierFuzzSupport

@testable internal import CourierHTTP2

#if canImport(Glibc)
internal import Glibc
#endif

private let pki: String = {
    if let value = getenv("COURIER_FUZZ_PKI") { return String(cString: value) }
    return ".build-fuzz/pki"
}()

private func context(_ configuration: TLSConfiguration) -> TLSContext {
    do {
        return try TLSContext(configuration)
    } catch {
        fatalError("fuzz-tls needs the test PKI in \(pki) (./dev/fuzz.sh makes it): \(error)")
    }
}

private let serverContext = context(
    .server(certificateChainFile: "\(pki)/server.pem", privateKeyFile: "\(pki)/server.key")
)
private let mutualServerContext = context(
    .server(
        certificateChainFile: "\(pki)/server.pem",
        privateKeyFile: "\(pki)/server.key",
        clientCertificates: .required,
        trustRoots: .pemFile("\(pki)/ca.pem")
    )
)
private let clientContext = context(.client(trustRoots: .pemFile("\(pki)/ca.pem")))

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTLS(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    var input = FuzzInput(data, count)
    let mode = input.byte()
    let seed = input.byte()
    let isClient = mode & 1 == 1
    let session: TLSSession
    do {
        if isClient {
            session = try TLSSession(context: clientContext, serverName: "localhost")
            try session.startHandshake()
        } else {
            session = try TLSSession(context: mode & 2 == 2 ? mutualServerContext : serverContext, serverName: nil)
        }
    } catch {
        fatalError("could not make a TLS session: \(error)")
    }
    var ciphertext: [UInt8] = []
    var plaintext: [UInt8] = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
    var delivered = 0
    do {
        for chunk in FuzzInput.chunks(of: input.rest(), seed: seed) {
            let goOn = try chunk.withUnsafeBytes { bytes in
                try session.receive(bytes) { plain in
                    delivered += plain.count
                    return delivered < 1 << 20
                }
            }
            try session.send(&plaintext, into: &ciphertext)
            fuzzCheck(ciphertext.count < 1 << 20, "the session produced over 1 MiB of records")
            ciphertext.removeAll(keepingCapacity: true)
            if !goOn { break }
        }
        session.shutdown(into: &ciphertext)
    } catch {
        // A TLS failure closes the connection: what a bad peer must cause.
    }
    return 0
}
