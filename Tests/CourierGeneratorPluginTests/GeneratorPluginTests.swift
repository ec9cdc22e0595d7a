import Foundation
import Testing

/// The plugins' shared code (Plugins/PluginsShared, compiled into this target through a symlink): what
/// both plugins decide before protoc runs.
@Suite("Generator plugins: configuration, protoc, names")
struct GeneratorPluginTests {
    /// A scratch directory with `files` (path → contents), removed afterwards.
    func withDirectory(_ files: [String: String], _ body: (URL) throws -> Void) throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("courier-plugin-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        for (path, contents) in files {
            let url = directory.appendingPathComponent(path)
            try FileManager.default.createDirectory(
                at: url.deletingLastPathComponent(),
                withIntermediateDirectories: true
            )
            try contents.write(to: url, atomically: true, encoding: .utf8)
        }
        try body(directory)
    }

    @Test("An empty configuration takes every default")
    func defaults() throws {
        try withDirectory(["c.json": "{}"]) { directory in
            let config = try GenerationConfig.load(directory.appendingPathComponent("c.json"))
            #expect(config.visibility == .internal)
            #expect(config.server && config.client && config.messages)
            #expect(!config.useAccessLevelOnImports)
            #expect(config.fileNaming == .fullPath)
            #expect(config.outputDirectory == "Generated")
        }
    }

    @Test("Every key is read", arguments: [true, false])
    func everyKey(_ flag: Bool) throws {
        let json = """
            {"visibility": "package", "server": \(flag), "client": \(!flag), "messages": \(flag),
             "fileNaming": "DropPath", "useAccessLevelOnImports": \(flag), "importPaths": ["../protos"],
             "moduleMappings": {"Shared": ["shared/money.proto"]}, "protocPath": "/usr/bin/protoc",
             "outputDirectory": "Out", "reflectionData": \(flag)}
            """
        try withDirectory(["c.json": json]) { directory in
            let config = try GenerationConfig.load(directory.appendingPathComponent("c.json"))
            #expect(config.visibility == .package)
            #expect(config.visibility.option == "Package")
            #expect(config.server == flag && config.client == !flag && config.messages == flag)
            #expect(config.fileNaming == .dropPath)
            #expect(config.useAccessLevelOnImports == flag)
            #expect(config.importPaths == ["../protos"])
            #expect(config.moduleMappings == ["Shared": ["shared/money.proto"]])
            #expect(config.protocPath == "/usr/bin/protoc")
            #expect(config.outputDirectory == "Out")
            #expect(config.reflectionData == flag)
        }
    }

    @Test(
        "Mistakes are errors that say what is wrong",
        arguments: [
            (#"{"visibilty": "public"}"#, #"Unknown key "visibilty". Known keys: visibility"#),
            (#"{"visibility": "open"}"#, "Visibility"),
            (#"{"server": "yes"}"#, #""server""#),
            (#"{"reflectionData": "yes"}"#, #""reflectionData""#),
            ("{", "c.json"),
        ]
    )
    func mistakes(json: String, expected: String) throws {
        try withDirectory(["c.json": json]) { directory in
            let error = #expect(throws: GeneratorPluginError.self) {
                try GenerationConfig.load(directory.appendingPathComponent("c.json"))
            }
            #expect(error.map { "\($0)" }?.contains(expected) == true, "\(String(describing: error))")
        }
    }

    @Test("protoc: the config's path, then PROTOC_PATH, then PATH; missing names the Debian package")
    func findsProtoc() throws {
        var config = GenerationConfig()
        #expect(throws: GeneratorPluginError.self) {
            try findProtoc(config: config, environment: ["PATH": "/nonexistent"])
        }
        do {
            _ = try findProtoc(config: config, environment: ["PATH": "/nonexistent"])
        } catch {
            #expect("\(error)".contains("apt-get install protobuf-compiler"))
            #expect("\(error)".contains("PROTOC_PATH"))
        }
        try withDirectory(["bin/protoc": "#!/bin/sh\n"]) { directory in
            let fake = directory.appendingPathComponent("bin/protoc").path
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: fake)
            let found = try findProtoc(config: config, environment: ["PATH": "/nonexistent:\(directory.path)/bin"])
            #expect(found.path == fake)
        }
        let sh = try findProtoc(config: config, environment: ["PROTOC_PATH": "/bin/sh"])
        #expect(sh.path == "/bin/sh")
        config.protocPath = "/bin/true"
        #expect(try findProtoc(config: config, environment: ["PROTOC_PATH": "/bin/sh"]).path == "/bin/true")
        config.protocPath = "/nonexistent/protoc"
        #expect(throws: GeneratorPluginError.self) { try findProtoc(config: config, environment: [:]) }
    }

    @Test("Each .proto belongs to the nearest configuration at or above it; one without is an error")
    func grouping() throws {
        try withDirectory([
            "courier-proto-generator-config.json": "{}",
            "a.proto": "", "sub/b.proto": "",
            "other/courier-proto-generator-config.json": #"{"visibility": "public"}"#, "other/c.proto": "",
        ]) { directory in
            let url = { (path: String) in directory.appendingPathComponent(path) }
            let groups = try groupProtos(
                protos: [url("a.proto"), url("sub/b.proto"), url("other/c.proto")],
                configFiles: [
                    url("courier-proto-generator-config.json"), url("other/courier-proto-generator-config.json"),
                ]
            )
            #expect(groups.count == 2)
            #expect(groups[0].protos.map(\.lastPathComponent) == ["a.proto", "b.proto"])
            #expect(groups[1].protos.map(\.lastPathComponent) == ["c.proto"])
            #expect(groups[1].config.visibility == .public)

            #expect(throws: GeneratorPluginError.self) {
                try groupProtos(
                    protos: [url("a.proto")],
                    configFiles: [url("other/courier-proto-generator-config.json")]
                )
            }
        }
    }

    @Test("A .proto is named by its path below the innermost import directory; output names follow")
    func names() throws {
        try withDirectory([
            "courier-proto-generator-config.json": #"{"importPaths": ["protos"]}"#,
            "protos/echo/v1/echo.proto": "", "top.proto": "",
        ]) { directory in
            let config = try GenerationConfig.load(
                directory.appendingPathComponent("courier-proto-generator-config.json")
            )
            let group = ProtoGroup(
                configFile: directory.appendingPathComponent("courier-proto-generator-config.json"),
                config: config,
                protos: []
            )
            let imports = group.importDirectories(protoc: URL(fileURLWithPath: "/usr/bin/protoc"))
            #expect(imports.last?.path == "/usr/include")
            let echo = try group.protocName(
                of: directory.appendingPathComponent("protos/echo/v1/echo.proto"),
                importDirectories: imports
            )
            #expect(echo == "echo/v1/echo.proto")
            #expect(
                try group.protocName(of: directory.appendingPathComponent("top.proto"), importDirectories: imports)
                    == "top.proto"
            )
            #expect(throws: GeneratorPluginError.self) {
                try group.protocName(of: URL(fileURLWithPath: "/elsewhere/x.proto"), importDirectories: imports)
            }
        }
        #expect(
            outputName(for: "echo/v1/echo.proto", naming: .pathToUnderscores, suffix: ".pb.swift")
                == "echo_v1_echo.pb.swift"
        )
        #expect(
            outputName(for: "echo/v1/echo.proto", naming: .fullPath, suffix: ".courier.swift")
                == "echo/v1/echo.courier.swift"
        )
        #expect(
            outputName(for: "echo/v1/echo.proto", naming: .dropPath, suffix: ".courier.swift") == "echo.courier.swift"
        )
    }

    @Test("A well-known type that no import directory holds names libprotobuf-dev; one that exists passes")
    func wellKnownTypes() throws {
        try withDirectory([
            "missing.proto": "syntax = \"proto3\";\nimport \"google/protobuf/timestamp.proto\";\n",
            "include/google/protobuf/timestamp.proto": "",
        ]) { directory in
            let group = ProtoGroup(
                configFile: directory.appendingPathComponent("courier-proto-generator-config.json"),
                config: GenerationConfig(),
                protos: [directory.appendingPathComponent("missing.proto")]
            )
            do {
                try group.checkWellKnownTypes(importDirectories: [directory])
                Issue.record("expected an error")
            } catch {
                #expect("\(error)".contains("apt-get install libprotobuf-dev"))
            }
            try group.checkWellKnownTypes(importDirectories: [directory, directory.appendingPathComponent("include")])
        }
    }

    @Test("Services: only files that declare one get a services command")
    func services() throws {
        try withDirectory(["s.proto": "syntax = \"proto3\";\nservice S {}\n", "m.proto": "message M {}\n"]) {
            directory in
            #expect(declaresService(directory.appendingPathComponent("s.proto")))
            #expect(!declaresService(directory.appendingPathComponent("m.proto")))
        }
    }

    @Test("protoc's arguments carry the options to both generators; module mappings become a file")
    func arguments() throws {
        try withDirectory([
            "c.json": #"{"visibility": "public", "client": false, "moduleMappings": {"M": ["m.proto"]}}"#
        ]) { directory in
            let group = ProtoGroup(
                configFile: directory.appendingPathComponent("c.json"),
                config: try GenerationConfig.load(directory.appendingPathComponent("c.json")),
                protos: []
            )
            let mappings = try #require(try group.writeModuleMappings(into: directory.appendingPathComponent("work")))
            let text = try String(contentsOf: mappings, encoding: .utf8)
            #expect(text.contains("module_name: \"M\"") && text.contains("proto_file_path: \"m.proto\""))
            let (messages, services) = group.arguments(
                protocNames: ["a.proto"],
                importDirectories: [directory],
                outputDirectory: directory,
                fileNaming: .pathToUnderscores,
                moduleMappings: mappings,
                protocGenSwift: URL(fileURLWithPath: "/bin/protoc-gen-swift"),
                protocGenCourier: URL(fileURLWithPath: "/bin/protoc-gen-courier")
            )
            let swift = try #require(messages)
            #expect(swift.contains("--swift_opt=Visibility=Public"))
            #expect(swift.contains("--swift_opt=UseAccessLevelOnImports=false"))
            #expect(swift.contains("--swift_opt=ProtoPathModuleMappings=\(mappings.path)"))
            #expect(swift.last == "a.proto")
            let courier = try #require(services)
            #expect(courier.contains("--courier_opt=Client=false"))
            #expect(courier.contains("--courier_opt=Server=true"))
            #expect(courier.contains("--courier_opt=ReflectionData=false"))
            #expect(courier.contains("--courier_opt=FileNaming=PathToUnderscores"))
        }
    }
}
