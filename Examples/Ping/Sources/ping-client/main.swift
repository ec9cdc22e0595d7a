// ping-client: calls ping.PingService, over TLS by default (as a client outside a Knative cluster does).
//
//   ping-client --host ping.default.example.com hello                  TLS to port 443, system roots
//   ping-client --host 127.0.0.1:8080 --insecure hello                 cleartext h2c
//   ping-client --host 127.0.0.1:8443 --ca-file ca.pem --authority ping.test hello
//
// Flags:
//   --host H[:PORT]    the server (port 443 by default), or unix:PATH
//   --insecure         plaintext h2c instead of TLS (the seed's NewConn(host, insecure))
//   --skip-verify      TLS without verifying the server's certificate (testing only)
//   --ca-file F        trust the CAs in F instead of the system's roots
//   --authority NAME   the :authority to send (and the name to verify the certificate against, and SNI)
//   --token T          send `authorization: Bearer T`
//   --count N          how many calls (default 1)
//   --stream           use SendStream: the N messages on one bidirectional stream
// Each call has a 30 s deadline. Prints each reply with its latency; exits non-zero with the gRPC status
// on failure.

import Courier
import CourierHTTP2
import PingService
import SwiftProtobuf

#if canImport(Glibc)
import Glibc
#endif

struct Options {
    var host = ""
    var insecure = false
    var skipVerify = false
    var caFile: String?
    var authority: String?
    var token: String?
    var count = 1
    var stream = false
    var message = ""
}

let usage = """
    usage: ping-client --host HOST[:PORT]|unix:PATH [--insecure] [--skip-verify] [--ca-file F] [--authority NAME]
                       [--token T] [--count N] [--stream] MESSAGE
    """

func parse(_ arguments: [String]) -> Options? {
    var options = Options()
    var words: [String] = []
    var index = 0
    func value() -> String? {
        index += 1
        return index < arguments.count ? arguments[index] : nil
    }
    while index < arguments.count {
        switch arguments[index] {
        case "--host":
            guard let host = value() else { return nil }
            options.host = host
        case "--insecure": options.insecure = true
        case "--skip-verify": options.skipVerify = true
        case "--ca-file":
            guard let file = value() else { return nil }
            options.caFile = file
        case "--authority":
            guard let name = value() else { return nil }
            options.authority = name
        case "--token":
            guard let token = value() else { return nil }
            options.token = token
        case "--count":
            guard let count = value().flatMap(Int.init), count > 0 else { return nil }
            options.count = count
        case "--stream": options.stream = true
        case "-h", "--help": return nil
        case let flag where flag.hasPrefix("--"):
            print("ping-client: unknown flag \(flag)")
            return nil
        case let word: words.append(word)
        }
        index += 1
    }
    guard !options.host.isEmpty, !words.isEmpty else { return nil }
    options.message = words.joined(separator: " ")
    return options
}

/// `host` → `host:443`; `host:port` and `[v6]:port` stay; a bare IPv6 literal gets brackets.
func target(_ host: String) -> String {
    if host.hasPrefix("unix:") { return host }
    if host.hasPrefix("[") { return host.contains("]:") ? "ipv6:\(host)" : "ipv6:\(host):443" }
    let colons = host.filter { $0 == ":" }.count
    if colons > 1 { return "ipv6:[\(host)]:443" }
    return colons == 1 ? host : "\(host):443"
}

func milliseconds(_ duration: Duration) -> String {
    let value = Double(duration.components.seconds) * 1e3 + Double(duration.components.attoseconds) / 1e15
    return "\((value * 100).rounded() / 100) ms"
}

func run(_ options: Options) async -> Int32 {
    var configuration = HTTP2ClientTransport.Configuration()
    configuration.authority = options.authority
    if !options.insecure {
        configuration.tls =
            options.skipVerify
            ? .insecureClientSkippingVerification()
            : .client(trustRoots: options.caFile.map { .pemFile($0) } ?? .system)
    }
    let callOptions = CallOptions(timeout: .seconds(30))
    // The token goes through Courier's bearer-token interceptor (which never logs it).
    let interceptors: [any ClientInterceptor] = options.token.map { [BearerTokenClientInterceptor(token: $0)] } ?? []
    let metadata = Metadata()
    do {
        let transport = try HTTP2ClientTransport(target: target(options.host), configuration: configuration)
        try await withCourierClient(transport: transport, interceptors: interceptors) { courier in
            let client = Ping_PingService.Client(wrapping: courier)
            if options.stream {
                try await runStream(client, options, metadata: metadata, callOptions: callOptions)
            } else {
                for _ in 0..<options.count {
                    let start = ContinuousClock.now
                    let reply = try await client.send(
                        .with { $0.msg = options.message },
                        metadata: metadata,
                        options: callOptions
                    )
                    print("\(reply.msg)  (\(milliseconds(ContinuousClock.now - start)))")
                }
            }
        }
        return 0
    } catch let error as RPCError {
        print("ping-client: \(error.code): \(error.message)")
        return 1
    } catch {
        print("ping-client: \(error)")
        return 1
    }
}

/// Sends the messages one at a time on one stream, each after the previous reply, to time round trips.
func runStream(
    _ client: Ping_PingService.Client,
    _ options: Options,
    metadata: Metadata,
    callOptions: CallOptions
) async throws {
    let (turns, turn) = AsyncStream<Void>.makeStream()
    turn.yield()
    let message = options.message
    let count = options.count
    try await client.sendStream(metadata: metadata, options: callOptions) { writer in
        var sent = 0
        for await _ in turns {
            guard sent < count else { break }
            try await writer.write(.with { $0.msg = message })
            sent += 1
        }
    } onResponse: { response in
        var start = ContinuousClock.now
        var received = 0
        for try await reply in response.messages {
            print("\(reply.msg)  (\(milliseconds(ContinuousClock.now - start)))")
            received += 1
            start = ContinuousClock.now
            if received == count { turn.finish() } else { turn.yield() }
        }
        turn.finish()
        if received != count {
            throw RPCError(code: .internal, message: "The stream ended after \(received) of \(count) replies.")
        }
    }
}

guard let options = parse(Array(CommandLine.arguments.dropFirst())) else {
    print(usage)
    exit(2)
}
exit(await run(options))
