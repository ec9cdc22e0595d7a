import Courier
import Testing

@Suite("Metadata literals")
struct MetadataLiteralTests {
    @Test("Interpolated string literals are string values, in literals and in calls")
    func interpolation() {
        let version = 2
        let metadata: Metadata = ["x-client-version": "v\(version)", "x-plain": "text", "x-trace-bin": [0xAB]]
        #expect(metadata.firstString(forKey: "x-client-version") == "v2")
        #expect(metadata.firstString(forKey: "x-plain") == "text")
        #expect(metadata[binaryValues: "x-trace-bin"] == [[0xAB]])

        var more = Metadata()
        more.add("build \(version + 1)", forKey: "x-build")
        #expect(more["x-build"] == [.string("build 3")])
    }
}
