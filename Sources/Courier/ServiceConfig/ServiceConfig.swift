/// A client's service config: gRPC's `service_config.proto`, given in code or as JSON.
///
/// It chooses the load-balancing policy (for the transport) and, per method, the timeout, wait-for-ready,
/// message limits and a retry or hedging policy; ``retryThrottling`` limits retries and hedges of the whole
/// client when the server is failing.
///
/// ```swift
/// let config = try ServiceConfig(json: """
///     {"methodConfig": [{"name": [{"service": "echo.Echo"}], "timeout": "1.5s",
///       "retryPolicy": {"maxAttempts": 3, "initialBackoff": "0.1s", "maxBackoff": "1s",
///                       "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}]}
///     """)
/// let client = try CourierClient(transport: transport, configuration: .init(serviceConfig: config))
/// ```
///
/// Values are checked when a client is created from the config (``validate()``): an invalid config fails
/// there with ``RuntimeError/Code/invalidConfiguration``, never later.
public struct ServiceConfig: Sendable, Hashable {
    /// The load-balancing policies, in order of preference; the transport uses the first it knows. Empty:
    /// the transport's default (`pick_first` in gRPC).
    public var loadBalancingConfig: [LoadBalancingConfig]
    /// Per-method settings; see ``MethodConfig/Name`` for how a call finds its config.
    public var methodConfig: [MethodConfig]
    /// Throttles retries and hedges when too many attempts fail; `nil`: no throttling.
    public var retryThrottling: RetryThrottling?

    /// Creates a service config.
    ///
    /// - Parameters:
    ///   - loadBalancingConfig: See ``loadBalancingConfig``.
    ///   - methodConfig: See ``methodConfig``.
    ///   - retryThrottling: See ``retryThrottling``.
    public init(
        loadBalancingConfig: [LoadBalancingConfig] = [],
        methodConfig: [MethodConfig] = [],
        retryThrottling: RetryThrottling? = nil
    ) {
        self.loadBalancingConfig = loadBalancingConfig
        self.methodConfig = methodConfig
        self.retryThrottling = retryThrottling
    }

    /// Checks every value against gRPC's rules: names unique and well-formed, attempts at least 2,
    /// backoffs and multipliers positive, status-code lists non-empty where required, throttling within
    /// its bounds, limits not negative.
    ///
    /// - Throws: ``RuntimeError`` with code ``RuntimeError/Code/invalidConfiguration`` naming the value.
    public func validate() throws(RuntimeError) {
        var seen = Set<MethodConfig.Name>()
        for (index, config) in methodConfig.enumerated() {
            let at = "methodConfig[\(index)]"
            for name in config.names {
                if name.service.isEmpty && !name.method.isEmpty {
                    throw .invalidConfig("\(at): a name with a method must name its service ('\(name.method)').")
                }
                guard seen.insert(name).inserted else {
                    throw .invalidConfig("\(at): the name '\(name)' appears more than once.")
                }
            }
            if let timeout = config.timeout, timeout < .zero {
                throw .invalidConfig("\(at).timeout must not be negative.")
            }
            if let bytes = config.maxRequestMessageBytes, bytes < 0 {
                throw .invalidConfig("\(at).maxRequestMessageBytes must not be negative.")
            }
            if let bytes = config.maxResponseMessageBytes, bytes < 0 {
                throw .invalidConfig("\(at).maxResponseMessageBytes must not be negative.")
            }
            switch config.executionPolicy {
            case nil: break
            case .retry(let policy): try policy.validate(at: "\(at).retryPolicy")
            case .hedging(let policy): try policy.validate(at: "\(at).hedgingPolicy")
            }
        }
        if let throttling = retryThrottling {
            guard throttling.maxTokens > 0, throttling.maxTokens <= 1000 else {
                throw .invalidConfig("retryThrottling.maxTokens must be in 1...1000 (is \(throttling.maxTokens)).")
            }
            guard throttling.tokenRatio > 0, throttling.tokenRatio.isFinite else {
                throw .invalidConfig("retryThrottling.tokenRatio must be greater than zero.")
            }
        }
        for (index, lb) in loadBalancingConfig.enumerated() where lb.policyName.isEmpty {
            throw .invalidConfig("loadBalancingConfig[\(index)] has no policy name.")
        }
    }
}

/// One load-balancing policy of a ``ServiceConfig``: its name and its JSON config, as the transport
/// receives them (through ``ClientTransport/applyLoadBalancingConfig(_:)``).
public struct LoadBalancingConfig: Sendable, Hashable {
    /// The policy's name, such as `pick_first` or `round_robin`.
    public var policyName: String
    /// The policy's config object (`{}` when it takes none).
    public var config: JSONValue

    /// Creates a policy entry.
    ///
    /// - Parameters:
    ///   - policyName: See ``policyName``.
    ///   - config: See ``config``.
    public init(policyName: String, config: JSONValue = .object([:])) {
        self.policyName = policyName
        self.config = config
    }

    /// `pick_first`: one connection at a time, to the first address that works.
    ///
    /// - Parameter shuffleAddressList: Whether to shuffle the addresses first (gRFC A62).
    public static func pickFirst(shuffleAddressList: Bool = false) -> LoadBalancingConfig {
        LoadBalancingConfig(
            policyName: "pick_first",
            config: shuffleAddressList ? .object(["shuffleAddressList": .bool(true)]) : .object([:])
        )
    }

    /// `round_robin`: a connection to every address, calls spread over the ready ones.
    public static var roundRobin: LoadBalancingConfig { LoadBalancingConfig(policyName: "round_robin") }

    /// `pick_first`'s `shuffleAddressList`; `false` when absent or not a boolean.
    public var shuffleAddressList: Bool {
        if case .object(let fields) = config, case .bool(let value)? = fields["shuffleAddressList"] { return value }
        return false
    }
}

/// A JSON value, as a policy's config in a ``LoadBalancingConfig`` carries it.
public enum JSONValue: Sendable, Hashable {
    /// `null`.
    case null
    /// `true` or `false`.
    case bool(Bool)
    /// A number.
    case number(Double)
    /// A string.
    case string(String)
    /// An array.
    case array([JSONValue])
    /// An object.
    case object([String: JSONValue])
}

/// Limits retries and hedges of a whole client when attempts keep failing (gRFC A6 retry throttling).
///
/// The client keeps a token count, starting at ``maxTokens``: an attempt that fails with a retryable (or
/// non-fatal) status takes one token, a call that gets its response takes ``tokenRatio``; no retry or
/// hedge starts while the count is at or below half of ``maxTokens``.
public struct RetryThrottling: Sendable, Hashable {
    /// The token count's ceiling and start, 1...1000.
    public var maxTokens: Int
    /// Tokens given back per successful call, greater than zero (gRPC keeps three decimal places).
    public var tokenRatio: Double

    /// Creates throttling settings.
    ///
    /// - Parameters:
    ///   - maxTokens: See ``maxTokens``.
    ///   - tokenRatio: See ``tokenRatio``.
    public init(maxTokens: Int, tokenRatio: Double) {
        self.maxTokens = maxTokens
        self.tokenRatio = tokenRatio
    }
}

extension RuntimeError {
    static func invalidConfig(_ message: String, cause: (any Error)? = nil) -> RuntimeError {
        RuntimeError(code: .invalidConfiguration, message: "Invalid service config: \(message)", cause: cause)
    }
}
