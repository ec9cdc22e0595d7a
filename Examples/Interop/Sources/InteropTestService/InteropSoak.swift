public import Courier  // the soak takes Courier clients
internal import Foundation
internal import GRPCTestingProtos
internal import SwiftProtobuf

/// The official soak cases (grpc/grpc doc/interop-test-descriptions.md, `rpc_soak` and `channel_soak`):
/// many large_unary RPCs in sequence, on one channel (`rpc_soak`) or each on a channel of its own
/// (`channel_soak`, which connects and disconnects every iteration), each counted as failed when it
/// does not end OK with the right payload or takes longer than the per-iteration limit.
public struct InteropSoak: Sendable {
    /// Which soak.
    public enum Kind: String, Sendable, CaseIterable {
        /// Every RPC on the same channel.
        case rpcSoak = "rpc_soak"
        /// A new channel for every RPC.
        case channelSoak = "channel_soak"
    }

    /// The soak flags of the official interop clients, with grpc-go's defaults.
    public struct Configuration: Sendable, Hashable {
        /// `--soak_iterations`: RPCs to make.
        public var iterations = 10
        /// `--soak_max_failures`: failed iterations allowed.
        public var maxFailures = 0
        /// `--soak_per_iteration_max_acceptable_latency_ms`: an iteration that takes longer fails.
        public var perIterationMaxAcceptableLatency: Duration = .milliseconds(1_000)
        /// `--soak_overall_timeout_seconds`: the soak stops (and fails, if not all iterations ran) after this.
        public var overallTimeout: Duration = .seconds(10)
        /// `--soak_min_time_ms_between_rpcs`: the least time from one RPC's start to the next one's.
        public var minTimeBetweenRPCs: Duration = .zero
        /// `--soak_request_size`: the request payload, in bytes.
        public var requestSize = 271_828
        /// `--soak_response_size`: the response payload, in bytes.
        public var responseSize = 314_159

        /// The defaults.
        public init() {}

        /// Sets the option of a `--soak_*` flag.
        ///
        /// - Parameters:
        ///   - flag: The flag, such as `--soak_iterations`.
        ///   - value: Its value.
        /// - Returns: `false` if the flag isn't a soak flag or the value isn't a non-negative integer.
        public mutating func set(_ flag: String, _ value: String?) -> Bool {
            guard let number = value.flatMap(Int.init), number >= 0 else { return false }
            switch flag {
            case "--soak_iterations": iterations = number
            case "--soak_max_failures": maxFailures = number
            case "--soak_per_iteration_max_acceptable_latency_ms":
                perIterationMaxAcceptableLatency = .milliseconds(number)
            case "--soak_overall_timeout_seconds": overallTimeout = .seconds(number)
            case "--soak_min_time_ms_between_rpcs": minTimeBetweenRPCs = .milliseconds(number)
            case "--soak_request_size": requestSize = number
            case "--soak_response_size": responseSize = number
            default: return false
            }
            return true
        }
    }

    /// What a soak did.
    public struct Result: Sendable, CustomStringConvertible {
        /// Which soak.
        public var kind: Kind
        /// The iterations asked for.
        public var iterationsWanted: Int
        /// The iterations run (fewer when the overall timeout stopped the soak).
        public var iterationsRun = 0
        /// The iterations that failed.
        public var failures = 0
        /// The failed iterations' descriptions (at most 10 kept).
        public var failureDescriptions: [String] = []
        /// Every iteration's latency, in the order they ran.
        public var latencies: [Duration] = []
        /// The maximum failures allowed.
        public var maxFailures: Int

        /// Whether the soak passed: every iteration ran and no more than the allowed number failed.
        public var passed: Bool { iterationsRun == iterationsWanted && failures <= maxFailures }

        /// The latency at quantile `q` (0...1) in milliseconds.
        public func latencyMilliseconds(at q: Double) -> Double {
            let sorted = latencies.sorted()
            guard !sorted.isEmpty else { return 0 }
            let index = min(sorted.count - 1, Int((Double(sorted.count) * q).rounded(.up)) - 1)
            let duration = sorted[max(0, index)]
            return Double(duration.components.seconds) * 1_000 + Double(duration.components.attoseconds) / 1e15
        }

        public var description: String {
            func ms(_ q: Double) -> String { String(format: "%.2f", latencyMilliseconds(at: q)) }
            return "\(kind.rawValue): \(iterationsRun)/\(iterationsWanted) iterations, \(failures) failed"
                + " (max \(maxFailures)); latency ms p50 \(ms(0.5)) p90 \(ms(0.9)) p99 \(ms(0.99)) max \(ms(1))"
        }
    }

    /// Runs a soak.
    ///
    /// - Parameters:
    ///   - kind: Which soak; it only labels the result, `channel` decides the channels.
    ///   - configuration: The flags.
    ///   - channel: Runs one iteration's body with a client: the same one every time for `rpc_soak`, a
    ///     newly connected one (closed afterwards) for `channel_soak`.
    /// - Returns: What happened; ``Result/passed`` says whether the soak passed.
    public static func run(
        _ kind: Kind,
        configuration: Configuration,
        channel: (_ body: (CourierClient) async throws -> Void) async throws -> Void
    ) async -> Result {
        var result = Result(
            kind: kind,
            iterationsWanted: configuration.iterations,
            maxFailures: configuration.maxFailures
        )
        let clock = ContinuousClock()
        let start = clock.now
        let overallDeadline = start + configuration.overallTimeout
        let request = Grpc_Testing_SimpleRequest.with {
            $0.responseSize = Int32(clamping: configuration.responseSize)
            $0.payload = .with { $0.body = Data(count: configuration.requestSize) }
        }
        for iteration in 0..<configuration.iterations {
            let iterationStart = clock.now
            guard iterationStart < overallDeadline else { break }
            let earliestNext = iterationStart + configuration.minTimeBetweenRPCs
            var failure: String?
            do {
                try await channel { client in
                    let response = try await Grpc_Testing_TestService.Client(wrapping: client).unaryCall(
                        request,
                        options: CallOptions(timeout: overallDeadline - clock.now)
                    )
                    if response.payload.body.count != configuration.responseSize {
                        failure = "payload of \(response.payload.body.count) bytes, not \(configuration.responseSize)"
                    }
                }
            } catch {
                failure = "\(error)"
            }
            let latency = clock.now - iterationStart
            result.iterationsRun += 1
            result.latencies.append(latency)
            if failure == nil, latency > configuration.perIterationMaxAcceptableLatency {
                failure = "took \(latency), over \(configuration.perIterationMaxAcceptableLatency)"
            }
            if let failure {
                result.failures += 1
                if result.failureDescriptions.count < 10 {
                    result.failureDescriptions.append("iteration \(iteration): \(failure)")
                }
            }
            if earliestNext > clock.now {
                try? await Task.sleep(until: min(earliestNext, overallDeadline), clock: clock)
            }
        }
        return result
    }
}
