// interop-client: runs the official interop test cases against any gRPC server, with the flags of the
// official interop clients.
//
//   interop-client --server_host 127.0.0.1 --server_port 50051 --test_case all
//
// Prints one line per case and exits non-zero if any case fails. TLS: --use_tls [--ca_file F]
// [--server_host_override NAME] (the name the server's certificate is verified against; system roots
// without --ca_file). Keepalive, with grpc-go's names, in milliseconds: --keepalive_time_ms N (off
// unless given; at least 10000), --keepalive_timeout_ms N (default 20000), --keepalive_permit_without_calls.
// The soak cases (--test_case rpc_soak|channel_soak) take the official --soak_* flags: --soak_iterations,
// --soak_max_failures, --soak_per_iteration_max_acceptable_latency_ms, --soak_overall_timeout_seconds,
// --soak_min_time_ms_between_rpcs, --soak_request_size, --soak_response_size.
// --target T takes any gRPC target (dns:///host:port, ipv4:a:p,b:p, unix:path, ...) and overrides
// --server_host/--server_port. --service_config_json J gives a service config (load balancing, method
// configs, retries); an invalid one is rejected before any call, with exit status 2. pick_first_unary
// (not part of `all`) uses pick_first unless --service_config_json says otherwise.
// A failed case prints its status first: "FAIL <case>: UNAVAILABLE (14): <message>".

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
    var keepaliveTimeMilliseconds: Int?
    var keepaliveTimeoutMilliseconds: Int?
    var keepalivePermitWithoutCalls = false
    var soak = InteropSoak.Configuration()
    var target: String?
    var serviceConfig: ServiceConfig?
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
        case "--keepalive_time_ms":
            guard let milliseconds = value.flatMap(Int.init), milliseconds > 0 else { return nil }
            options.keepaliveTimeMilliseconds = milliseconds
        case "--keepalive_timeout_ms":
            guard let milliseconds = value.flatMap(Int.init), milliseconds > 0 else { return nil }
            options.keepaliveTimeoutMilliseconds = milliseconds
        case "--keepalive_permit_without_calls":
            guard value == nil || value == "true" || value == "false" else { return nil }
            options.keepalivePermitWithoutCalls = value != "false"
        case "--target":
            guard let value, !value.isEmpty else {
                print("interop-client: --target takes a target string")
                return nil
            }
            options.target = value
        case "--service_config_json":
            guard let value else {
                print("interop-client: --service_config_json takes a JSON service config")
                return nil
            }
            do {
                options.serviceConfig = try ServiceConfig(json: value)
            } catch {
                print("interop-client: invalid --service_config_json: \(error.message)")
                return nil
            }
        case let soakFlag where soakFlag.hasPrefix("--soak_"):
            guard options.soak.set(soakFlag, value) else {
                print("interop-client: \(soakFlag) takes a non-negative integer (or is unknown)")
                return nil
            }
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
    if let soak = InteropSoak.Kind(rawValue: options.testCase) {
        return try await runSoak(soak, options)
    }
    if options.testCase == "all" {
        cases = InteropTestCase.all
    } else {
        guard let testCase = InteropTestCase(rawValue: options.testCase) else {
            print("interop-client: unknown test case \(options.testCase)")
            return false
        }
        cases = [testCase]
    }
    let transport = try makeTransport(options)
    var serviceConfig = options.serviceConfig ?? ServiceConfig()
    if options.serviceConfig == nil, cases == [.pickFirstUnary] {
        serviceConfig.loadBalancingConfig = [.pickFirst()]
    }
    let configuration = CourierClient.Configuration(serviceConfig: serviceConfig)
    return try await withCourierClient(transport: transport, configuration: configuration) { client in
        var failures = 0
        for testCase in cases {
            do {
                let notes = try await testCase.run(using: client)
                print("PASS \(testCase.rawValue)" + (notes.isEmpty ? "" : " (\(notes.joined(separator: "; ")))"))
            } catch {
                failures += 1
                print("FAIL \(testCase.rawValue): \(describe(error))")
            }
        }
        print("\(cases.count - failures) passed, \(failures) failed")
        return failures == 0
    }
}

/// A failure for the output: an RPC's status first (name and code), then its message.
nonisolated func describe(_ error: any Error) -> String {
    guard let error = error as? RPCError else { return "\(error)" }
    return "\(error.code) (\(error.code.rawValue))" + (error.message.isEmpty ? "" : ": \(error.message)")
}

/// Runs `rpc_soak` (one channel) or `channel_soak` (a channel per iteration).
nonisolated func runSoak(_ kind: InteropSoak.Kind, _ options: Options) async throws -> Bool {
    let configuration = CourierClient.Configuration(serviceConfig: options.serviceConfig ?? ServiceConfig())
    let result: InteropSoak.Result
    switch kind {
    case .rpcSoak:
        result = try await withCourierClient(transport: try makeTransport(options), configuration: configuration) {
            client in
            await InteropSoak.run(kind, configuration: options.soak) { body in try await body(client) }
        }
    case .channelSoak:
        result = await InteropSoak.run(kind, configuration: options.soak) { body in
            try await withCourierClient(transport: try makeTransport(options), configuration: configuration) {
                client in try await body(client)
            }
        }
    }
    for failure in result.failureDescriptions { print("  \(failure)") }
    print(result)
    print(result.passed ? "PASS \(kind.rawValue)" : "FAIL \(kind.rawValue)")
    print(result.passed ? "1 passed, 0 failed" : "0 passed, 1 failed")
    return result.passed
}

nonisolated func makeTransport(_ options: Options) throws -> HTTP2ClientTransport {
    var configuration = HTTP2ClientTransport.Configuration()
    configuration.authority = options.hostOverride.map { "\($0):\(options.port)" }
    if options.useTLS {
        configuration.tls = .client(trustRoots: options.caFile.map { .pemFile($0) } ?? .system)
    }
    if let time = options.keepaliveTimeMilliseconds {
        // As in grpc-go: no time, no keepalive; a time below 10 s is raised to 10 s.
        configuration.keepalive = .init(
            time: .milliseconds(time),
            timeout: options.keepaliveTimeoutMilliseconds.map { .milliseconds($0) }
                ?? HTTP2ClientTransport.Configuration.Keepalive.defaultTimeout,
            permitWithoutCalls: options.keepalivePermitWithoutCalls
        )
    }
    let target =
        options.target
        ?? (options.host.contains(":")
            ? "ipv6:[\(options.host)]:\(options.port)" : "\(options.host):\(options.port)")
    return try HTTP2ClientTransport(target: target, configuration: configuration)
}

guard let options = parse(Array(CommandLine.arguments.dropFirst())) else {
    print(
        "usage: interop-client (--server_host H --server_port N | --target T) --test_case NAME|all"
            + " [--service_config_json JSON] [--server_host_override NAME] [--use_tls [--ca_file F]]"
            + " [--keepalive_time_ms N] [--keepalive_timeout_ms N] [--keepalive_permit_without_calls]"
            + " [--soak_iterations N --soak_max_failures N --soak_per_iteration_max_acceptable_latency_ms N"
            + " --soak_overall_timeout_seconds N --soak_min_time_ms_between_rpcs N --soak_request_size N"
            + " --soak_response_size N]"
    )
    exit(2)
}
exit(try await run(options) ? 0 : 1)
