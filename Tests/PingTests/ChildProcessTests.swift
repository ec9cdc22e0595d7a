import CourierTestSupport
import Testing

@Suite("Test helpers")
struct ChildProcessTests {
    @Test("ChildProcess reports output lines, the end of output and the exit status")
    func childProcess() async throws {
        let child = try ChildProcess("/bin/sh", ["-c", "echo one; echo two; exit 3"])
        #expect(await child.line(containing: "two") == "two")
        #expect(await child.waitForExit() == 3)
        await child.waitForEndOfOutput()
        #expect(child.output == "one\ntwo")
    }
}
