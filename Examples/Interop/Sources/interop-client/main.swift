// interop-client: runs the official interop test cases against any gRPC server, with the flags of the
// official interop clients.
//
//   interop-client --server_host 127.0.0.1 --server_port 50051 --test_case all
//
// Prints one line per case and exits non-zero if any case fails. TLS: --use_tls [--ca_file F]
// [--server_host_override NAME] (the name the server's certificate is verified against; system roots
// without --ca_file).

import Courier
import CourierHTTP2
import InteropTestService
#if canImport(Glibc)
import Glibc
#endif

struct Options {
    var host = "127.0.0.1"
    var port = 50051
    var testCase = "all"
    var hostOverride: String?
    var useTLS = false
    var caFile: String?
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
        case "--server_host": options.host = value ?? options.host
        case "--server_port":
            guard let port = value.flatMap(Int.init) else { return nil }
            options.port = port
        case "--test_case": options.testCase = value ?? "all"
        case "--server_host_override": options.hostOverride = value
        case "--use_tls": options.useTLS = value == nil || value == "true"
        case "--ca_file", "--default_ca_file": options.caFile = value
        case "--use_test_ca": break  // the test CA is the one --ca_file names
        default:
            print("interop-client: unknown flag \(flag)")
            return nil
        }
        index += 1
    }
    return options
}

nonisolated func run(_ options: Options) async throws -> Bool {
    let cases: [InteropTestCase]
    if options.testCase == "all" {
        cases = InteropTestCase.allCases
    } else {
        guard let testCase = InteropTestCase(rawValue: options.testCase) else {
            print("interop-client: unknown test case \(options.testCase)")
            return false
        }
        cases = [testCase]
    }
    var configuration = HTTP2ClientTransport.Configuration()
    configuration.authority = options.hostOverride.map { "\($0):\(options.port)" }
    if options.useTLS {
        configuration.tls = .client(trustRoots: options.caFile.map { .pemFile($0) } ?? .system)
    }
    let target = options.host.contains(":") ? "ipv6:[\(options.host)]:\(options.port)" : "\(options.host):\(options.port)"
    let transport = try HTTP2ClientTransport(target: target, configuration: configuration)
    return try await withCourierClient(transport: transport) { client in
        var failures = 0
        for testCase in cases {
            do {
                let notes = try await testCase.run(using: client)
                print("PASS \(testCase.rawValue)" + (notes.isEmpty ? "" : " (\(notes.joined(separator: "; ")))"))
            } catch {
                failures += 1
                print("FAIL \(testCase.rawValue): \(error)")
            }
        }
        print("\(cases.count - failures) passed, \(failures) failed")
        return failures == 0
    }
}

guard let options = parse(Array(CommandLine.arguments.dropFirst())) else {
    print("usage: interop-client --server_host H --server_port N --test_case NAME|all [--server_host_override NAME] [--use_tls [--ca_file F]]")
    exit(2)
}
exit(try await run(options) ? 0 : 1)
