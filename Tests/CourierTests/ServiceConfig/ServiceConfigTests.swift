import Testing

@testable import Courier

@Suite("Service config: JSON, validation, name matching")
struct ServiceConfigTests {
    static let full = """
        {"loadBalancingConfig": [{"round_robin": {}}, {"pick_first": {"shuffleAddressList": true}}],
         "methodConfig": [
           {"name": [{"service": "echo.Echo", "method": "Get"}], "timeout": "1.5s", "waitForReady": true,
            "maxRequestMessageBytes": 100, "maxResponseMessageBytes": 200,
            "retryPolicy": {"maxAttempts": 4, "initialBackoff": "0.1s", "maxBackoff": "1s",
                            "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE", 10]}},
           {"name": [{"service": "echo.Echo"}],
            "hedgingPolicy": {"maxAttempts": 3, "hedgingDelay": "0.5s", "nonFatalStatusCodes": ["internal"]}},
           {"name": [{}], "timeout": "10s"}],
         "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1234}}
        """

    @Test("A full config parses into its fields")
    func parsesFull() throws {
        let config = try ServiceConfig(json: Self.full)
        #expect(config.loadBalancingConfig.map(\.policyName) == ["round_robin", "pick_first"])
        #expect(config.loadBalancingConfig[1].shuffleAddressList)
        #expect(config.methodConfig.count == 3)
        let get = config.methodConfig[0]
        #expect(get.timeout == .milliseconds(1500))
        #expect(get.waitForReady == true)
        #expect(get.maxRequestMessageBytes == 100)
        #expect(
            get.executionPolicy
                == .retry(
                    RetryPolicy(
                        maxAttempts: 4,
                        initialBackoff: .milliseconds(100),
                        maxBackoff: .seconds(1),
                        backoffMultiplier: 2,
                        retryableStatusCodes: [.unavailable, .aborted]
                    )
                )
        )
        #expect(
            config.methodConfig[1].executionPolicy
                == .hedging(
                    HedgingPolicy(maxAttempts: 3, hedgingDelay: .milliseconds(500), nonFatalStatusCodes: [.internal])
                )
        )
        #expect(config.retryThrottling == RetryThrottling(maxTokens: 10, tokenRatio: 0.123))
    }

    @Test(
        "Invalid configs are rejected with invalidConfiguration",
        arguments: [
            "{",  // not JSON
            #"{"methodConfig": [{"name": [{"service": "a"}], "timeout": "1.5"}]}"#,
            #"{"methodConfig": [{"name": [{"service": "a"}], "timeout": 5}]}"#,
            #"{"methodConfig": [{"name": [{"method": "m"}]}]}"#,
            #"{"methodConfig": [{"name": [{"service": "a"}]}, {"name": [{"service": "a"}]}]}"#,
            #"{"methodConfig": [{"name": [{"service": "a"}], "retryPolicy": {"maxAttempts": 1, "initialBackoff": "1s", "maxBackoff": "1s", "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}]}"#,
            #"{"methodConfig": [{"name": [{"service": "a"}], "retryPolicy": {"maxAttempts": 2, "initialBackoff": "1s", "maxBackoff": "1s", "backoffMultiplier": 2, "retryableStatusCodes": []}}]}"#,
            #"{"methodConfig": [{"name": [{"service": "a"}], "retryPolicy": {"maxAttempts": 2, "initialBackoff": "1s", "maxBackoff": "1s", "backoffMultiplier": 0, "retryableStatusCodes": ["UNAVAILABLE"]}}]}"#,
            #"{"methodConfig": [{"name": [{"service": "a"}], "retryPolicy": {"maxAttempts": 2, "initialBackoff": "0s", "maxBackoff": "1s", "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}]}"#,
            #"{"methodConfig": [{"name": [{"service": "a"}], "retryPolicy": {"maxAttempts": 2, "initialBackoff": "1s", "maxBackoff": "1s", "backoffMultiplier": 2, "retryableStatusCodes": ["NOPE"]}}]}"#,
            #"{"methodConfig": [{"name": [{"service": "a"}], "retryPolicy": {"maxAttempts": 2, "initialBackoff": "1s", "maxBackoff": "1s", "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}, "hedgingPolicy": {"maxAttempts": 2}}]}"#,
            #"{"methodConfig": [{"name": [{"service": "a"}], "hedgingPolicy": {"maxAttempts": 2, "hedgingDelay": "-1s"}}]}"#,
            #"{"retryThrottling": {"maxTokens": 0, "tokenRatio": 0.1}}"#,
            #"{"retryThrottling": {"maxTokens": 1001, "tokenRatio": 0.1}}"#,
            #"{"retryThrottling": {"maxTokens": 10, "tokenRatio": 0}}"#,
            #"{"loadBalancingConfig": [{"a": {}, "b": {}}]}"#,
        ]
    )
    func rejectsInvalid(json: String) {
        #expect {
            _ = try ServiceConfig(json: json)
        } throws: { error in
            (error as? RuntimeError)?.code == .invalidConfiguration
        }
    }

    @Test("An invalid config given in code fails client creation")
    func invalidInCodeFailsClient() {
        var config = ServiceConfig()
        config.methodConfig = [
            MethodConfig(
                names: [.init(service: "a")],
                executionPolicy: .hedging(.init(maxAttempts: 1, hedgingDelay: .zero))
            )
        ]
        #expect(throws: RuntimeError.self) {
            _ = try CourierClient(
                transport: InMemoryTransportStub(),
                configuration: .init(serviceConfig: config)
            )
        }
    }

    @Test(
        "Durations: proto3 JSON form",
        arguments: [("1s", 1_000_000_000), ("1.5s", 1_500_000_000), (".25s", 250_000_000), ("0.000000001s", 1)]
    )
    func durations(text: String, nanos: Int64) throws {
        #expect(try parseDuration(text, at: "t") == .nanoseconds(nanos))
    }

    @Test("A method takes its exact name's config, else its service's, else the default")
    func nameMatching() throws {
        let table = MethodConfigTable(try ServiceConfig(json: Self.full).methodConfig)
        #expect(
            table.config(for: MethodDescriptor(fullyQualifiedService: "echo.Echo", method: "Get"))?.timeout
                == .milliseconds(1500)
        )
        #expect(
            table.config(for: MethodDescriptor(fullyQualifiedService: "echo.Echo", method: "Expand"))?.executionPolicy
                != nil
        )
        #expect(
            table.config(for: MethodDescriptor(fullyQualifiedService: "other.Svc", method: "Get"))?.timeout
                == .seconds(10)
        )
    }

    @Test("Call options win where set: earlier deadline, own waitForReady, smaller limits")
    func callOptionsWin() {
        let config = MethodConfig(
            names: [],
            waitForReady: true,
            timeout: .seconds(2),
            maxRequestMessageBytes: 100,
            maxResponseMessageBytes: 8 << 20
        )
        let unset = CallOptions().applying(config)
        #expect(unset.timeout == .seconds(2))
        #expect(unset.waitForReady)
        #expect(unset.maxRequestMessageBytes == 100)
        #expect(unset.maxResponseMessageBytes == 8 << 20)  // replaces the 4 MiB default
        let set = CallOptions(
            timeout: .seconds(1),
            maxRequestMessageBytes: 500,
            maxResponseMessageBytes: 10,
            waitForReady: false
        )
        .applying(config)
        #expect(set.timeout == .seconds(1))
        #expect(!set.waitForReady)
        #expect(set.maxRequestMessageBytes == 100)
        #expect(set.maxResponseMessageBytes == 10)
    }
}

/// A transport for tests that only create clients.
struct InMemoryTransportStub: ClientTransport {
    var clock: any RPCClock { SystemRPCClock() }
    func connect() async throws {}
    func beginGracefulShutdown() {}
    func withStream<Result: Sendable>(
        descriptor: MethodDescriptor,
        options: CallOptions,
        _ body: (any ClientTransportStream) async throws -> Result
    ) async throws -> Result {
        throw RPCError(code: .unavailable, message: "stub")
    }
}
