/// The identity a secure transport verified for the peer: with TLS, the subject and subject alternative
/// names of the certificate the peer presented and the server verified (mutual TLS).
///
/// ```swift
/// guard context.peerIdentity?.dnsNames.contains("billing.internal") == true else {
///     throw RPCError(code: .permissionDenied, message: "Not the billing service.")
/// }
/// ```
public struct PeerIdentity: Sendable, Hashable, CustomStringConvertible {
    /// The certificate's subject, RFC 2253 style, such as `CN=client,O=Example`.
    public var subject: String
    /// The DNS names among its subject alternative names.
    public var dnsNames: [String]
    /// The URIs among its subject alternative names (SPIFFE IDs, for one).
    public var uris: [String]
    /// The IP addresses among its subject alternative names, in text form.
    public var ipAddresses: [String]

    /// Creates an identity.
    ///
    /// - Parameters:
    ///   - subject: The subject.
    ///   - dnsNames: DNS names.
    ///   - uris: URIs.
    ///   - ipAddresses: IP addresses.
    public init(subject: String, dnsNames: [String] = [], uris: [String] = [], ipAddresses: [String] = []) {
        self.subject = subject
        self.dnsNames = dnsNames
        self.uris = uris
        self.ipAddresses = ipAddresses
    }

    public var description: String {
        var parts = [subject]
        parts += dnsNames.map { "DNS:\($0)" } + uris.map { "URI:\($0)" } + ipAddresses.map { "IP:\($0)" }
        return parts.joined(separator: ", ")
    }
}
