import Testing

@testable import CourierHTTP2

@Suite("HandlerPoolStateMachine: handler tasks reused across RPCs, transition by transition")
struct HandlerPoolStateMachineTests {
    typealias Machine = HandlerPoolStateMachine<Int>

    @Test("The first stream starts a task; once its handler returns the task is parked")
    func startThenPark() {
        var machine = Machine(maxIdle: 4)
        guard case .start(cancelled: false) = machine.serve() else {
            Issue.record("expected start")
            return
        }
        #expect(machine.workers == 1)
        #expect(machine.active == 1)
        #expect(!machine.isQuiet)
        guard case .parked = machine.handlerFinished(cancelled: false, waiter: 1) else {
            Issue.record("expected parked")
            return
        }
        #expect(machine.idleCount == 1)
        #expect(machine.workers == 1)
        #expect(machine.isQuiet)
    }

    @Test("The next stream wakes a parked task (the last parked first) instead of starting one")
    func reuseLastParked() {
        var machine = Machine(maxIdle: 4)
        _ = machine.serve()
        _ = machine.serve()
        _ = machine.handlerFinished(cancelled: false, waiter: 1)
        _ = machine.handlerFinished(cancelled: false, waiter: 2)
        guard case .resume(2) = machine.serve() else {
            Issue.record("expected resume(2)")
            return
        }
        guard case .resume(1) = machine.serve() else {
            Issue.record("expected resume(1)")
            return
        }
        #expect(machine.workers == 2)
        #expect(machine.active == 2)
        guard case .start(cancelled: false) = machine.serve() else {
            Issue.record("expected start")
            return
        }
        #expect(machine.workers == 3)
    }

    @Test("A cancelled task is not parked: it ends")
    func cancelledEnds() {
        var machine = Machine(maxIdle: 4)
        _ = machine.serve()
        guard case .exit(notify: false) = machine.handlerFinished(cancelled: true, waiter: 1) else {
            Issue.record("expected exit")
            return
        }
        #expect(machine.idleCount == 0)
        #expect(machine.workerExited() == false)
        #expect(machine.workers == 0)
    }

    @Test("At most maxIdle tasks are parked; the rest end")
    func maxIdle() {
        var machine = Machine(maxIdle: 2)
        for _ in 0..<3 { _ = machine.serve() }
        guard case .parked = machine.handlerFinished(cancelled: false, waiter: 1),
            case .parked = machine.handlerFinished(cancelled: false, waiter: 2),
            case .exit = machine.handlerFinished(cancelled: false, waiter: 3)
        else {
            Issue.record("expected parked, parked, exit")
            return
        }
        #expect(machine.idleCount == 2)
        _ = machine.workerExited()
        #expect(machine.workers == 2)
    }

    @Test("maxIdle 0: every task ends after one RPC, as a task per RPC would")
    func noParking() {
        var machine = Machine(maxIdle: 0)
        _ = machine.serve()
        guard case .exit = machine.handlerFinished(cancelled: false, waiter: 1) else {
            Issue.record("expected exit")
            return
        }
    }

    @Test("Graceful shutdown: running handlers finish and end; close wakes the parked; then finished")
    func gracefulShutdown() {
        var machine = Machine(maxIdle: 4)
        _ = machine.serve()
        _ = machine.serve()
        _ = machine.handlerFinished(cancelled: false, waiter: 1)  // parked
        #expect(machine.beginShutdown(abort: false) == false)  // one handler still runs
        // A stream that still arrives (below the GOAWAY's last stream) gets the parked task.
        guard case .resume(1) = machine.serve() else {
            Issue.record("expected resume(1)")
            return
        }
        guard case .exit(notify: false) = machine.handlerFinished(cancelled: false, waiter: 2) else {
            Issue.record("expected exit without notify: one handler still runs")
            return
        }
        #expect(machine.workerExited() == false)
        guard case .exit(notify: true) = machine.handlerFinished(cancelled: false, waiter: 1) else {
            Issue.record("expected exit with notify: the last handler returned")
            return
        }
        #expect(machine.isQuiet)
        #expect(!machine.isFinished)  // not closed yet
        #expect(machine.close().isEmpty)
        #expect(machine.workerExited() == true)
        #expect(machine.isFinished)
    }

    @Test("close returns the parked tasks to wake; the last to end reports it")
    func closeWakesParked() {
        var machine = Machine(maxIdle: 4)
        _ = machine.serve()
        _ = machine.serve()
        _ = machine.handlerFinished(cancelled: false, waiter: 7)
        _ = machine.handlerFinished(cancelled: false, waiter: 8)
        #expect(machine.beginShutdown(abort: false) == true)
        #expect(machine.close() == [7, 8])
        #expect(machine.idleCount == 0)
        #expect(machine.workerExited() == true)
        #expect(!machine.isFinished)
        #expect(machine.workerExited() == true)
        #expect(machine.isFinished)
    }

    /// The hang `COURIER_TEST_TRANSPORT=http2` found in the core suite: an abort marks the listener
    /// shutting down, a loop finds it quiet and closes the pool, and the parked task ends before the
    /// abort has told the pool. The last task to end must still report it, or nothing checks again.
    @Test("A pool closed before it hears of the shutdown: the last task to end still reports it")
    func closedBeforeShutdown() {
        var machine = Machine(maxIdle: 4)
        _ = machine.serve()
        _ = machine.handlerFinished(cancelled: false, waiter: 1)
        #expect(machine.close() == [1])
        #expect(machine.workerExited() == true)
        #expect(machine.isFinished)
    }

    @Test("Abort: a task started afterwards is cancelled at once")
    func abortCancelsNewTasks() {
        var machine = Machine(maxIdle: 4)
        #expect(machine.beginShutdown(abort: true) == true)
        guard case .start(cancelled: true) = machine.serve() else {
            Issue.record("expected a cancelled start")
            return
        }
    }

    @Test("Before shutdown nothing notifies the listener, even when the last handler returns")
    func noNotifyWhileServing() {
        var machine = Machine(maxIdle: 0)
        _ = machine.serve()
        guard case .exit(notify: false) = machine.handlerFinished(cancelled: false, waiter: 1) else {
            Issue.record("expected exit without notify")
            return
        }
        #expect(machine.workerExited() == false)
    }
}
