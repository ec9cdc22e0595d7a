@_spi(CourierInternals) import Courier
import CourierTestSupport
import Foundation
import Synchronization
import Testing

/// A Python peer from `Peers/` whose output is read line by line on a thread of its own (blocking reads
/// must not occupy the cooperative pool) and whose stdin stays open: the misbehaving server serves until
/// ``stop()`` closes it. Tests wait for the lines it prints as explicit signals; every wait has a bound,
/// which is a failure, never a synchronisation.
final class PeerProcess: Sendable {
    let process: Process
    private let input: Pipe
    private let state = CourierMutex<State>(State())

    private struct State {
        var seen: [String] = []
        var waiters:
            [UInt64: (predicate: @Sendable (String) -> Bool, continuation: CheckedContinuation<String?, Never>)] = [:]
        var nextWaiter: UInt64 = 0
        var ended = false
    }

    /// Starts `python3 Peers/<script> <arguments>`.
    init(_ script: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", peersDirectory.appendingPathComponent(script).path] + arguments
        let output = Pipe()
        let input = Pipe()
        process.standardOutput = output
        process.standardError = output
        process.standardInput = input
        self.process = process
        self.input = input
        try process.run()
        let handle = output.fileHandleForReading
        Thread { [self] in
            var line = [UInt8]()
            while true {
                let data = handle.availableData
                if data.isEmpty { break }
                for byte in data {
                    if byte == UInt8(ascii: "\n") {
                        deliver(String(decoding: line, as: UTF8.self))
                        line.removeAll()
                    } else {
                        line.append(byte)
                    }
                }
            }
            if !line.isEmpty { deliver(String(decoding: line, as: UTF8.self)) }
            let waiters = state.withLock { state in
                state.ended = true
                defer { state.waiters = [:] }
                return state.waiters.values.map(\.continuation)
            }
            for waiter in waiters { waiter.resume(returning: nil) }
        }.start()
    }

    private func deliver(_ line: String) {
        let ready = state.withLock { state -> [CheckedContinuation<String?, Never>] in
            state.seen.append(line)
            var ready: [CheckedContinuation<String?, Never>] = []
            for (id, waiter) in state.waiters where waiter.predicate(line) {
                state.waiters.removeValue(forKey: id)
                ready.append(waiter.continuation)
            }
            return ready
        }
        for continuation in ready { continuation.resume(returning: line) }
    }

    /// The first line (printed already or later) that `predicate` accepts; `nil` if the output ends or
    /// `bound` passes first.
    func line(
        within bound: Duration = .seconds(120),
        where predicate: @escaping @Sendable (String) -> Bool
    ) async -> String? {
        let id = state.withLock { state -> UInt64 in
            defer { state.nextWaiter += 1 }
            return state.nextWaiter
        }
        let bounding = Task {
            try await Task.sleep(for: bound)  // a failure bound, not a synchronisation
            let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
            waiter?.continuation.resume(returning: nil)
        }
        defer { bounding.cancel() }
        return await withCheckedContinuation { continuation in
            let found = state.withLock { state -> String?? in
                if let line = state.seen.first(where: predicate) { return .some(line) }
                if state.ended { return .some(nil) }
                state.waiters[id] = (predicate, continuation)
                return nil
            }
            if let found { continuation.resume(returning: found) }
        }
    }

    /// The first line starting with `prefix`.
    func line(startingWith prefix: String, within bound: Duration = .seconds(120)) async -> String? {
        await line(within: bound) { $0.hasPrefix(prefix) }
    }

    /// The lines printed so far that start with `prefix`.
    func lines(startingWith prefix: String) -> [String] {
        state.withLock { $0.seen.filter { $0.hasPrefix(prefix) } }
    }

    /// Everything printed so far.
    var output: String { state.withLock { $0.seen.joined(separator: "\n") } }

    /// The number after `prefix` on the first such line (`PORT 1234`, `STALLED 1234`).
    func number(after prefix: String) async throws -> Int {
        let line = await line(startingWith: prefix + " ")
        return try #require(line.flatMap { Int($0.dropFirst(prefix.count + 1)) }, "peer said: \(output)")
    }

    /// Writes `line` and a newline to the peer's stdin.
    func send(_ line: String) {
        try? input.fileHandleForWriting.write(contentsOf: Data((line + "\n").utf8))
    }

    /// Kills the peer with SIGKILL (its sockets close as the kernel reaps it) and waits for it: a server
    /// that dies mid-load.
    func kill() async {
        _ = Glibc.kill(process.processIdentifier, SIGKILL)
        await stop()
    }

    /// Closes the peer's stdin (it exits) and waits for it.
    func stop() async {
        try? input.fileHandleForWriting.close()
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            Thread {
                self.process.waitUntilExit()
                continuation.resume()
            }.start()
        }
    }
}

/// Runs h2_misbehaving_server.py in `mode` with `arguments`, hands `body` the peer and its port, then
/// stops it.
func withPeer<R: Sendable>(
    _ mode: String,
    _ arguments: [String] = [],
    _ body: (PeerProcess, Int) async throws -> R
) async throws -> R {
    let peer = try PeerProcess("h2_misbehaving_server.py", [mode] + arguments)
    do {
        let port = try await peer.number(after: "PORT")
        let result = try await body(peer, port)
        await peer.stop()
        return result
    } catch {
        await peer.stop()
        throw error
    }
}
