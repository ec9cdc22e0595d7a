// lb-benchmark: the client's CPU per unary RPC with round_robin over 4 local backends against the same load on
// one connection (pick_first to one backend). The backends run in a child process (this executable with
// --serve), so getrusage(RUSAGE_SELF) counts the client alone.
//
//   swift build -c release --product lb-benchmark
//   .build/release/lb-benchmark [--rpcs N] [--in-flight N] [--rounds N]
//
// Defaults: 40,000 RPCs of 64 bytes each way, 32 in flight, 3 rounds alternating the two modes (after a
// warm-up of each); prints CPU µs per RPC (user + system) and RPCs per second per round, the medians, and
// the ratio round_robin / one connection. A third mode, round_robin over the one backend, separates the
// policy's own cost from the cost of spreading the load over four connections.

import Courier
import CourierHTTP2
import Foundation

#if canImport(Glibc)
import Glibc
#endif

struct BytesCodec: MessageCodec {
    func serialize(_ message: [UInt8]) throws -> MessageBuffer { MessageBuffer(message) }
    func deserialize(_ buffer: MessageBuffer) throws -> [UInt8] { Array(buffer) }
}

let unaryMethod = MethodDescriptor(service: ServiceDescriptor(package: "bench", service: "Bench"), method: "Unary")
let codec = BytesCodec()
let payload = [UInt8](repeating: 7, count: 64)

struct EchoService: RegistrableRPCService {
    func registerMethods(with router: inout RPCRouter) {
        router.registerUnary(forMethod: unaryMethod, deserializer: codec, serializer: codec) { request, _ in
            ServerResponse(message: request.message)
        }
    }
}

/// --serve N: N servers on 127.0.0.1, one loop each; prints `PORTS p1,p2,...`, serves until stdin closes.
nonisolated func serve(_ count: Int) async throws {
    var configuration = HTTP2ServerTransport.Configuration()
    configuration.loops = 1
    let transports = (0..<count).map { _ in
        HTTP2ServerTransport(address: .ipv4(host: "127.0.0.1", port: 0), configuration: configuration)
    }
    let servers = transports.map { CourierServer(transport: $0, services: [EchoService()]) }
    try await withThrowingTaskGroup(of: Void.self) { group in
        for server in servers { group.addTask { try await server.run() } }
        var ports: [String] = []
        for transport in transports { ports.append("\(try await transport.listeningAddress().port ?? 0)") }
        print("PORTS \(ports.joined(separator: ","))")
        fflush(nil)
        while readLine() != nil {}  // until the parent closes stdin
        for server in servers { server.beginGracefulShutdown() }
        try await group.waitForAll()
    }
}

/// User + system CPU of this process so far, in microseconds, and its voluntary context switches (how often
/// its threads waited: one per event-loop wakeup, roughly).
func cpuMicroseconds() -> (cpu: Double, waits: Double) {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    func micro(_ time: timeval) -> Double { Double(time.tv_sec) * 1e6 + Double(time.tv_usec) }
    return (micro(usage.ru_utime) + micro(usage.ru_stime), Double(usage.ru_nvcsw))
}

/// `rpcs` unary RPCs with `inFlight` callers; the CPU µs per RPC, the RPCs per second and the voluntary
/// context switches per RPC.
nonisolated func load(
    _ client: CourierClient,
    rpcs: Int,
    inFlight: Int
) async throws -> (cpu: Double, rate: Double, waits: Double) {
    let cpuBefore = cpuMicroseconds()
    let start = ContinuousClock.now
    try await withThrowingTaskGroup(of: Void.self) { group in
        for caller in 0..<inFlight {
            let share = rpcs / inFlight + (caller < rpcs % inFlight ? 1 : 0)
            group.addTask {
                for _ in 0..<share {
                    _ = try await client.unary(
                        request: ClientRequest(message: payload),
                        descriptor: unaryMethod,
                        serializer: codec,
                        deserializer: codec
                    )
                }
            }
        }
        try await group.waitForAll()
    }
    let elapsed = ContinuousClock.now - start
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    let after = cpuMicroseconds()
    return (
        (after.cpu - cpuBefore.cpu) / Double(rpcs), Double(rpcs) / seconds,
        (after.waits - cpuBefore.waits) / Double(rpcs)
    )
}

nonisolated func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted.count % 2 == 1
        ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

nonisolated func benchmark(rpcs: Int, inFlight: Int, rounds: Int, only: Int?) async throws {
    let child = Process()
    child.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
    child.arguments = ["--serve", "4"]
    let output = Pipe()
    let input = Pipe()
    child.standardOutput = output
    child.standardInput = input
    try child.run()
    defer {
        try? input.fileHandleForWriting.close()
        child.waitUntilExit()
    }
    var line = [UInt8]()
    while true {
        let byte = try output.fileHandleForReading.read(upToCount: 1) ?? Data()
        if byte.isEmpty || byte.first == UInt8(ascii: "\n") { break }
        line.append(contentsOf: byte)
    }
    let text = String(decoding: line, as: UTF8.self)
    guard text.hasPrefix("PORTS ") else {
        print("lb-benchmark: the servers said \(text.debugDescription)")
        exit(1)
    }
    let ports = text.dropFirst(6).split(separator: ",").map(String.init)

    var oneConnection = HTTP2ClientTransport.Configuration()
    oneConnection.loadBalancing = .pickFirst()
    var roundRobin = HTTP2ClientTransport.Configuration()
    roundRobin.loadBalancing = .roundRobin
    let modes: [(name: String, target: String, configuration: HTTP2ClientTransport.Configuration)] = [
        ("one connection", "127.0.0.1:\(ports[0])", oneConnection),
        ("round_robin x4", "ipv4:" + ports.map { "127.0.0.1:\($0)" }.joined(separator: ","), roundRobin),
        // The policy alone, on one connection: what round_robin costs apart from spreading the load.
        ("round_robin x1", "ipv4:127.0.0.1:\(ports[0])", roundRobin),
    ]
    print("lb-benchmark: \(rpcs) unary RPCs of \(payload.count) B, \(inFlight) in flight, \(rounds) rounds")
    var cpu: [[Double]] = Array(repeating: [], count: modes.count)
    var rates: [[Double]] = Array(repeating: [], count: modes.count)
    for round in 0...rounds {
        for (index, mode) in modes.enumerated() where only == nil || only == index {
            let transport = try HTTP2ClientTransport(target: mode.target, configuration: mode.configuration)
            let result = try await withCourierClient(transport: transport) { client in
                // Every connection up before measuring.
                _ = try await load(client, rpcs: 1_000, inFlight: inFlight)
                return try await load(client, rpcs: rpcs, inFlight: inFlight)
            }
            if round == 0 { continue }  // warm-up
            cpu[index].append(result.cpu)
            rates[index].append(result.rate)
            let name = mode.name.padding(toLength: 16, withPad: " ", startingAt: 0)
            print(
                "round \(round)  \(name) \(String(format: "%6.2f", result.cpu)) µs CPU/RPC"
                    + "  \(Int(result.rate)) RPC/s  \(String(format: "%.2f", result.waits)) waits/RPC"
            )
        }
    }
    guard only == nil else { return }
    for (index, mode) in modes.enumerated() {
        let name = mode.name.padding(toLength: 16, withPad: " ", startingAt: 0)
        print(
            "median   \(name) \(String(format: "%6.2f", median(cpu[index]))) µs CPU/RPC"
                + "  \(Int(median(rates[index]))) RPC/s"
        )
    }
    print(
        "ratio round_robin x4 / one connection, CPU per RPC: \(String(format: "%.3f", median(cpu[1]) / median(cpu[0])))"
    )
    print(
        "ratio round_robin x1 / one connection, CPU per RPC: \(String(format: "%.3f", median(cpu[2]) / median(cpu[0])))"
    )
}

var arguments = CommandLine.arguments.dropFirst().makeIterator()
var rpcs = 40_000
var inFlight = 32
var rounds = 3
var serveCount: Int?
var only: Int?
while let argument = arguments.next() {
    switch argument {
    case "--rpcs": rpcs = arguments.next().flatMap(Int.init) ?? rpcs
    case "--in-flight": inFlight = arguments.next().flatMap(Int.init) ?? inFlight
    case "--rounds": rounds = arguments.next().flatMap(Int.init) ?? rounds
    case "--only": only = arguments.next().flatMap(Int.init)  // one mode (0, 1, 2), e.g. for perf record
    case "--serve": serveCount = arguments.next().flatMap(Int.init) ?? 4
    default:
        print("usage: lb-benchmark [--rpcs N] [--in-flight N] [--rounds N] [--only 0|1|2]")
        exit(2)
    }
}
if let serveCount {
    try await serve(serveCount)
} else {
    try await benchmark(rpcs: max(rpcs, 1), inFlight: max(inFlight, 1), rounds: max(rounds, 1), only: only)
}
