// The key-value client.
//
//   swift run kv-client [--target 127.0.0.1:50052] put KEY VALUE
//   swift run kv-client [--target 127.0.0.1:50052] get KEY

import Courier
import CourierHTTP2
import Foundation
import KeyValueService
import SwiftProtobuf

nonisolated func main() async throws {
    var target = "127.0.0.1:50052"
    var arguments = Array(CommandLine.arguments.dropFirst())
    if arguments.first == "--target", arguments.count > 1 {
        target = arguments[1]
        arguments.removeFirst(2)
    }
    try await withCourierClient(transport: try HTTP2ClientTransport(target: target)) { courier in
        let store = Kv_KeyValue.Client(wrapping: courier)
        let options = CallOptions(timeout: .seconds(10))
        switch arguments.first {
        case "put" where arguments.count == 3:
            let reply = try await store.put(
                .with {
                    $0.key = arguments[1]
                    $0.value = Data(arguments[2].utf8)
                },
                options: options
            )
            print(reply.replaced ? "replaced" : "stored")
        case "get" where arguments.count == 2:
            let reply = try await store.get(.with { $0.key = arguments[1] }, options: options)
            print(reply.found ? String(decoding: reply.value, as: UTF8.self) : "(not found)")
        default:
            print("usage: kv-client [--target HOST:PORT] put KEY VALUE | get KEY")
            exit(2)
        }
    }
}

try await main()
