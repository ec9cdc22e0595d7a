// kv: serves kv.KeyValue and calls it, all four kinds, in one process.
//
//   swift run kv                    h2c on a free port
//   swift run kv --tls DIR          TLS, with DIR/server.pem, DIR/server.key and DIR/ca.pem
import Courier
import CourierHTTP2
import Echo
import KeyValue

let arguments = CommandLine.arguments.dropFirst()
let tlsDirectory = arguments.firstIndex(of: "--tls").map { arguments[arguments.index(after: $0)] }

var serverConfiguration = HTTP2ServerTransport.Configuration()
var clientConfiguration = HTTP2ClientTransport.Configuration()
if let tlsDirectory {
    serverConfiguration.tls = .server(
        certificateChainFile: "\(tlsDirectory)/server.pem",
        privateKeyFile: "\(tlsDirectory)/server.key"
    )
    clientConfiguration.tls = .client(trustRoots: .pemFile("\(tlsDirectory)/ca.pem"))
}

let server = HTTP2ServerTransport(address: .ipv4(host: "127.0.0.1", port: 0), configuration: serverConfiguration)
try await withCourierServer(
    transport: server,
    services: [KeyValueService(), EchoService()],
    interceptors: [APIKeyInterceptor(key: "secret")]
) { _ in
    let port = try await server.listeningAddress().port ?? 0
    let transport = try HTTP2ClientTransport(target: "localhost:\(port)", configuration: clientConfiguration)
    try await withCourierClient(transport: transport, interceptors: [APIKeyClientInterceptor(key: "secret")]) {
        courier in
        let kv = Kv_KeyValue.Client(wrapping: courier)
        let options = CallOptions(timeout: .seconds(5))

        // Client streaming: three entries with a oneof, an enum, a map, a nested message and a timestamp.
        let summary = try await kv.putMany(options: options) { writer in
            for (key, value) in [("color", "blue"), ("size", "42"), ("shape", "round")] {
                try await writer.write(
                    .with {
                        $0.key = key
                        if let number = Int64(value) {
                            $0.number = number
                            $0.kind = .number
                        } else {
                            $0.text = value
                            $0.kind = .text
                        }
                        $0.labels = ["owner": "ada"]
                        $0.author = .with { $0.name = "Ada" }
                        $0.updated = .init(date: .now)
                    }
                )
            }
        }
        print("putMany: wrote \(summary.written)")

        // Unary.
        let size = try await kv.get(.with { $0.key = "size" }, options: options)
        print("get size: \(size.number) (\(size.kind))")

        // Server streaming.
        try await kv.watch(.with { $0.prefix = "s" }, options: options) { response in
            for try await change in response.messages { print("watch: \(change.entry.key)") }
        }

        // Bidirectional streaming.
        try await kv.sync(options: options) { writer in
            try await writer.write(.with { $0.delete = "color" })
            try await writer.write(
                .with {
                    $0.put = .with {
                        $0.key = "color"
                        $0.text = "green"
                    }
                }
            )
        } onResponse: { response in
            for try await change in response.messages {
                print("sync: \(change.entry.key) \(change.deleted ? "deleted" : "= \(change.entry.text)")")
            }
        }

        let echo = try await Echo_V1_EchoService.Client(wrapping: courier).echo(.with { $0.text = "done" })
        print("echo: \(echo.text) (\(tlsDirectory == nil ? "h2c" : "TLS"))")
    }
    server.beginGracefulShutdown()
}
