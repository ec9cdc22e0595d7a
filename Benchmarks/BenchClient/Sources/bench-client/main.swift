// bench-client: load against any grpc.testing.BenchmarkService server.
//
//   bench-client --target 127.0.0.1:50051 --scenario pingpong --connections 1 --streams 64 \
//       --size 1024 --warmup 2 --duration 10 --json result.json
//
// --timeout SECONDS gives each unary call that timeout (so it sends grpc-timeout, as clients with deadlines do).
//
// Scenarios: unary (calls in flight per connection = --streams), pingpong (StreamingCall: --streams streams
// per connection, one request and one response at a time), fromserver (StreamingFromServer: the server sends
// until the client cancels). Reports requests (or messages) per second, MB/s and latency percentiles from an
// HdrHistogram, prints a live progress line each second, and writes a JSON result file if asked.

import Courier
import CourierHTTP2
import Foundation
import GRPCTestingProtos
import Histogram
import SwiftProtobuf
import Synchronization

struct Options: Sendable {
    var target = "127.0.0.1:50051"
    var scenario = "unary"
    var connections = 1
    var streams = 1
    var size = 0
    var warmup = 2.0
    var duration = 10.0
    var json: String?
    var timeout: Double?
}

func parse() -> Options {
    var options = Options()
    var arguments = CommandLine.arguments.dropFirst().makeIterator()
    while let flag = arguments.next() {
        let value = arguments.next() ?? ""
        switch flag {
        case "--target": options.target = value
        case "--scenario": options.scenario = value
        case "--connections": options.connections = Int(value) ?? 1
        case "--streams": options.streams = Int(value) ?? 1
        case "--size": options.size = Int(value) ?? 0
        case "--warmup": options.warmup = Double(value) ?? 2
        case "--duration": options.duration = Double(value) ?? 10
        case "--json": options.json = value
        case "--timeout": options.timeout = Double(value)
        default:
            print("unknown flag \(flag)")
            exit(2)
        }
    }
    return options
}

/// Latencies (µs) and counts, shared by the workers; recorded only in the measured window.
final class Recorder: Sendable {
    private struct State {
        var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
        var count = 0
        var measuring = false
        var lastProgressCount = 0
    }
    private let state = Mutex(State())

    func record(microseconds: UInt64) {
        state.withLock { state in
            guard state.measuring else { return }
            state.histogram.record(microseconds)
            state.count += 1
        }
    }

    func count() -> Int { state.withLock { $0.count } }
    func start() { state.withLock { $0.measuring = true } }
    func stop() -> (Int, Histogram<UInt64>) {
        state.withLock { state in
            state.measuring = false
            return (state.count, state.histogram)
        }
    }
}

func microseconds(since start: ContinuousClock.Instant) -> UInt64 {
    let elapsed = ContinuousClock.now - start
    return UInt64(max(0, Double(elapsed.components.seconds) * 1e6 + Double(elapsed.components.attoseconds) / 1e12))
}

func work(_ client: Grpc_Testing_BenchmarkService.Client, _ options: Options, _ recorder: Recorder) async throws {
    let request = Grpc_Testing_SimpleRequest.with {
        $0.responseSize = Int32(options.size)
        $0.payload = .with { $0.body = Data(count: options.size) }
    }
    switch options.scenario {
    case "unary":
        let callOptions = CallOptions(timeout: options.timeout.map { .milliseconds(Int64($0 * 1000)) })
        while !Task.isCancelled {
            let start = ContinuousClock.now
            _ = try await client.unaryCall(request, options: callOptions)
            recorder.record(microseconds: microseconds(since: start))
        }
    case "pingpong":
        let (turns, turn) = AsyncStream<Void>.makeStream()
        turn.yield()
        try await client.streamingCall { writer in
            for await _ in turns { try await writer.write(request) }
        } onResponse: { response in
            var start = ContinuousClock.now
            for try await _ in response.messages {
                recorder.record(microseconds: microseconds(since: start))
                if Task.isCancelled { break }
                start = ContinuousClock.now
                turn.yield()
            }
            turn.finish()
        }
    case "fromserver":
        try await client.streamingFromServer(request) { response in
            var last = ContinuousClock.now
            for try await _ in response.messages {
                recorder.record(microseconds: microseconds(since: last))  // the gap between messages
                last = ContinuousClock.now
                if Task.isCancelled { break }
            }
        }
    default:
        print("unknown scenario \(options.scenario)")
        exit(2)
    }
}

let options = parse()
let recorder = Recorder()
var transports: [HTTP2ClientTransport] = []
for _ in 0..<options.connections {
    transports.append(try HTTP2ClientTransport(target: options.target))
}
let workers = Task {
    try await withThrowingTaskGroup(of: Void.self) { group in
        for transport in transports {
            group.addTask {
                // The callers run on the transport's loop thread, as the calls do: no hops per call.
                try await transport.withExecutorPreference {
                    try await withCourierClient(transport: transport) { courier in
                        let client = Grpc_Testing_BenchmarkService.Client(wrapping: courier)
                        await withTaskGroup(of: Void.self) { streams in
                            for _ in 0..<options.streams {
                                streams.addTask {
                                    do { try await work(client, options, recorder) } catch {
                                        if !Task.isCancelled { print("worker failed: \(error)") }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        try await group.waitForAll()
    }
}

func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
        + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}

try await Task.sleep(for: .seconds(options.warmup))
recorder.start()
let cpuAtStart = cpuSeconds()
let started = ContinuousClock.now
var previous = 0
for second in 1...max(1, Int(options.duration.rounded())) {
    try await Task.sleep(until: started.advanced(by: .seconds(second)), clock: .continuous)
    let now = recorder.count()
    print("\r[\(second)s] \(now - previous) /s   ", terminator: "")
    fflush(nil)
    previous = now
}
let elapsed = ContinuousClock.now - started
let (count, histogram) = recorder.stop()
let clientCPU = cpuSeconds() - cpuAtStart
workers.cancel()
_ = await workers.result

let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
let rate = Double(count) / seconds
let bytesPerItem = Double(options.size) * (options.scenario == "fromserver" ? 1 : 2)
let megabytes = rate * bytesPerItem / 1e6
let percentiles = [50.0, 90.0, 99.0, 99.9].map { histogram.valueAtPercentile($0) }
print(
    "\n\(options.scenario) connections=\(options.connections) streams=\(options.streams) size=\(options.size): "
        + "\(Int(rate)) /s, \(String(format: "%.1f", megabytes)) MB/s, p50 \(percentiles[0]) µs, p90 \(percentiles[1]) µs, "
        + "p99 \(percentiles[2]) µs, p99.9 \(percentiles[3]) µs, \(Int(Double(count) / max(clientCPU, 1e-9))) per client CPU-s"
)
if let path = options.json {
    let result: [String: Any] = [
        "scenario": options.scenario, "target": options.target, "connections": options.connections,
        "streams": options.streams, "size": options.size, "seconds": seconds, "count": count, "rate": rate,
        "megabytesPerSecond": megabytes, "clientCPUSeconds": clientCPU,
        "perClientCPUSecond": Double(count) / max(clientCPU, 1e-9),
        "latencyMicroseconds": [
            "p50": percentiles[0], "p90": percentiles[1], "p99": percentiles[2], "p999": percentiles[3],
        ],
    ]
    try JSONSerialization.data(withJSONObject: result, options: [.prettyPrinted, .sortedKeys]).write(
        to: URL(fileURLWithPath: path)
    )
}
exit(0)
