/// Key-value pairs sent with a request, a response's headers, or its trailers.
///
/// Metadata is ordered and multi-valued: the same key may appear many times, and iteration yields
/// pairs in insertion order. Keys are case-insensitive; they are stored lowercased, as HTTP/2 requires.
/// Keys ending in `-bin` carry bytes (``Value/binary(_:)``), sent base64-encoded by network transports;
/// all other keys carry printable-ASCII strings (``Value/string(_:)``).
///
/// Values are checked when they are sent, not when they are added: ``validate()`` lists what is
/// allowed, and a call whose metadata breaks the rules fails with `INTERNAL` before anything reaches the
/// wire.
///
/// ```swift
/// var metadata: Metadata = ["x-request-id": "42"]
/// metadata.addBinary([0xAB, 0xCD], forKey: "x-trace-bin")
/// metadata.firstString(forKey: "X-Request-ID")  // "42"
/// ```
public struct Metadata: Sendable, Hashable {
    /// A metadata value.
    ///
    /// String literals, interpolated or not, are ``string(_:)`` values and arrays of bytes are
    /// ``binary(_:)`` values: `["x-client": "v\(version)", "x-trace-bin": [0xAB, 0xCD]]`.
    public enum Value: Sendable, Hashable, ExpressibleByStringInterpolation, ExpressibleByArrayLiteral {
        /// A printable-ASCII string, for keys that don't end in `-bin`.
        case string(String)
        /// Bytes, for keys that end in `-bin`.
        case binary([UInt8])

        /// A ``string(_:)`` value from a string literal (interpolations included).
        ///
        /// - Parameter value: The string.
        public init(stringLiteral value: String) { self = .string(value) }

        /// A ``binary(_:)`` value from an array literal of bytes.
        ///
        /// - Parameter elements: The bytes.
        public init(arrayLiteral elements: UInt8...) { self = .binary(elements) }
    }

    /// One key-value pair.
    public struct Element: Sendable, Hashable {
        /// The lowercased key.
        public var key: String
        /// The value.
        public var value: Value
    }

    private var elements: [Element]

    /// Creates empty metadata.
    public init() {
        self.elements = []
    }

    /// The number of pairs (not distinct keys).
    public var count: Int { elements.count }

    /// Whether there are no pairs.
    public var isEmpty: Bool { elements.isEmpty }

    /// Adds a value, keeping any existing values for the key.
    ///
    /// A string added under a `-bin` key is stored as its UTF-8 bytes.
    ///
    /// - Parameters:
    ///   - value: The value.
    ///   - key: The key, in any case.
    public mutating func add(_ value: Value, forKey key: String) {
        let key = Metadata.normalize(key)
        if case .string(let string) = value, key.hasSuffix("-bin") {
            elements.append(Element(key: key, value: .binary(Array(string.utf8))))
        } else {
            elements.append(Element(key: key, value: value))
        }
    }

    /// Adds a string value. See ``add(_:forKey:)``.
    ///
    /// - Parameters:
    ///   - value: The value, printable ASCII.
    ///   - key: The key, in any case.
    public mutating func addString(_ value: String, forKey key: String) {
        add(.string(value), forKey: key)
    }

    /// Adds a binary value; the key should end in `-bin`. See ``add(_:forKey:)``.
    ///
    /// - Parameters:
    ///   - value: The bytes.
    ///   - key: The key, in any case.
    public mutating func addBinary(_ value: [UInt8], forKey key: String) {
        add(.binary(value), forKey: key)
    }

    /// Appends every pair of `other`, in order.
    ///
    /// - Parameter other: The metadata to append.
    public mutating func add(contentsOf other: Metadata) {
        elements.append(contentsOf: other.elements)
    }

    /// Replaces all values for a key with one value (or adds it if the key is absent).
    ///
    /// - Parameters:
    ///   - value: The new value.
    ///   - key: The key, in any case.
    public mutating func replaceOrAdd(_ value: Value, forKey key: String) {
        removeAllValues(forKey: key)
        add(value, forKey: key)
    }

    /// Removes every value for a key.
    ///
    /// - Parameter key: The key, in any case.
    /// - Returns: Whether anything was removed.
    @discardableResult
    public mutating func removeAllValues(forKey key: String) -> Bool {
        let key = Metadata.normalize(key)
        let before = elements.count
        elements.removeAll { $0.key == key }
        return elements.count != before
    }

    /// All values for a key, in order.
    ///
    /// - Parameter key: The key, in any case.
    public subscript(key: String) -> [Value] {
        let key = Metadata.normalize(key)
        return elements.compactMap { $0.key == key ? $0.value : nil }
    }

    /// All string values for a key, in order; binary values are skipped.
    ///
    /// - Parameter key: The key, in any case.
    public subscript(stringValues key: String) -> [String] {
        self[key].compactMap { if case .string(let s) = $0 { s } else { nil } }
    }

    /// All binary values for a key, in order; string values are skipped.
    ///
    /// - Parameter key: The key, in any case.
    public subscript(binaryValues key: String) -> [[UInt8]] {
        self[key].compactMap { if case .binary(let b) = $0 { b } else { nil } }
    }

    /// The first string value for a key.
    ///
    /// - Parameter key: The key, in any case.
    /// - Returns: The value, or `nil` if there is no string value for the key.
    public func firstString(forKey key: String) -> String? {
        let key = Metadata.normalize(key)
        for element in elements where element.key == key {
            if case .string(let s) = element.value { return s }
        }
        return nil
    }

    /// Whether any value is stored for a key.
    ///
    /// - Parameter key: The key, in any case.
    public func contains(key: String) -> Bool {
        let key = Metadata.normalize(key)
        return elements.contains { $0.key == key }
    }

    /// Lowercases ASCII letters; a no-op (and no allocation) for keys that are already lowercase.
    @inline(__always)
    static func normalize(_ key: String) -> String {
        var needsLowering = false
        for byte in key.utf8 where byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") {
            needsLowering = true
            break
        }
        return needsLowering ? key.lowercased() : key
    }
}

extension Metadata: RandomAccessCollection {
    public var startIndex: Int { elements.startIndex }
    public var endIndex: Int { elements.endIndex }
    public subscript(position: Int) -> Element { elements[position] }
}

extension Metadata: ExpressibleByDictionaryLiteral {
    /// Creates metadata from literal pairs, in order; repeated keys are allowed.
    public init(dictionaryLiteral elements: (String, Value)...) {
        self.init()
        for (key, value) in elements { add(value, forKey: key) }
    }
}

extension Metadata: CustomStringConvertible {
    /// Keys with values. Binary values are shown as their byte count and `authorization` values as
    /// `<redacted>`, so secrets in them are never printed or logged.
    public var description: String {
        let pairs = elements.map { element -> String in
            switch element.value {
            case .string where element.key == "authorization" || element.key == "proxy-authorization":
                return "\(element.key): <redacted>"
            case .string(let s): return "\(element.key): \(s)"
            case .binary(let b): return "\(element.key): <\(b.count) bytes>"
            }
        }
        return "[" + pairs.joined(separator: ", ") + "]"
    }
}

extension Metadata {
    /// Checks that every pair can be sent on the wire.
    ///
    /// Keys are non-empty and made of `0-9 a-z _ . -` (after lowercasing). Keys ending in `-bin` carry
    /// binary values; other keys carry strings of printable ASCII (0x20–0x7E).
    ///
    /// - Throws: ``RPCError`` with code `INTERNAL` naming the first offending key (never the value,
    ///   which might be a secret).
    public func validate() throws(RPCError) {
        for element in elements {
            guard Metadata.isValidKey(element.key) else {
                throw RPCError(code: .internal, message: "Invalid metadata key '\(element.key.prefix(64))'.")
            }
            switch element.value {
            case .string(let value):
                guard value.utf8.allSatisfy({ $0 >= 0x20 && $0 <= 0x7E }) else {
                    throw RPCError(
                        code: .internal,
                        message: "Metadata value for key '\(element.key)' is not printable ASCII."
                    )
                }
            case .binary:
                guard element.key.hasSuffix("-bin") else {
                    throw RPCError(
                        code: .internal,
                        message: "Binary metadata value for key '\(element.key)' needs a key ending in '-bin'."
                    )
                }
            }
        }
    }

    static func isValidKey(_ key: String) -> Bool {
        guard !key.isEmpty else { return false }
        return key.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "-"):
                return true
            default:
                return false
            }
        }
    }
}
