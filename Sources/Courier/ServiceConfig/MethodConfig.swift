/// Settings for the calls of some methods: the `methodConfig` entries of a ``ServiceConfig``.
///
/// Unset fields leave the call's ``CallOptions`` as they are. Where both say something, the call's
/// options win as in grpc-go: the earlier deadline applies, a `waitForReady` the call set wins, and the
/// smaller message limit applies.
public struct MethodConfig: Sendable, Hashable {
    /// Which methods a config applies to.
    ///
    /// A call takes the config whose name is its exact `service/method`; else one naming its service with
    /// an empty method; else the default, with both empty. A name that gives a method must give its
    /// service.
    public struct Name: Sendable, Hashable, CustomStringConvertible {
        /// The fully-qualified service name, such as `echo.Echo`; empty for the default config.
        public var service: String
        /// The method's name, such as `Get`; empty for every method of ``service``.
        public var method: String

        /// Creates a name.
        ///
        /// - Parameters:
        ///   - service: See ``service``.
        ///   - method: See ``method``.
        public init(service: String, method: String = "") {
            self.service = service
            self.method = method
        }

        /// The default name: every method no other name matches.
        public static var `default`: Name { Name(service: "") }

        public var description: String {
            method.isEmpty ? (service.isEmpty ? "(default)" : service) : "\(service)/\(method)"
        }
    }

    /// What happens when an attempt fails: retries or hedging, never both.
    public enum ExecutionPolicy: Sendable, Hashable {
        /// Retry a failed attempt, one attempt at a time.
        case retry(RetryPolicy)
        /// Send attempts in parallel, spaced by a delay; the first response wins.
        case hedging(HedgingPolicy)
    }

    /// The methods this config applies to.
    public var names: [Name]
    /// Whether calls wait for the transport to be ready; see ``CallOptions/waitForReady``.
    public var waitForReady: Bool?
    /// The longest a call may take; see ``CallOptions/timeout``.
    public var timeout: Duration?
    /// The largest request message, in bytes; see ``CallOptions/maxRequestMessageBytes``.
    public var maxRequestMessageBytes: Int?
    /// The largest response message, in bytes; see ``CallOptions/maxResponseMessageBytes``.
    public var maxResponseMessageBytes: Int?
    /// Retries or hedging; `nil`: one attempt (and the transport's transparent retry).
    public var executionPolicy: ExecutionPolicy?

    /// Creates a method config.
    ///
    /// - Parameters:
    ///   - names: See ``names``.
    ///   - waitForReady: See ``waitForReady``.
    ///   - timeout: See ``timeout``.
    ///   - maxRequestMessageBytes: See ``maxRequestMessageBytes``.
    ///   - maxResponseMessageBytes: See ``maxResponseMessageBytes``.
    ///   - executionPolicy: See ``executionPolicy``.
    public init(
        names: [Name],
        waitForReady: Bool? = nil,
        timeout: Duration? = nil,
        maxRequestMessageBytes: Int? = nil,
        maxResponseMessageBytes: Int? = nil,
        executionPolicy: ExecutionPolicy? = nil
    ) {
        self.names = names
        self.waitForReady = waitForReady
        self.timeout = timeout
        self.maxRequestMessageBytes = maxRequestMessageBytes
        self.maxResponseMessageBytes = maxResponseMessageBytes
        self.executionPolicy = executionPolicy
    }
}

/// Retries per gRFC A6: after a failure with one of ``retryableStatusCodes``, the call is attempted
/// again after a randomized exponential backoff, up to ``maxAttempts`` attempts in all.
///
/// The wait before retry *n* is random in `0 ..< min(initialBackoff × backoffMultiplier^(n-1), maxBackoff)`;
/// a server's `grpc-retry-pushback-ms` replaces it (and a negative or invalid one stops retrying). A
/// call is committed, and never retried again, once response headers arrive.
public struct RetryPolicy: Sendable, Hashable {
    /// Attempts in all, the first included: at least 2; more than 5 counts as 5, as in gRPC.
    public var maxAttempts: Int
    /// The upper bound of the first wait; greater than zero.
    public var initialBackoff: Duration
    /// The largest upper bound of any wait; greater than zero.
    public var maxBackoff: Duration
    /// How much the bound grows per retry; greater than zero.
    public var backoffMultiplier: Double
    /// The status codes that are retried; not empty.
    public var retryableStatusCodes: Set<Status.Code>

    /// Creates a retry policy; ``ServiceConfig/validate()`` checks its values.
    ///
    /// - Parameters:
    ///   - maxAttempts: See ``maxAttempts``.
    ///   - initialBackoff: See ``initialBackoff``.
    ///   - maxBackoff: See ``maxBackoff``.
    ///   - backoffMultiplier: See ``backoffMultiplier``.
    ///   - retryableStatusCodes: See ``retryableStatusCodes``.
    public init(
        maxAttempts: Int,
        initialBackoff: Duration,
        maxBackoff: Duration,
        backoffMultiplier: Double,
        retryableStatusCodes: Set<Status.Code>
    ) {
        self.maxAttempts = maxAttempts
        self.initialBackoff = initialBackoff
        self.maxBackoff = maxBackoff
        self.backoffMultiplier = backoffMultiplier
        self.retryableStatusCodes = retryableStatusCodes
    }

    func validate(at path: String) throws(RuntimeError) {
        guard maxAttempts >= 2 else {
            throw .invalidConfig("\(path).maxAttempts must be at least 2 (is \(maxAttempts)).")
        }
        guard initialBackoff > .zero else { throw .invalidConfig("\(path).initialBackoff must be greater than zero.") }
        guard maxBackoff > .zero else { throw .invalidConfig("\(path).maxBackoff must be greater than zero.") }
        guard backoffMultiplier > 0, backoffMultiplier.isFinite else {
            throw .invalidConfig("\(path).backoffMultiplier must be greater than zero.")
        }
        guard !retryableStatusCodes.isEmpty else {
            throw .invalidConfig("\(path).retryableStatusCodes must not be empty.")
        }
        guard !retryableStatusCodes.contains(.ok) else {
            throw .invalidConfig("\(path).retryableStatusCodes must not contain OK.")
        }
    }
}

/// Hedging per gRFC A6: the call is sent up to ``maxAttempts`` times, a new attempt every
/// ``hedgingDelay`` while none has answered; the first attempt to receive response headers (or an OK
/// status) wins and the others are cancelled.
///
/// A failure with one of ``nonFatalStatusCodes`` starts the next attempt at once; any other failure
/// ends the call with that status. A server's `grpc-retry-pushback-ms` delays the next attempt (negative:
/// no more attempts).
public struct HedgingPolicy: Sendable, Hashable {
    /// Attempts in all, the first included: at least 2; more than 5 counts as 5, as in gRPC.
    public var maxAttempts: Int
    /// The time between attempts; zero sends them all at once. Not negative.
    public var hedgingDelay: Duration
    /// The status codes after which hedging goes on; may be empty.
    public var nonFatalStatusCodes: Set<Status.Code>

    /// Creates a hedging policy; ``ServiceConfig/validate()`` checks its values.
    ///
    /// - Parameters:
    ///   - maxAttempts: See ``maxAttempts``.
    ///   - hedgingDelay: See ``hedgingDelay``.
    ///   - nonFatalStatusCodes: See ``nonFatalStatusCodes``.
    public init(maxAttempts: Int, hedgingDelay: Duration, nonFatalStatusCodes: Set<Status.Code> = []) {
        self.maxAttempts = maxAttempts
        self.hedgingDelay = hedgingDelay
        self.nonFatalStatusCodes = nonFatalStatusCodes
    }

    func validate(at path: String) throws(RuntimeError) {
        guard maxAttempts >= 2 else {
            throw .invalidConfig("\(path).maxAttempts must be at least 2 (is \(maxAttempts)).")
        }
        guard hedgingDelay >= .zero else { throw .invalidConfig("\(path).hedgingDelay must not be negative.") }
        guard !nonFatalStatusCodes.contains(.ok) else {
            throw .invalidConfig("\(path).nonFatalStatusCodes must not contain OK.")
        }
    }
}

/// A validated service config's method configs, indexed for the per-call lookup.
struct MethodConfigTable: Sendable {
    private var byMethod: [String: Int] = [:]  // "service/method"
    private var byService: [String: Int] = [:]
    private var fallback: Int?
    private let configs: [MethodConfig]

    init(_ configs: [MethodConfig]) {
        self.configs = configs
        for (index, config) in configs.enumerated() {
            for name in config.names {
                if name.service.isEmpty {
                    fallback = index
                } else if name.method.isEmpty {
                    byService[name.service] = index
                } else {
                    byMethod[name.service + "/" + name.method] = index
                }
            }
        }
    }

    var isEmpty: Bool { configs.isEmpty }

    /// The config for a method: exact name, else its service's, else the default.
    func config(for descriptor: MethodDescriptor) -> MethodConfig? {
        if configs.isEmpty { return nil }
        let service = descriptor.service.fullyQualifiedService
        if !byMethod.isEmpty, let index = byMethod[service + "/" + descriptor.method] { return configs[index] }
        if let index = byService[service] { return configs[index] }
        return fallback.map { configs[$0] }
    }
}

extension CallOptions {
    /// These options with a method config's settings applied where the options leave room: the earlier
    /// deadline, the call's own `waitForReady` if it set one, the smaller message limits.
    func applying(_ config: MethodConfig) -> CallOptions {
        var options = self
        if let timeout = config.timeout {
            options.timeout = min(options.timeout ?? timeout, timeout)
        }
        if let waitForReady = config.waitForReady, !options.waitForReadyIsSet {
            options.waitForReady = waitForReady
        }
        if let limit = config.maxRequestMessageBytes {
            options.maxRequestMessageBytes = min(options.maxRequestMessageBytes ?? limit, limit)
        }
        if let limit = config.maxResponseMessageBytes {
            options.maxResponseMessageBytes =
                options.maxResponseMessageBytesIsSet
                ? min(options.maxResponseMessageBytes ?? limit, limit) : limit
        }
        return options
    }
}
