#if canImport(FoundationEssentials)
internal import FoundationEssentials
#else
internal import Foundation
#endif

extension ServiceConfig {
    /// Parses a service config from its JSON form (gRPC's `service_config.proto` in proto3 JSON) and
    /// checks it (``validate()``).
    ///
    /// Understood: `loadBalancingConfig` (and the older `loadBalancingPolicy`), `methodConfig` with
    /// `name`, `waitForReady`, `timeout` (a proto Duration such as `"1.5s"`), `maxRequestMessageBytes`,
    /// `maxResponseMessageBytes`, `retryPolicy` or `hedgingPolicy`, and `retryThrottling`. Status codes
    /// are names (`"UNAVAILABLE"`) or numbers. Unknown fields are ignored, as gRPC does.
    ///
    /// - Parameter json: The JSON text.
    /// - Throws: ``RuntimeError`` with code ``RuntimeError/Code/invalidConfiguration`` if the text is not
    ///   JSON, a field has the wrong type or form, or a value breaks gRPC's rules.
    public init(json: String) throws(RuntimeError) {
        let decoded: JSONServiceConfig
        do {
            decoded = try JSONDecoder().decode(JSONServiceConfig.self, from: Data(json.utf8))
        } catch let error as RuntimeError {
            throw error
        } catch let error as DecodingError {
            throw .invalidConfig(Self.describe(error), cause: error)
        } catch {
            throw .invalidConfig("the JSON could not be read.", cause: error)
        }
        self = try decoded.serviceConfig()
        try validate()
    }

    private static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            let path = context.codingPath.map { key in key.intValue.map { "[\($0)]" } ?? ".\(key.stringValue)" }
                .joined()
            return path.isEmpty ? "the top level" : String(path.dropFirst(path.hasPrefix(".") ? 1 : 0))
        }
        switch error {
        case .typeMismatch(let type, let context):
            return "\(path(context)) is not of the expected type (\(type))."
        case .valueNotFound(_, let context):
            return "\(path(context)) is null or missing."
        case .keyNotFound(let key, let context):
            return "\(path(context)) has no '\(key.stringValue)'."
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty
                ? "the text is not valid JSON." : "\(path(context)) is malformed: \(context.debugDescription)"
        @unknown default:
            return "the JSON could not be decoded."
        }
    }
}

extension JSONValue: Decodable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }
}

/// The JSON shape, decoded as written, then converted (and checked) field by field.
private struct JSONServiceConfig: Decodable {
    var loadBalancingConfig: [[String: JSONValue]]?
    var loadBalancingPolicy: String?
    var methodConfig: [JSONMethodConfig]?
    var retryThrottling: JSONRetryThrottling?

    func serviceConfig() throws(RuntimeError) -> ServiceConfig {
        var config = ServiceConfig()
        for (index, entry) in (loadBalancingConfig ?? []).enumerated() {
            guard entry.count == 1, let (name, policy) = entry.first else {
                throw .invalidConfig("loadBalancingConfig[\(index)] must have exactly one field, the policy's name.")
            }
            config.loadBalancingConfig.append(LoadBalancingConfig(policyName: name, config: policy))
        }
        if config.loadBalancingConfig.isEmpty, let policy = loadBalancingPolicy {
            config.loadBalancingConfig = [LoadBalancingConfig(policyName: policy.lowercased())]
        }
        for (index, method) in (methodConfig ?? []).enumerated() {
            config.methodConfig.append(try method.methodConfig(at: "methodConfig[\(index)]"))
        }
        if let throttling = retryThrottling {
            // gRPC keeps three decimal places of the ratio.
            let ratio = (throttling.tokenRatio * 1000).rounded(.down) / 1000
            config.retryThrottling = RetryThrottling(maxTokens: throttling.maxTokens, tokenRatio: ratio)
        }
        return config
    }
}

private struct JSONRetryThrottling: Decodable {
    var maxTokens: Int
    var tokenRatio: Double
}

private struct JSONName: Decodable {
    var service: String?
    var method: String?
}

private struct JSONMethodConfig: Decodable {
    var name: [JSONName]?
    var waitForReady: Bool?
    var timeout: String?
    var maxRequestMessageBytes: Int?
    var maxResponseMessageBytes: Int?
    var retryPolicy: JSONRetryPolicy?
    var hedgingPolicy: JSONHedgingPolicy?

    func methodConfig(at path: String) throws(RuntimeError) -> MethodConfig {
        var config = MethodConfig(
            names: (name ?? []).map { MethodConfig.Name(service: $0.service ?? "", method: $0.method ?? "") },
            waitForReady: waitForReady,
            maxRequestMessageBytes: maxRequestMessageBytes,
            maxResponseMessageBytes: maxResponseMessageBytes
        )
        if let timeout { config.timeout = try parseDuration(timeout, at: "\(path).timeout") }
        switch (retryPolicy, hedgingPolicy) {
        case (nil, nil):
            break
        case (let retry?, nil):
            config.executionPolicy = .retry(try retry.policy(at: "\(path).retryPolicy"))
        case (nil, let hedging?):
            config.executionPolicy = .hedging(try hedging.policy(at: "\(path).hedgingPolicy"))
        case (.some, .some):
            throw .invalidConfig("\(path) has both a retryPolicy and a hedgingPolicy; only one may be set.")
        }
        return config
    }
}

private struct JSONRetryPolicy: Decodable {
    var maxAttempts: Int
    var initialBackoff: String
    var maxBackoff: String
    var backoffMultiplier: Double
    var retryableStatusCodes: [JSONStatusCode]

    func policy(at path: String) throws(RuntimeError) -> RetryPolicy {
        RetryPolicy(
            maxAttempts: maxAttempts,
            initialBackoff: try parseDuration(initialBackoff, at: "\(path).initialBackoff"),
            maxBackoff: try parseDuration(maxBackoff, at: "\(path).maxBackoff"),
            backoffMultiplier: backoffMultiplier,
            retryableStatusCodes: Set(retryableStatusCodes.map(\.code))
        )
    }
}

private struct JSONHedgingPolicy: Decodable {
    var maxAttempts: Int
    var hedgingDelay: String?
    var nonFatalStatusCodes: [JSONStatusCode]?

    func policy(at path: String) throws(RuntimeError) -> HedgingPolicy {
        HedgingPolicy(
            maxAttempts: maxAttempts,
            hedgingDelay: try hedgingDelay.map { d throws(RuntimeError) in
                try parseDuration(d, at: "\(path).hedgingDelay")
            } ?? .zero,
            nonFatalStatusCodes: Set((nonFatalStatusCodes ?? []).map(\.code))
        )
    }
}

/// A status code as a name (`"UNAVAILABLE"`, any case) or a number (`14`).
private struct JSONStatusCode: Decodable {
    var code: Status.Code

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let number = try? container.decode(Int.self) {
            guard let code = Status.Code(rawValue: number) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "no status code \(number)")
            }
            self.code = code
            return
        }
        let name = try container.decode(String.self).uppercased()
        guard let code = Status.Code.allCases.first(where: { $0.description == name }) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "no status code named '\(name)'")
        }
        self.code = code
    }
}

/// Parses a proto3 JSON Duration: an optional `-`, seconds with up to nine fractional digits, then `s`.
func parseDuration(_ text: String, at path: String) throws(RuntimeError) -> Duration {
    let invalid = RuntimeError.invalidConfig("\(path) is not a duration such as \"1.5s\" ('\(text.prefix(40))').")
    var utf8 = Substring(text).utf8[...]
    guard utf8.last == UInt8(ascii: "s") else { throw invalid }
    utf8 = utf8.dropLast()
    var negative = false
    if utf8.first == UInt8(ascii: "-") {
        negative = true
        utf8 = utf8.dropFirst()
    }
    let dot = utf8.firstIndex(of: UInt8(ascii: "."))
    let whole = dot.map { utf8[utf8.startIndex..<$0] } ?? utf8
    let fraction = dot.map { utf8[utf8.index(after: $0)...] } ?? utf8[utf8.endIndex...]
    guard !(whole.isEmpty && fraction.isEmpty), whole.count <= 12, fraction.count <= 9,
        whole.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), fraction.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 })
    else { throw invalid }
    var seconds: Int64 = 0
    for digit in whole { seconds = seconds * 10 + Int64(digit - 0x30) }
    var nanos: Int64 = 0
    for digit in fraction { nanos = nanos * 10 + Int64(digit - 0x30) }
    for _ in fraction.count..<9 { nanos *= 10 }
    let duration = Duration.seconds(seconds) + .nanoseconds(nanos)
    return negative ? .zero - duration : duration
}
