import Courier
import Testing

@Suite("Metadata")
struct MetadataTests {
    @Test("Keys are case-insensitive, stored lowercased; order and repeats are kept")
    func keys() {
        var metadata: Metadata = ["A-Key": "1"]
        metadata.addString("2", forKey: "a-key")
        metadata.addString("x", forKey: "other")
        metadata.addString("3", forKey: "A-KEY")
        #expect(metadata[stringValues: "a-Key"] == ["1", "2", "3"])
        #expect(metadata.map(\.key) == ["a-key", "a-key", "other", "a-key"])
        #expect(metadata.firstString(forKey: "OTHER") == "x")
        #expect(metadata.count == 4)
    }

    @Test("Replacing and removing")
    func replaceRemove() {
        var metadata: Metadata = ["k": "1", "k": "2", "j": "3"]
        metadata.replaceOrAdd("4", forKey: "K")
        #expect(metadata[stringValues: "k"] == ["4"])
        let removed = metadata.removeAllValues(forKey: "j")
        let removedAgain = metadata.removeAllValues(forKey: "j")
        #expect(removed)
        #expect(!removedAgain)
        #expect(!metadata.contains(key: "j"))
    }

    @Test("-bin keys carry bytes; strings added to them become their UTF-8")
    func binary() {
        var metadata = Metadata()
        metadata.addBinary([0, 1, 255], forKey: "x-data-bin")
        metadata.addString("ab", forKey: "x-text-bin")
        #expect(metadata[binaryValues: "x-data-bin"] == [[0, 1, 255]])
        #expect(metadata[binaryValues: "x-text-bin"] == [[0x61, 0x62]])
        #expect(throws: Never.self) { try metadata.validate() }
    }

    static let validationCases: [(Metadata, Bool)] = [
        (["ok-key_1.x": "printable ~"], true),
        (["": "v"], false),
        (["bad key": "v"], false),
        (["bad/key": "v"], false),
        (["k": "tab\there"], false),
        (["k": "caf\u{E9}"], false),
        (["k": .binary([1])], false),
        (["k-bin": .binary([1])], true),
    ]

    @Test("Validation", arguments: validationCases)
    func validation(metadata: Metadata, valid: Bool) {
        if valid {
            #expect(throws: Never.self) { try metadata.validate() }
        } else {
            #expect(throws: RPCError.self) { try metadata.validate() }
        }
    }
}

@Suite("Descriptors, status and errors")
struct CurrencyTypeTests {
    @Test("Paths parse to descriptors and back")
    func paths() throws {
        let descriptor = try #require(MethodDescriptor(path: "/hello.HelloService/SayHello"))
        #expect(descriptor.service.fullyQualifiedService == "hello.HelloService")
        #expect(descriptor.method == "SayHello")
        #expect(descriptor.path == "/hello.HelloService/SayHello")
        #expect(MethodDescriptor(service: ServiceDescriptor(package: "", service: "S"), method: "M").path == "/S/M")
    }

    @Test("Malformed paths don't parse", arguments: ["", "/", "//M", "/S/", "S/M", "/S", "/S/M/extra", "/S//M"])
    func badPaths(path: String) {
        #expect(MethodDescriptor(path: path) == nil)
    }

    @Test("The 17 codes have their wire values and names")
    func codes() {
        #expect(Status.Code.allCases.count == 17)
        #expect(Status.Code.allCases.map(\.rawValue) == Array(0...16))
        #expect(Status.Code.unauthenticated.description == "UNAUTHENTICATED")
        #expect(Status.Code(rawValue: 17) == nil)
        #expect(RPCError.Code(.ok) == nil)
        #expect(RPCError(status: .ok) == nil)
        #expect(RPCError(status: Status(code: .aborted, message: "m"))?.code == .aborted)
    }

    @Test("A same-code cause is flattened")
    func flatten() {
        struct Root: Error {}
        let inner = RPCError(code: .internal, message: "inner", metadata: ["a": "1"], cause: Root())
        let outer = RPCError(code: .internal, message: "", metadata: ["b": "2"], cause: inner)
        #expect(outer.message == "inner")
        #expect(outer.cause is Root)
        #expect(outer.metadata.map(\.key) == ["a", "b"])
        let different = RPCError(code: .unknown, message: "outer", cause: inner)
        #expect(different.cause is RPCError)
    }

    @Test("MessageBuffer keeps headroom in front of the message")
    func messageBuffer() {
        var buffer = MessageBuffer([1, 2, 3])
        #expect(buffer.headroom == MessageBuffer.defaultHeadroom)
        #expect(Array(buffer) == [1, 2, 3])
        buffer.withUnsafeMutableStorage { storage, offset in
            #expect(offset == 5)
            #expect(storage.count == 8)
            storage[0] = 9
        }
        #expect(Array(buffer) == [1, 2, 3])
        #expect(MessageBuffer(count: 4).count == 4)
        #expect(MessageBuffer() == MessageBuffer([]))
    }
}
