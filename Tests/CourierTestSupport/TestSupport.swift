@_spi(CourierInternals) internal import Courier
// Helpers shared by the test targets that run real processes: child processes read line by line, a gate,
// a throwaway PKI, and where the repository and the built products are.
public import Foundation
internal import Synchronization

/// The repository's root directory.
public let repositoryRoot = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// Where `swift build` put the executables (on Linux the test runner is `<products>/CourierPackageTests.xctest`).
public let productsDirectory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()

/// Runs a program to completion without blocking a thread; returns its exit status and output (stdout and
/// stderr together).
public func runProcess(
    _ path: String,
    _ arguments: [String],
    currentDirectory: URL? = nil
) async throws -> (status: Int32, output: String) {
    let child = try ChildProcess(path, arguments, currentDirectory: currentDirectory)
    let status = await child.waitForExit()
    await child.waitForEndOfOutput()
    return (status, child.output + (child.output.isEmpty ? "" : "\n"))
}

/// Reads the first line a child process prints, on a thread of its own: blocking reads must not occupy the
/// cooperative pool (two threads on this machine), where they would stall every other test.
public func firstLine(of handle: FileHandle) async -> String {
    await withCheckedContinuation { continuation in
        let thread = Thread {
            var line = [UInt8]()
            while let byte = handle.readData(ofLength: 1).first, byte != UInt8(ascii: "\n") {
                line.append(byte)
            }
            continuation.resume(returning: String(decoding: line, as: UTF8.self))
        }
        thread.start()
    }
}

/// A throwaway PKI made by dev/make-test-certs.sh, once per test process: ca.pem, server.pem/key (localhost,
/// courier.test, *.test.example.com, 127.0.0.1, ::1), client.pem/key, other-ca.pem, other.pem/key.
public enum TestPKI {
    private static let made = CourierMutex<String?>(nil)

    /// The directory holding the files.
    public static func directory() async throws -> String {
        if let directory = made.withLock({ $0 }) { return directory }
        let directory = NSTemporaryDirectory() + "courier-pki-\(getpid())-\(UUID().uuidString.prefix(8))"
        let script = repositoryRoot.appendingPathComponent("dev/make-test-certs.sh").path
        let result = try await runProcess("/bin/bash", [script, directory])
        guard result.status == 0 else { throw PKIError(output: result.output) }
        let (chosen, first) = made.withLock { made -> (String, Bool) in
            if let existing = made { return (existing, false) }
            made = directory
            return (directory, true)
        }
        if first {
            atexit { TestPKI.removeDirectory() }  // the test process's end, so no run leaves its keys behind
        } else {
            try? FileManager.default.removeItem(atPath: directory)  // another caller's came first
        }
        return chosen
    }

    private static func removeDirectory() {
        if let directory = made.withLock({ $0 }) { try? FileManager.default.removeItem(atPath: directory) }
    }

    struct PKIError: Error, CustomStringConvertible {
        var output: String
        var description: String { "make-test-certs.sh failed: \(output)" }
    }
}

/// A child process whose output is read line by line on a thread of its own (blocking reads must not
/// occupy the cooperative pool), so that tests can wait for a line as an explicit signal.
public final class ChildProcess: Sendable {
    public let process: Process
    private let lines = CourierMutex<
        (
            seen: [String],
            waiters: [(predicate: @Sendable (String) -> Bool, continuation: CheckedContinuation<String?, Never>)],
            ended: Bool
        )
    >(([], [], false))
    private let exit = CourierMutex<(status: Int32?, waiters: [CheckedContinuation<Int32, Never>])>((nil, []))

    /// Starts `executable` with `arguments`, adding `environment` to the test's own.
    public init(
        _ executable: String,
        _ arguments: [String],
        environment: [String: String] = [:],
        currentDirectory: URL? = nil
    ) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let currentDirectory { process.currentDirectoryURL = currentDirectory }
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        self.process = process
        // Weak: the process holds its handler, and `self` holds the process (a cycle that LeakSanitizer found
        // leaking every ChildProcess, its Process and its pipe). The test holds `self` while it waits.
        process.terminationHandler = { [weak self] process in
            guard let self else { return }
            let waiters = exit.withLock { state in
                state.status = process.terminationStatus
                defer { state.waiters = [] }
                return state.waiters
            }
            for waiter in waiters { waiter.resume(returning: process.terminationStatus) }
        }
        try process.run()
        let handle = pipe.fileHandleForReading
        Thread { [self] in
            var line = [UInt8]()
            var chunk = [UInt8](repeating: 0, count: 4096)
            while true {
                // read(2) itself, not FileHandle.availableData: that traps when a signal (SIGCHLD from another
                // test's child) interrupts the read; here EINTR just reads again.
                let count = chunk.withUnsafeMutableBytes { read(handle.fileDescriptor, $0.baseAddress, $0.count) }
                if count < 0, errno == EINTR { continue }
                if count <= 0 { break }
                for byte in chunk[..<count] {
                    if byte == UInt8(ascii: "\n") {
                        deliver(String(decoding: line, as: UTF8.self))
                        line.removeAll()
                    } else {
                        line.append(byte)
                    }
                }
            }
            if !line.isEmpty { deliver(String(decoding: line, as: UTF8.self)) }
            let waiters = lines.withLock { state in
                state.ended = true
                defer { state.waiters = [] }
                return state.waiters
            }
            for waiter in waiters { waiter.continuation.resume(returning: nil) }
        }.start()
    }

    private func deliver(_ line: String) {
        let ready = lines.withLock { state -> [CheckedContinuation<String?, Never>] in
            state.seen.append(line)
            var ready: [CheckedContinuation<String?, Never>] = []
            state.waiters.removeAll { waiter in
                guard waiter.predicate(line) else { return false }
                ready.append(waiter.continuation)
                return true
            }
            return ready
        }
        for continuation in ready { continuation.resume(returning: line) }
    }

    /// Waits for a line containing `text` (already printed, or printed later); `nil` if output ends first.
    public func line(containing text: String) async -> String? {
        await withCheckedContinuation { continuation in
            let found = lines.withLock { state -> String?? in
                if let line = state.seen.first(where: { $0.contains(text) }) { return .some(line) }
                if state.ended { return .some(nil) }
                state.waiters.append(({ $0.contains(text) }, continuation))
                return nil
            }
            if let found { continuation.resume(returning: found) }
        }
    }

    /// Waits until the output has been read to its end.
    public func waitForEndOfOutput() async {
        _ = await line(containing: "\u{0}")  // never printed: returns when the output ends
    }

    /// Everything printed so far.
    public var output: String { lines.withLock { $0.seen.joined(separator: "\n") } }

    /// Sends a signal to the process.
    public func signal(_ number: Int32) { kill(process.processIdentifier, number) }

    /// Waits for the process to exit (or returns at once if it has); returns its status.
    public func waitForExit() async -> Int32 {
        await withCheckedContinuation { continuation in
            let status = exit.withLock { state in
                if state.status == nil { state.waiters.append(continuation) }
                return state.status
            }
            if let status { continuation.resume(returning: status) }
        }
    }

    /// Terminates the process (if running) and waits for it.
    public func stop() async {
        if process.isRunning { process.terminate() }
        _ = await waitForExit()
    }
}

/// Tasks wait at the gate until it opens.
public final class Gate: Sendable {
    /// A closed gate.
    public init() {}

    private let state = CourierMutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    /// Waits until the gate is open.
    public func wait() async {
        await withCheckedContinuation { continuation in
            let open = state.withLock { state in
                if !state.open { state.waiters.append(continuation) }
                return state.open
            }
            if open { continuation.resume() }
        }
    }

    /// Opens the gate for every waiter, present and future.
    public func open() {
        let waiters = state.withLock { state in
            state.open = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }
}
