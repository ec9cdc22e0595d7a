import Testing

@testable import Courier

@Suite("The request log of a call with retries, transition by transition")
struct RequestLogStateTests {
    typealias Log = RequestLogState<String>

    /// Appends `message` (its size is its length) with a budget that always has room.
    static func append(_ log: inout Log, _ message: String, budget: Bool = true) -> Log.AppendResult {
        log.append(message, size: message.utf8.count, reserve: { _ in budget })
    }

    static func read(_ log: inout Log, _ n: Int) -> String {
        switch log.read(n) {
        case .message(let message): message
        case .end: "<end>"
        case .wait: "<wait>"
        case .failed(let error): "<failed \(error.code)>"
        }
    }

    @Test("Within the limit, an append is kept and done; every reader reads from the start at its own pace")
    func keepsForEveryReader() {
        var log = Log(limit: 8)
        let r1 = log.addReader(1)
        #expect(r1)
        guard case .kept = Self.append(&log, "ab") else {
            Issue.record("not kept")
            return
        }
        #expect(Self.read(&log, 1) == "ab")
        #expect(Self.read(&log, 1) == "<wait>")
        guard case .kept = Self.append(&log, "cd") else {
            Issue.record("not kept")
            return
        }
        let r2 = log.addReader(2)
        #expect(r2)  // a later attempt still reads the whole request
        #expect(Self.read(&log, 2) == "ab")
        #expect(Self.read(&log, 2) == "cd")
        log.finish()
        #expect(Self.read(&log, 2) == "<end>")
        #expect(Self.read(&log, 1) == "cd")
        #expect(Self.read(&log, 1) == "<end>")
        #expect(log.reserved == 4)
        #expect(log.messages.count == 2)  // nothing is dropped while the call may replay
    }

    @Test("Past the limit: overflowed, the writer waits until replay stops and every reader has taken it")
    func overflow() {
        var log = Log(limit: 4)
        let r3 = log.addReader(1)
        #expect(r3)
        _ = Self.append(&log, "abc")
        guard case .overflowed(let index) = Self.append(&log, "de") else {
            Issue.record("no overflow")
            return
        }
        #expect(index == 1)
        #expect(log.writeStatus(1) == .wait)
        let r4 = log.stopReplay()
        #expect(r4 == 3)  // the budget gets its bytes back
        #expect(log.writeStatus(1) == .wait)
        #expect(Self.read(&log, 1) == "abc")
        #expect(log.base == 1)  // taken by every reader: dropped
        #expect(Self.read(&log, 1) == "de")
        #expect(log.writeStatus(1) == .done)
        #expect(log.bytes == 0)
        let r5 = log.addReader(2)
        #expect(!r5)  // the start is gone
        guard case .queued(let next) = Self.append(&log, "f") else {
            Issue.record("not queued")
            return
        }
        #expect(log.writeStatus(next) == .wait)
        #expect(Self.read(&log, 1) == "f")
        #expect(log.writeStatus(next) == .done)
    }

    @Test("A budget that says no overflows the log as the limit does")
    func budgetRefuses() {
        var log = Log(limit: 100)
        guard case .overflowed = Self.append(&log, "a", budget: false) else {
            Issue.record("no overflow")
            return
        }
        #expect(log.reserved == 0)
    }

    @Test("Replay stopped with no reader (a retry waits for its backoff): everything is kept for that retry")
    func noReaderKeepsAll() {
        var log = Log(limit: 2)
        let r6 = log.addReader(1)
        #expect(r6)
        _ = Self.append(&log, "a")
        #expect(Self.read(&log, 1) == "a")
        log.removeReader(1)  // attempt 1 failed
        _ = Self.append(&log, "bc")  // overflows
        _ = log.stopReplay()
        #expect(log.writeStatus(1) == .wait)
        #expect(log.messages == ["a", "bc"])
        let r7 = log.addReader(2)
        #expect(r7)
        #expect(Self.read(&log, 2) == "a")
        #expect(Self.read(&log, 2) == "bc")
        #expect(log.writeStatus(1) == .done)
        #expect(log.messages.isEmpty)
    }

    @Test("Commit: only the committed attempt is read for; when its stream closes, writes stop quietly")
    func commit() {
        var log = Log(limit: 100)
        let r8 = log.addReader(1)
        #expect(r8)
        let r9 = log.addReader(2)
        #expect(r9)
        _ = Self.append(&log, "a")
        #expect(Self.read(&log, 2) == "a")
        let r10 = log.commit(2)
        #expect(r10 == 1)
        #expect(log.readers.keys.sorted() == [2])
        #expect(log.messages.isEmpty)
        guard case .queued(let index) = Self.append(&log, "b") else {
            Issue.record("not queued")
            return
        }
        #expect(log.writeStatus(index) == .wait)
        log.removeReader(2, writeError: RPCError(code: .unavailable, message: "reset"))
        #expect(log.writeStatus(index) == .closed(RPCError(code: .unavailable, message: "reset")))
        guard case .closed = Self.append(&log, "c") else {
            Issue.record("not closed")
            return
        }
        let r11 = log.fail(RPCError(code: .unavailable, message: "reset"))
        #expect(r11 == nil)  // not the call's error
    }

    @Test("Commit to an attempt that already ended (a Trailers-Only OK): the producer stops quietly")
    func commitToEnded() {
        var log = Log(limit: 100)
        let r12 = log.addReader(1)
        #expect(r12)
        log.removeReader(1)
        _ = log.commit(1)
        #expect(log.closure == .requestStreamClosed(.requestStreamClosed))
    }

    @Test("A producer that throws: readers get its error after the messages; the call fails with it")
    func producerFails() {
        var log = Log(limit: 100)
        let r13 = log.addReader(1)
        #expect(r13)
        _ = Self.append(&log, "a")
        let error = RPCError(code: .invalidArgument, message: "bad request")
        let r14 = log.fail(error)
        #expect(r14 == error)
        #expect(Self.read(&log, 1) == "a")
        #expect(Self.read(&log, 1) == "<failed INVALID_ARGUMENT>")
        let r15 = log.fail(error)
        #expect(r15 == nil)  // once
    }

    @Test("Close: writes throw the call's error, readers stop, the budget gets its bytes back")
    func close() {
        var log = Log(limit: 100)
        let r16 = log.addReader(1)
        #expect(r16)
        _ = Self.append(&log, "abc")
        let r17 = log.close(with: .cancelledLocally)
        #expect(r17 == 3)
        #expect(log.writeStatus(0) == .closed(.cancelledLocally))
        guard case .closed(let error) = Self.append(&log, "d") else {
            Issue.record("not closed")
            return
        }
        #expect(error == .cancelledLocally)
        #expect(Self.read(&log, 1) == "<failed CANCELLED>")
        let r18 = log.addReader(2)
        #expect(!r18)
        let r19 = log.fail(RPCError(code: .internal, message: "x"))
        #expect(r19 == nil)  // the call had already ended
    }
}
