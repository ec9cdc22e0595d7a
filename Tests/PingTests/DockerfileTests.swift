import CourierTestSupport
import Foundation
import Testing

/// No Docker engine runs here, so Examples/Ping/Dockerfile is checked for what makes its image work: the build
/// stage makes ping-server a static executable with `dev/build-static-executable.sh` (which `dev/test.sh`
/// runs with `--check`: no NEEDED entry, and the executable serves ping-client), and the runtime stage then
/// needs nothing installed.
@Suite("The ping-server container image")
struct DockerfileTests {
    static func stages() throws -> (build: String, runtime: String) {
        let dockerfile = try String(
            contentsOf: repositoryRoot.appendingPathComponent("Examples/Ping/Dockerfile"),
            encoding: .utf8
        )
        let stages = dockerfile.components(separatedBy: "\nFROM ")
        try #require(stages.count == 3, "a comment, the build stage and the runtime stage")
        return (stages[1], stages[2])
    }

    @Test("The build stage links ping-server as a static executable with the script CI checks")
    func buildStage() throws {
        let build = try Self.stages().build
        #expect(build.contains("./dev/build-static-executable.sh ping-server"), "\(build)")
        for package in ["liburing-dev", "libnghttp2-dev", "libssl-dev", "zlib1g-dev"] {
            #expect(build.contains(package), "the build stage must install \(package) for its static library")
        }
        let script = try String(
            contentsOf: repositoryRoot.appendingPathComponent("dev/build-static-executable.sh"),
            encoding: .utf8
        )
        for flag in ["-static-executable", "-static-pie", "--disable-local-rpath"] {
            #expect(script.contains(flag), "dev/build-static-executable.sh lost \(flag)")
        }
    }

    @Test("The runtime stage installs nothing and copies only the executable")
    func runtimeStage() throws {
        let runtime = try Self.stages().runtime
        #expect(!runtime.contains("apt-get"), "\(runtime)")
        #expect(!runtime.contains("\nRUN "), "\(runtime)")
        #expect(runtime.contains("COPY --from=build /ping-server /usr/local/bin/ping-server"), "\(runtime)")
        #expect(runtime.contains("ENTRYPOINT [\"/usr/local/bin/ping-server\"]"), "\(runtime)")
    }
}
