// interop-soak: load and network checks against interop-server, for dev/soak.sh and dev/test-netem.sh.
//
//   interop-soak --mode load --server_port 50051 [--tls_port 50052 --ca_file F --server_host_override NAME]
//                [--seconds 60] [--workers 8] [--pause_ms 2] [--seed 1]
//   interop-soak --mode transfer --server_host H --server_port N [--megabytes 16]
//   interop-soak --mode keepalive --server_host H --server_port N
//   interop-soak --mode dead_peer --server_host H --server_port N
//   interop-soak --mode deadline --server_host H --server_port N
//
// load: `--workers` tasks make RPCs of all four kinds for `--seconds`, each with the status it must end with:
// OK (with the payload sizes checked), a status the server is asked to send, CANCELLED (the client cancels
// before the first message, after the first response, in the middle of a server stream) and
// DEADLINE_EXCEEDED (deadlines that expire while the server sleeps). A third of the workers share one
// long-lived cleartext client, a third one long-lived TLS client (when `--tls_port` is given), and the rest
// connect, make a few RPCs and disconnect, over and over (TLS every other time). Prints a table of the
// statuses per scenario; exits 1 if any RPC ended otherwise than expected.
//
// transfer: a server stream and a client stream of `--megabytes` each, in 256 KiB messages, every message
// checked (size, order, content); then a bidirectional stream of 64 KiB echoes.
// keepalive: a client with keepalive (10 s, the minimum; 5 s timeout) keeps a stream open and quiet for 22 s,
// so a PING goes out and must be answered in time; the RPC must end OK.
// dead_peer: the same client, a stream whose server sleeps 120 s after its first response; prints
// `first response` (the caller then cuts the network) and expects UNAVAILABLE from keepalive in 14 to 20 s.
// deadline: a 1 s deadline on a sleeping server must end DEADLINE_EXCEEDED after 1 s and within 2.5 s.

import Courier
import CourierHTTP2
import Foundation
import GRPCTestingProtos
import SwiftProtobuf
import Synchronization

struct Options {
    var mode = "load"
    var host = "127.0.0.1"
    var port = 50051
    var tlsPort: Int?
    var caFile: String?
    var hostOverride: String?
    var seconds = 60
    var workers = 8
    var pauseMilliseconds = 2
    var seed: UInt64 = 1
    var megabytes = 16
    /// The service the load drives: `interop` (interop-server's TestService) or `ping` (ping-server).
    var service = "interop"

    var scenarios: [Scenario] { service == "ping" ? pingServiceScenarios : testServiceScenarios }
}

nonisolated func parse(_ arguments: [String]) -> Options? {
    var options = Options()
    var index = 0
    while index < arguments.count {
        let flag = arguments[index]
        let value = index + 1 < arguments.count ? arguments[index + 1] : nil
        index += 2
        switch flag {
        case "--mode": options.mode = value ?? ""
        case "--server_host": options.host = value ?? options.host
        case "--server_port": options.port = value.flatMap(Int.init) ?? -1
        case "--tls_port": options.tlsPort = value.flatMap(Int.init) ?? -1
        case "--ca_file": options.caFile = value
        case "--server_host_override": options.hostOverride = value
        case "--seconds": options.seconds = value.flatMap(Int.init) ?? -1
        case "--workers": options.workers = value.flatMap(Int.init) ?? -1
        case "--pause_ms": options.pauseMilliseconds = value.flatMap(Int.init) ?? -1
        case "--seed": options.seed = value.flatMap { UInt64($0) } ?? 1
        case "--megabytes": options.megabytes = value.flatMap(Int.init) ?? -1
        case "--service": options.service = value ?? ""
        default: return nil
        }
    }
    let valid =
        ["load", "transfer", "keepalive", "dead_peer", "deadline"].contains(options.mode)
        && (0...65535).contains(options.port) && options.seconds > 0 && options.workers > 0
        && options.pauseMilliseconds >= 0 && options.megabytes > 0 && (options.tlsPort ?? 0) >= 0
        && ["interop", "ping"].contains(options.service) && (options.service == "interop" || options.mode == "load")
    return valid ? options : nil
}

/// A small deterministic generator (SplitMix64), so that a run's mix of scenarios repeats with its seed.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A response with the wrong content.
struct WrongContent: Error, CustomStringConvertible {
    var description: String
}

func check(_ condition: Bool, _ description: @autoclosure () -> String) throws {
    if !condition { throw WrongContent(description: description()) }
}

/// The status name an RPC ended with: `OK`, the gRPC code, or what else went wrong.
func outcome(_ body: () async throws -> Void) async -> String {
    do {
        try await body()
        return "OK"
    } catch let error as RPCError {
        return "\(Status.Code(error.code))"
    } catch let error as WrongContent {
        return "WRONG_CONTENT(\(error))"
    } catch {
        return "OTHER(\(error))"
    }
}

func body(_ size: Int) -> Data {
    Data((0..<size).lazy.map { UInt8(truncatingIfNeeded: $0) })
}

typealias TestClient = Grpc_Testing_TestService.Client

/// One kind of RPC with the status it must end with.
struct Scenario: Sendable {
    var name: String
    var expected: String
    var run: @Sendable (CourierClient) async throws -> Void

    /// A scenario against grpc.testing.TestService (interop-server).
    static func testService(
        name: String,
        expected: String,
        _ body: @escaping @Sendable (TestClient) async throws -> Void
    ) -> Scenario {
        Scenario(name: name, expected: expected) { try await body(TestClient(wrapping: $0)) }
    }
}

let okOptions = CallOptions(timeout: .seconds(20))

let testServiceScenarios: [Scenario] = [
    Scenario.testService(name: "unary_empty", expected: "OK") { client in
        _ = try await client.emptyCall(Grpc_Testing_Empty(), options: okOptions)
    },
    Scenario.testService(name: "unary_large", expected: "OK") { client in
        let response = try await client.unaryCall(
            .with {
                $0.responseSize = 65_536
                $0.payload = .with { $0.body = Data(count: 32_768) }
            },
            options: okOptions
        )
        try check(response.payload.body.count == 65_536, "\(response.payload.body.count) bytes")
    },
    Scenario.testService(name: "unary_status", expected: "FAILED_PRECONDITION") { client in
        _ = try await client.unaryCall(
            .with {
                $0.responseStatus = .with {
                    $0.code = 9
                    $0.message = "asked for"
                }
            },
            options: okOptions
        )
    },
    Scenario.testService(name: "unary_unimplemented", expected: "UNIMPLEMENTED") { client in
        _ = try await client.unimplementedCall(Grpc_Testing_Empty(), options: okOptions)
    },
    Scenario.testService(name: "server_stream", expected: "OK") { client in
        let sizes = [31_415, 9, 2_653, 58_979]
        let received = try await client.streamingOutputCall(
            .with { $0.responseParameters = sizes.map { size in .with { $0.size = Int32(size) } } },
            options: okOptions
        ) { response in
            var received: [Int] = []
            for try await message in response.messages { received.append(message.payload.body.count) }
            return received
        }
        try check(received == sizes, "sizes \(received)")
    },
    Scenario.testService(name: "server_stream_cancel", expected: "CANCELLED") { client in
        // Cancelled by the client after the third of twenty messages.
        let call = Task {
            try await client.streamingOutputCall(
                .with {
                    $0.responseParameters = (0..<20).map { _ in
                        .with {
                            $0.size = 1_000
                            $0.intervalUs = 5_000
                        }
                    }
                },
                options: okOptions
            ) { response in
                var count = 0
                for try await _ in response.messages {
                    count += 1
                    if count == 3 { withUnsafeCurrentTask { $0?.cancel() } }
                }
            }
        }
        try await call.value
    },
    Scenario.testService(name: "server_stream_deadline", expected: "DEADLINE_EXCEEDED") { client in
        // Twenty messages 30 ms apart under a 100 ms deadline.
        try await client.streamingOutputCall(
            .with {
                $0.responseParameters = (0..<20).map { _ in
                    .with {
                        $0.size = 100
                        $0.intervalUs = 30_000
                    }
                }
            },
            options: CallOptions(timeout: .milliseconds(100))
        ) { response in
            for try await _ in response.messages {}
        }
    },
    Scenario.testService(name: "client_stream", expected: "OK") { client in
        let response = try await client.streamingInputCall(options: okOptions) { writer in
            for size in [27_182, 8, 1_828, 45_904] {
                try await writer.write(.with { $0.payload = .with { $0.body = Data(count: size) } })
            }
        }
        try check(response.aggregatedPayloadSize == 74_922, "aggregated \(response.aggregatedPayloadSize)")
    },
    Scenario.testService(name: "client_stream_cancel", expected: "CANCELLED") { client in
        let call = Task {
            try await client.streamingInputCall(options: okOptions) { _ in
                withUnsafeCurrentTask { $0?.cancel() }
            }
        }
        _ = try await call.value
    },
    Scenario.testService(name: "bidi_ping_pong", expected: "OK") { client in
        let requestSizes = [27_182, 8, 1_828, 45_904]
        let responseSizes = [31_415, 9, 2_653, 58_979]
        let (requests, continuation) = AsyncStream<Int>.makeStream()
        continuation.yield(0)
        let received = try await client.fullDuplexCall(options: okOptions) { writer in
            for await index in requests {
                try await writer.write(
                    .with {
                        $0.responseParameters = [.with { $0.size = Int32(responseSizes[index]) }]
                        $0.payload = .with { $0.body = Data(count: requestSizes[index]) }
                    }
                )
            }
        } onResponse: { response in
            var received: [Int] = []
            for try await message in response.messages {
                received.append(message.payload.body.count)
                if received.count < 4 { continuation.yield(received.count) } else { continuation.finish() }
            }
            continuation.finish()
            return received
        }
        try check(received == responseSizes, "sizes \(received)")
    },
    Scenario.testService(name: "bidi_cancel", expected: "CANCELLED") { client in
        let call = Task {
            try await client.fullDuplexCall(options: okOptions) { writer in
                try await writer.write(.with { $0.responseParameters = [.with { $0.size = 31_415 }] })
                try await Task.sleep(for: .seconds(3600))
            } onResponse: { response in
                var iterator = response.messages.makeAsyncIterator()
                _ = try await iterator.next()
                withUnsafeCurrentTask { $0?.cancel() }
                _ = try await iterator.next()
            }
        }
        try await call.value
    },
    Scenario.testService(name: "bidi_deadline", expected: "DEADLINE_EXCEEDED") { client in
        try await client.fullDuplexCall(options: CallOptions(timeout: .milliseconds(50))) { writer in
            try await writer.write(.with { $0.payload = .with { $0.body = Data(count: 27_182) } })
            try await Task.sleep(for: .seconds(3600))
        } onResponse: { response in
            for try await _ in response.messages {}
        }
    },
]

/// Counts of the statuses each scenario ended with.
final class Tally: Sendable {
    private let counts = Mutex<[String: [String: Int]]>([:])
    /// Short-lived clients that connected.
    let connects = Atomic<Int>(0)

    func record(_ scenario: Scenario, _ status: String) {
        counts.withLock { $0[scenario.name, default: [:]][status, default: 0] += 1 }
    }

    /// Prints the table; returns the number of RPCs that ended otherwise than expected.
    func report(_ scenarios: [Scenario]) -> Int {
        let counts = self.counts.withLock { $0 }
        var unexpected = 0
        var total = 0
        let header = "scenario".padding(toLength: 24, withPad: " ", startingAt: 0)
        print("\(header) \("expected".padding(toLength: 20, withPad: " ", startingAt: 0))   total  statuses")
        for scenario in scenarios {
            let statuses = counts[scenario.name] ?? [:]
            let count = statuses.values.reduce(0, +)
            total += count
            unexpected += statuses.filter { $0.key != scenario.expected }.values.reduce(0, +)
            let list = statuses.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            let name = scenario.name.padding(toLength: 24, withPad: " ", startingAt: 0)
            let expected = scenario.expected.padding(toLength: 20, withPad: " ", startingAt: 0)
            let countText = String(count)
            print(
                "\(name) \(expected) \(String(repeating: " ", count: max(0, 7 - countText.count)))\(countText)  \(list)"
            )
        }
        print("\(total) RPCs, \(unexpected) ended otherwise than expected")
        return unexpected
    }
}

nonisolated func makeTransport(
    _ options: Options,
    tls: Bool,
    keepalive: Bool = false
) throws
    -> HTTP2ClientTransport
{
    var configuration = HTTP2ClientTransport.Configuration()
    let port = tls ? (options.tlsPort ?? options.port) : options.port
    if tls {
        configuration.tls = .client(trustRoots: options.caFile.map { .pemFile($0) } ?? .system)
        configuration.authority = options.hostOverride.map { "\($0):\(port)" }
    }
    if keepalive {
        configuration.keepalive = .init(time: .seconds(10), timeout: .seconds(5))
    }
    return try HTTP2ClientTransport(target: "\(options.host):\(port)", configuration: configuration)
}

/// Runs scenarios on `client` until `end` (or `limit` RPCs), recording each status.
func runScenarios(
    _ scenarios: [Scenario],
    on client: CourierClient,
    until end: ContinuousClock.Instant,
    limit: Int,
    generator: inout SplitMix,
    pause: Duration,
    tally: Tally
) async {
    var made = 0
    while made < limit, ContinuousClock.now < end {
        let scenario = scenarios[Int(generator.next() % UInt64(scenarios.count))]
        let status = await outcome { try await scenario.run(client) }
        tally.record(scenario, status)
        made += 1
        if pause > .zero { try? await Task.sleep(for: pause) }
    }
}

nonisolated func runLoad(_ options: Options) async throws -> Bool {
    let tally = Tally()
    let end = ContinuousClock.now + .seconds(options.seconds)
    let pause = Duration.milliseconds(options.pauseMilliseconds)
    let hasTLS = options.tlsPort != nil
    try await withCourierClient(transport: try makeTransport(options, tls: false)) { cleartext in
        try await withCourierClient(transport: try makeTransport(options, tls: hasTLS)) { secure in
            await withTaskGroup(of: Void.self) { group in
                for worker in 0..<options.workers {
                    group.addTask {
                        var generator = SplitMix(state: options.seed &* 1_000_003 &+ UInt64(worker))
                        switch worker % 3 {
                        case 0:
                            await runScenarios(
                                options.scenarios,
                                on: cleartext,
                                until: end,
                                limit: .max,
                                generator: &generator,
                                pause: pause,
                                tally: tally
                            )
                        case 1 where hasTLS:
                            await runScenarios(
                                options.scenarios,
                                on: secure,
                                until: end,
                                limit: .max,
                                generator: &generator,
                                pause: pause,
                                tally: tally
                            )
                        default:
                            // Connect, make one to five RPCs, disconnect; TLS every other time.
                            var round = 0
                            while ContinuousClock.now < end {
                                round += 1
                                let tls = hasTLS && round % 2 == 0
                                let limit = 1 + Int(generator.next() % 5)
                                do {
                                    try await withCourierClient(transport: try makeTransport(options, tls: tls)) {
                                        client in
                                        tally.connects.add(1, ordering: .relaxed)
                                        await runScenarios(
                                            options.scenarios,
                                            on: client,
                                            until: end,
                                            limit: limit,
                                            generator: &generator,
                                            pause: pause,
                                            tally: tally
                                        )
                                    }
                                } catch {
                                    print("interop-soak: a client failed: \(error)")
                                    tally.record(Scenario(name: "connect", expected: "OK") { _ in }, "\(error)")
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    print("\(tally.connects.load(ordering: .relaxed)) short-lived clients connected and disconnected")
    return tally.report(options.scenarios) == 0
}

/// The 256 KiB pattern of the transfer's messages, made once.
let transferPattern = body(262_144)

/// A message of the transfer: its index, then the pattern (TestService adds up the sizes only; it echoes no
/// content, so bytes are checked on the server-to-client leg, and sizes and order both ways).
nonisolated func transferMessage(_ index: Int, size: Int) -> Data {
    var data = size == transferPattern.count ? transferPattern : body(size)
    withUnsafeBytes(of: UInt32(index).bigEndian) { data.replaceSubrange(0..<4, with: $0) }
    return data
}

nonisolated func runTransfer(_ options: Options) async throws -> Bool {
    let messageSize = 262_144
    let count = options.megabytes * 4
    let clock = ContinuousClock()
    return try await withCourierClient(transport: try makeTransport(options, tls: false)) { courier in
        let client = TestClient(wrapping: courier)
        let long = CallOptions(timeout: .seconds(120))
        // Server → client: the server sends zeros of the asked sizes; sizes and count are checked.
        var start = clock.now
        let received = try await client.streamingOutputCall(
            .with { $0.responseParameters = (0..<count).map { _ in .with { $0.size = Int32(messageSize) } } },
            options: long
        ) { response in
            var received = 0
            for try await message in response.messages {
                try check(message.payload.body.count == messageSize, "message \(received): wrong size")
                try check(message.payload.body.allSatisfy { $0 == 0 }, "message \(received): wrong bytes")
                received += 1
            }
            return received
        }
        try check(received == count, "server stream: \(received) of \(count) messages")
        print("server stream: \(count) × 256 KiB intact in \(clock.now - start)")

        // Client → server: the server adds the sizes up.
        start = clock.now
        let aggregated = try await client.streamingInputCall(options: long) { writer in
            for index in 0..<count {
                try await writer.write(
                    .with { $0.payload = .with { $0.body = transferMessage(index, size: messageSize) } }
                )
            }
        }
        try check(
            Int(aggregated.aggregatedPayloadSize) == count * messageSize,
            "client stream: \(aggregated.aggregatedPayloadSize) bytes aggregated"
        )
        print("client stream: \(count) × 256 KiB aggregated in \(clock.now - start)")

        // Both ways: 64 requests, each answered with a 64 KiB message, in order.
        start = clock.now
        let echoes = try await client.fullDuplexCall(options: long) { writer in
            for index in 0..<64 {
                try await writer.write(
                    .with {
                        $0.responseParameters = [.with { $0.size = Int32(65_536 + index) }]
                        $0.payload = .with { $0.body = transferMessage(index, size: 65_536) }
                    }
                )
            }
        } onResponse: { response in
            var sizes: [Int] = []
            for try await message in response.messages { sizes.append(message.payload.body.count) }
            return sizes
        }
        try check(echoes == (0..<64).map { 65_536 + $0 }, "bidirectional: sizes \(echoes)")
        print("bidirectional: 64 × 64 KiB in order in \(clock.now - start)")
        return true
    }
}

/// A server stream that sends a byte, then sleeps `quiet`, then sends another byte.
func quietStream(
    _ client: TestClient,
    quiet: Duration,
    timeout: Duration,
    onFirst: @Sendable () -> Void
)
    async throws
{
    let micros = Int32(quiet.components.seconds * 1_000_000)
    try await client.streamingOutputCall(
        .with {
            $0.responseParameters = [
                .with { $0.size = 1 },
                .with {
                    $0.size = 1
                    $0.intervalUs = micros
                },
            ]
        },
        options: CallOptions(timeout: timeout)
    ) { response in
        var count = 0
        for try await _ in response.messages {
            count += 1
            if count == 1 { onFirst() }
        }
        try check(count == 2, "\(count) messages")
    }
}

nonisolated func runKeepalive(_ options: Options) async throws -> Bool {
    let clock = ContinuousClock()
    let start = clock.now
    let status = try await withCourierClient(transport: try makeTransport(options, tls: false, keepalive: true)) {
        courier in
        await outcome {
            // 22 s: the timer re-arms a full period when bytes arrived during the last one (the first
            // response), so the first PING goes out 20 s after connecting, before the second response.
            try await quietStream(TestClient(wrapping: courier), quiet: .seconds(22), timeout: .seconds(40)) {}
        }
    }
    print("keepalive: a stream quiet for 22 s (keepalive 10 s, timeout 5 s) ended \(status) in \(clock.now - start)")
    return status == "OK"
}

nonisolated func runDeadPeer(_ options: Options) async throws -> Bool {
    let clock = ContinuousClock()
    let cut = Mutex<ContinuousClock.Instant?>(nil)
    let status = try await withCourierClient(transport: try makeTransport(options, tls: false, keepalive: true)) {
        courier in
        await outcome {
            try await quietStream(TestClient(wrapping: courier), quiet: .seconds(120), timeout: .seconds(60)) {
                cut.withLock { $0 = clock.now }
                print("first response")
                fflush(nil)
            }
        }
    }
    guard let from = cut.withLock({ $0 }) else {
        print("dead_peer: no first response (\(status))")
        return false
    }
    let elapsed = clock.now - from
    print("dead_peer: after the first response the call ended \(status) in \(elapsed) (keepalive 10 s, timeout 5 s)")
    // A PING goes out 10 s after the last bytes (the keepalive time runs from the last read), and the
    // connection is declared dead 5 s later: 15 s after the last bytes, which came just before `from`.
    return status == "UNAVAILABLE" && elapsed >= .seconds(14) && elapsed < .seconds(20)
}

nonisolated func runDeadline(_ options: Options) async throws -> Bool {
    let clock = ContinuousClock()
    return try await withCourierClient(transport: try makeTransport(options, tls: false)) { courier in
        let client = TestClient(wrapping: courier)
        _ = try await client.emptyCall(Grpc_Testing_Empty(), options: okOptions)  // connected first
        let start = clock.now
        let status = await outcome {
            try await quietStream(client, quiet: .seconds(10), timeout: .seconds(1)) {}
        }
        let elapsed = clock.now - start
        print("deadline: a 1 s deadline on a sleeping server ended \(status) after \(elapsed)")
        return status == "DEADLINE_EXCEEDED" && elapsed >= .seconds(1) && elapsed < .milliseconds(2_500)
    }
}

guard let options = parse(Array(CommandLine.arguments.dropFirst())) else {
    print(
        "usage: interop-soak --mode load|transfer|keepalive|dead_peer|deadline [--server_host H] --server_port N"
            + " [--tls_port N --ca_file F --server_host_override NAME] [--seconds N] [--workers N] [--pause_ms N]"
            + " [--seed N] [--megabytes N]"
    )
    exit(2)
}
// A bound of its own: the load's duration and a minute more, or two minutes for the other modes.
let watchdog = DispatchSource.makeTimerSource(queue: .global())
watchdog.schedule(deadline: .now() + .seconds(options.mode == "load" ? options.seconds + 60 : 120))
watchdog.setEventHandler {
    print("interop-soak: still running after its time limit; giving up")
    exit(3)
}
watchdog.resume()
let passed: Bool
do {
    switch options.mode {
    case "load": passed = try await runLoad(options)
    case "transfer": passed = try await runTransfer(options)
    case "keepalive": passed = try await runKeepalive(options)
    case "dead_peer": passed = try await runDeadPeer(options)
    default: passed = try await runDeadline(options)
    }
} catch {
    print("interop-soak: \(error)")
    passed = false
}
print(passed ? "PASS \(options.mode)" : "FAIL \(options.mode)")
exit(passed ? 0 : 1)
