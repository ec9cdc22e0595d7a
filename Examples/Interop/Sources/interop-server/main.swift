// interop-server: grpc.testing.TestService over Courier's HTTP/2 transport, with the flags of the
// official interop servers.
//
//   interop-server --port 50051
//
// Flags: --port N (or --port=N; default 50051); --use_tls --tls_cert_file F --tls_key_file F.

import Courier
import CourierHTTP2
import InteropTestService
#if canImport(Glibc)
import Glibc
#endif

struct Options {
    var port = 50051
    var useTLS = false
    var certificateFile: String?
    var keyFile: String?
}

nonisolated func parse(_ arguments: [String]) -> Options? {
    var options = Options()
    var index = 0
    while index < arguments.count {
        var flag = arguments[index]
        var value: String?
        if let equals = flag.firstIndex(of: "=") {
            value = String(flag[flag.index(after: equals)...])
            flag = String(flag[..<equals])
        } else if index + 1 < arguments.count, !arguments[index + 1].hasPrefix("--") {
            value = arguments[index + 1]
            index += 1
        }
        switch flag {
        case "--port":
            guard let port = value.flatMap(Int.init), (0...65535).contains(port) else { return nil }
            options.port = port
        case "--use_tls": options.useTLS = value == nil || value == "true"
        case "--tls_cert_file": options.certificateFile = value
        case "--tls_key_file": options.keyFile = value
        default:
            print("interop-server: unknown flag \(flag)")
            return nil
        }
        index += 1
    }
    if options.useTLS, options.certificateFile == nil || options.keyFile == nil {
        print("interop-server: --use_tls needs --tls_cert_file and --tls_key_file")
        return nil
    }
    return options
}

nonisolated func serve(_ options: Options) async throws {
    var configuration = HTTP2ServerTransport.Configuration()
    if options.useTLS, let certificate = options.certificateFile, let key = options.keyFile {
        configuration.tls = .server(certificateChainFile: certificate, privateKeyFile: key)
    }
    let transport = HTTP2ServerTransport(address: .ipv4(host: "0.0.0.0", port: options.port), configuration: configuration)
    let server = CourierServer(transport: transport, services: [TestService()])
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await server.run() }
        let address = try await transport.listeningAddress()
        print("interop-server listening on \(address)\(options.useTLS ? " (TLS)" : "") io=\(IOBackend.automatic) (\(IOBackend.automaticReason))")
        fflush(nil)  // all streams: the line is a readiness signal for scripts
        try await group.waitForAll()
    }
}

guard let options = parse(Array(CommandLine.arguments.dropFirst())) else {
    print("usage: interop-server [--port N] [--use_tls --tls_cert_file F --tls_key_file F]")
    exit(2)
}
do {
    try await serve(options)
} catch {
    print("interop-server: \(error)")
    exit(1)
}
