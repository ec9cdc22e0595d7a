import CourierTestSupport
import Foundation
import Testing

/// No Docker engine runs here, so the runtime stage of Examples/Ping/Dockerfile is checked against what
/// the binary really links: every shared library `ldd` lists, other than the Swift runtime (linked
/// statically in the image), must come from a package the runtime stage installs.
@Suite("The ping-server container image")
struct DockerfileTests {
    /// The packages `apt-get install` names in the Dockerfile's last stage.
    static func runtimePackages() throws -> Set<String> {
        let dockerfile = try String(
            contentsOf: repositoryRoot.appendingPathComponent("Examples/Ping/Dockerfile"),
            encoding: .utf8
        )
        let lastStage = try #require(dockerfile.components(separatedBy: "\nFROM ").last)
        let install = try #require(lastStage.range(of: "apt-get install"))
        let command = lastStage[install.upperBound...].prefix { $0 != "&" }
        return Set(
            command.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\\" }).map(String.init).filter {
                !$0.hasPrefix("-")
            }
        )
    }

    @Test("The runtime stage installs the package of every shared library ping-server links")
    func runtimeLibraries() async throws {
        let packages = try Self.runtimePackages()
        #expect(packages.contains("liburing2") && packages.contains("libssl3"), "\(packages)")
        let ldd = try ChildProcess("/usr/bin/ldd", [productsDirectory.appendingPathComponent("ping-server").path])
        #expect(await ldd.waitForExit() == 0)
        await ldd.waitForEndOfOutput()
        #expect(!ldd.output.contains("not found"), "\(ldd.output)")
        var checked = 0
        for line in ldd.output.split(separator: "\n") {
            // "libssl.so.3 => /lib/x86_64-linux-gnu/libssl.so.3 (0x...)"
            let parts = line.split(separator: " ")
            guard let arrow = parts.firstIndex(of: "=>"), arrow + 1 < parts.count else { continue }
            let path = String(parts[arrow + 1])
            if path.contains("/lib/swift/") { continue }  // the Swift runtime: static in the image
            // dpkg knows a file by the path its package installed, before or after Debian's /usr merge.
            let resolved = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
            var owner: String?
            for candidate in [resolved, path, resolved.replacingOccurrences(of: "/usr/lib/", with: "/lib/")] {
                let dpkg = try ChildProcess("/usr/bin/dpkg", ["-S", candidate])
                let status = await dpkg.waitForExit()
                await dpkg.waitForEndOfOutput()
                if status == 0 {
                    owner = dpkg.output.split(separator: ":").first.map(String.init)
                    break
                }
            }
            let package = try #require(owner, "no package owns \(path)")
            #expect(
                packages.contains(package),
                "\(path) comes from \(package), which the runtime stage doesn't install"
            )
            checked += 1
        }
        #expect(checked >= 5, "\(ldd.output)")
    }
}
