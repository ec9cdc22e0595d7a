internal import Courier

/// Owns a client transport's connections, on the transport's loop. It performs what two machines
/// decide: ``LoadBalancerStateMachine`` (subchannels, pick_first or round_robin, the picker) and
/// ``ResolutionStateMachine`` (when a pull-mode resolver resolves, at most once per minimum interval).
/// Resolution results arrive from the resolver's task (``resolved(_:)``); each subchannel's connection
/// reports to it as ``HTTP2ClientConnectionDelegate``.
///
/// It also holds what outlives one connection: the keepalive time, doubled for later connections each
/// time a server answers GOAWAY `too_many_pings` (gRFC A8).
///
/// The pick path (``open(_:)``) reads the picker the last action left: with one ready connection, one
/// array read; with several, an index that turns. Nothing is allocated per RPC.
final class ClientConnectionManager: HTTP2StreamRouter, HTTP2ClientConnectionDelegate, @unchecked Sendable {
    // @unchecked Sendable: mutable state is touched on `loop` only.
    typealias SubchannelID = LoadBalancerStateMachine.SubchannelID

    let loop: EventLoop
    let configuration: HTTP2ClientTransport.Configuration
    private let authority: String
    private let tls: TLSContext?
    private let connectivity: ConnectivityBroadcaster
    private var balancer: LoadBalancerStateMachine
    private var resolution: ResolutionStateMachine
    /// How resolution requests reach the resolver's task (pull mode only).
    private let resolutionRequests: AsyncStream<Void>.Continuation?
    private var resolutionTimer: LoopTimer?

    // The picker, as the pick path reads it.
    private enum PickMode { case idle, queue, fail, ready }
    private var pickMode = PickMode.idle
    private var readyConnections: [HTTP2ClientConnection] = []
    private var nextPick = 0
    private var pickError: RPCError?
    /// Balancer actions still to perform, and whether they are being performed.
    private var pendingActions: [LoadBalancerStateMachine.Action] = []
    private var performing = false

    /// Each subchannel's current connection.
    private var connections: [SubchannelID: HTTP2ClientConnection] = [:]
    /// The subchannel of each current connection.
    private var subchannelOf: [ObjectIdentifier: SubchannelID] = [:]
    private var backoffTimers: [SubchannelID: LoopTimer] = [:]
    /// Every connection until its socket is closed (a replaced or drained one may still be finishing
    /// streams).
    private var live: [ObjectIdentifier: HTTP2ClientConnection] = [:]
    /// Streams waiting for the picker: for the name to resolve, a connection to be ready, or
    /// (wait-for-ready) the next attempt.
    private var waiting: [HTTP2ClientStream] = []
    /// Why the last attempt failed.
    private var lastError: RPCError?
    private var closed = false
    private var closeCompletion: (() -> Void)?
    private var closeTimer: LoopTimer?
    /// The keepalive settings of the next connection (`time` doubles after `too_many_pings`).
    private var keepalive: ClientConnectionStateMachine.Configuration.Keepalive?
    /// What happened so far, for tests.
    private(set) var counters = Counters()
    private var counterWaiters:
        [UInt64: (predicate: (Counters) -> Bool, resume: (Counters?) -> Void, timer: LoopTimer?)] = [:]
    private var nextCounterWaiter: UInt64 = 0

    /// Connections made so far (each tries every address of its subchannel).
    var connectionAttempts: Int { counters.connectionAttempts }

    /// Events counted for tests (loop-confined; read through ``HTTP2ClientTransport``).
    struct Counters: Sendable, Equatable {
        /// Connections made (each tries every address of its subchannel).
        var connectionAttempts = 0
        /// Keepalive PINGs sent, over every connection.
        var keepalivePingsSent = 0
        /// Connections declared dead: no bytes within the keepalive timeout after a PING.
        var keepaliveTimeouts = 0
        /// Times keepalive went dormant (a quiet connection without streams, not pinged).
        var keepaliveDormancies = 0
        /// GOAWAY `too_many_pings` received (one per connection at most).
        var tooManyPings = 0
        /// Connections closed for being idle.
        var idleCloses = 0
        /// Times a quiet connection gave its receive buffer's pages back.
        var idleBufferReleases = 0
        /// Connect timeouts (per address).
        var connectTimeouts = 0
        /// The keepalive time the next connection uses.
        var keepaliveTime: Duration?
        /// Resolutions asked of a pull-mode resolver.
        var resolutions = 0
        /// Resolution results applied (address lists and failures).
        var resolutionResults = 0
        /// Subchannels shut down (their address left the list).
        var subchannelsShutDown = 0
        /// Connections that became ready.
        var connectionsReady = 0
    }

    init(
        loop: EventLoop,
        resolution source: NameResolution.Source,
        resolutionRequests: AsyncStream<Void>.Continuation?,
        authority: String,
        configuration: HTTP2ClientTransport.Configuration,
        tls: TLSContext?,
        connectivity: ConnectivityBroadcaster
    ) {
        self.loop = loop
        self.authority = authority
        self.configuration = configuration
        self.tls = tls
        self.connectivity = connectivity
        self.resolutionRequests = resolutionRequests
        self.balancer = LoadBalancerStateMachine(
            policy: configuration.loadBalancing,
            backoff: configuration.connectionBackoff
        )
        self.resolution = ResolutionStateMachine(
            minimumInterval: configuration.minimumResolutionInterval,
            retryBackoff: configuration.connectionBackoff
        )
        self.keepalive = configuration.keepalive.map {
            .init(time: $0.effectiveTime, timeout: $0.effectiveTimeout, permitWithoutCalls: $0.permitWithoutCalls)
        }
        self.counters.keepaliveTime = keepalive?.time
        if case .fixed(let addresses) = source {
            // Known without I/O: nothing connects before the first RPC (the machine is idle).
            let actions = balancer.addressesResolved(shuffled(addresses))
            precondition(actions.allSatisfy { if case .connect = $0 { false } else { true } })
        }
    }

    private func shuffled(_ addresses: [SocketAddress]) -> [SocketAddress] {
        if case .pickFirst(shuffleAddressList: true) = configuration.loadBalancing.kind { return addresses.shuffled() }
        return addresses
    }

    // MARK: HTTP2StreamRouter: the pick path

    func open(_ stream: HTTP2ClientStream) {
        loop.preconditionInEventLoop()
        switch pickMode {
        case .ready:
            let count = readyConnections.count
            if count == 1 {
                readyConnections[0].open(stream)
            } else {
                let index = nextPick < count ? nextPick : 0
                nextPick = index + 1
                readyConnections[index].open(stream)
            }
        case .queue:
            waiting.append(stream)
        case .idle:
            guard !closed else {
                stream.connectionLost(RPCError(code: .unavailable, message: "The client transport is closed."))
                return
            }
            waiting.append(stream)
            perform(balancer.exitIdle())
        case .fail:
            // gRPC's TRANSIENT_FAILURE: fail fast unless the call waits for ready.
            if stream.options.waitForReady, !closed {
                stream.waitingForConnection(because: (pickError ?? lastError)?.message)
                waiting.append(stream)
            } else {
                stream.connectionLost(unreachable)
            }
        }
    }

    private var unreachable: RPCError {
        if closed { return RPCError(code: .unavailable, message: "The client transport is closed.") }
        let reason = (pickError ?? lastError).map { ": \($0.message)" } ?? "."
        return RPCError(code: .unavailable, message: "The server is unreachable; retrying the connection\(reason)")
    }

    // MARK: Performing the machines' actions

    /// Performs the balancer's actions in the order the machine produced them: an action whose
    /// performing feeds the machine again (a connect that fails at once) queues the new actions behind
    /// the ones still to do, instead of overtaking them.
    private func perform(_ actions: [LoadBalancerStateMachine.Action]) {
        guard !actions.isEmpty else { return }
        pendingActions.append(contentsOf: actions)
        guard !performing else { return }
        performing = true
        var index = 0
        while index < pendingActions.count {
            let action = pendingActions[index]
            index += 1
            perform(action)
        }
        pendingActions.removeAll(keepingCapacity: true)
        performing = false
    }

    private func perform(_ action: LoadBalancerStateMachine.Action) {
        switch action {
        case .connect(let id, let addresses, let floor):
            connect(id, to: addresses, backoffFloor: floor)
        case .shutDown(let id):
            backoffTimers.removeValue(forKey: id)?.cancel()
            if let connection = connections.removeValue(forKey: id) {
                subchannelOf.removeValue(forKey: ObjectIdentifier(connection))
                connection.drain()
            }
            count { $0.subchannelsShutDown += 1 }
        case .armBackoff(let id, let delay):
            backoffTimers[id]?.cancel()
            // unowned(unsafe): see resolved(_:); close() cancels the timer.
            backoffTimers[id] = loop.scheduleTimer(at: .now.advanced(by: delay)) { [unowned(unsafe) self] in
                self.backoffTimers[id] = nil
                self.perform(self.balancer.backoffElapsed(id))
            }
        case .updatePicker(let picker):
            updatePicker(picker)
        case .requestResolution:
            requestResolution()
        case .connectivityChanged(let state):
            connectivity.publish(state)
        }
    }

    private func connect(_ id: SubchannelID, to addresses: [SocketAddress], backoffFloor: Duration) {
        let management = ClientConnectionStateMachine.Configuration(
            connectTimeout: configuration.connectTimeout.map { max($0, backoffFloor) },
            keepalive: keepalive,
            idleTimeout: configuration.idleTimeout,
            releaseIdleBuffersAfter: configuration.releaseIdleBuffersAfter
        )
        let connection = HTTP2ClientConnection(
            delegate: self,
            loop: loop,
            addresses: addresses,
            authority: authority,
            configuration: configuration,
            management: management,
            tls: tls
        )
        connections[id] = connection
        subchannelOf[ObjectIdentifier(connection)] = id
        live[ObjectIdentifier(connection)] = connection
        count { $0.connectionAttempts += 1 }
        connection.start()
    }

    private func updatePicker(_ picker: LoadBalancerStateMachine.Picker) {
        switch picker {
        case .idle:
            pickMode = .idle
            readyConnections = []
        case .queue:
            pickMode = .queue
            readyConnections = []
        case .fail(let error):
            pickMode = .fail
            pickError = error
            readyConnections = []
        case .ready(let ids):
            readyConnections = ids.compactMap { connections[$0] }
            pickMode = readyConnections.isEmpty ? .queue : .ready
            pickError = nil
        }
        guard !waiting.isEmpty, pickMode != .queue, pickMode != .idle else { return }
        let streams = waiting
        waiting = []
        for stream in streams { open(stream) }
    }

    /// The subchannel of `connection`, if it is still that subchannel's current connection.
    private func subchannel(of connection: HTTP2ClientConnection) -> SubchannelID? {
        subchannelOf[ObjectIdentifier(connection)]
    }

    /// Forgets that `connection` is its subchannel's current one.
    private func detach(_ connection: HTTP2ClientConnection) -> SubchannelID? {
        guard let id = subchannelOf.removeValue(forKey: ObjectIdentifier(connection)) else { return nil }
        if connections[id] === connection { connections.removeValue(forKey: id) }
        return id
    }

    // MARK: Resolution

    private func requestResolution() {
        guard resolutionRequests != nil, !closed else { return }
        perform(resolution.requested(now: .now))
    }

    private func perform(_ actions: [ResolutionStateMachine.Action]) {
        for action in actions {
            switch action {
            case .resolve:
                count { $0.resolutions += 1 }
                resolutionRequests?.yield()
            case .armTimer(let at):
                resolutionTimer?.cancel()
                // unowned(unsafe): see resolved(_:); close() cancels the timer.
                resolutionTimer = loop.scheduleTimer(at: at) { [unowned(unsafe) self] in
                    self.resolutionTimer = nil
                    self.perform(self.resolution.timerFired(now: .now))
                }
            }
        }
    }

    /// A result from the resolver's task (pull mode: the answer to a request; push mode: whenever).
    ///
    /// The resolver's task posts it to the loop; the manager outlives the loop's queued work (it is
    /// closed, and the loop drained, before the transport lets go of it), hence the `unowned(unsafe)`
    /// captures of its timers.
    func resolved(_ result: Result<NameResolutionResult, RPCError>) {
        loop.preconditionInEventLoop()
        guard !closed else { return }
        count { $0.resolutionResults += 1 }
        switch result {
        case .success(let update):
            if resolutionRequests != nil { perform(resolution.succeeded(now: .now)) }
            perform(balancer.addressesResolved(shuffled(update.addresses)))
        case .failure(let error):
            lastError = error
            if resolutionRequests != nil { perform(resolution.failed(now: .now)) }
            perform(balancer.resolutionFailed(error))
        }
    }

    // MARK: HTTP2ClientConnectionDelegate

    func connectionReady(_ connection: HTTP2ClientConnection) {
        guard let id = subchannel(of: connection) else { return }
        count { $0.connectionsReady += 1 }
        lastError = nil
        perform(balancer.subchannelReady(id, address: connection.address))
    }

    func connectionFailed(_ connection: HTTP2ClientConnection, waiting failed: [HTTP2ClientStream], error: RPCError) {
        lastError = error
        if let id = detach(connection) { perform(balancer.subchannelConnectFailed(id, error: error)) }
        // Streams waiting on the connection itself go back to the picker.
        for stream in failed { open(stream) }
    }

    func connectionGoingAway(_ connection: HTTP2ClientConnection) {
        if let id = detach(connection) { perform(balancer.subchannelDisconnected(id, .goAway)) }
    }

    func connectionLost(_ connection: HTTP2ClientConnection, error: RPCError) {
        if let id = detach(connection) { perform(balancer.subchannelDisconnected(id, .lost)) }
    }

    func connectionClosed(_ connection: HTTP2ClientConnection) {
        if let id = detach(connection) { perform(balancer.subchannelDisconnected(id, .lost)) }
        live.removeValue(forKey: ObjectIdentifier(connection))
        if closed, live.isEmpty { finishClosing() }
    }

    func reroute(_ stream: HTTP2ClientStream) {
        open(stream)
    }

    func connectionSentKeepalivePing(_ connection: HTTP2ClientConnection) {
        count { $0.keepalivePingsSent += 1 }
    }

    func connectionReleasedIdleBuffers(_ connection: HTTP2ClientConnection) {
        count { $0.idleBufferReleases += 1 }
    }

    func connection(_ connection: HTTP2ClientConnection, observed event: ClientConnectionStateMachine.Event) {
        switch event {
        case .connectTimedOut:
            count { $0.connectTimeouts += 1 }
        case .keepaliveTimedOut:
            count { $0.keepaliveTimeouts += 1 }
        case .keepaliveDormant:
            count { $0.keepaliveDormancies += 1 }
        case .idle:
            count { $0.idleCloses += 1 }
            if let id = detach(connection) { perform(balancer.subchannelDisconnected(id, .idle)) }
        case .tooManyPings:
            // gRFC A8: the server's ping policy is stricter than this client's keepalive time: later
            // connections use twice the time (capped far beyond any useful value, never overflowing).
            if var settings = keepalive {
                settings.time = min(settings.time * 2, .seconds(365 * 86_400))
                keepalive = settings
            }
            count {
                $0.tooManyPings += 1
                $0.keepaliveTime = keepalive?.time
            }
        }
    }

    // MARK: Counters

    private func count(_ change: (inout Counters) -> Void) {
        change(&counters)
        guard !counterWaiters.isEmpty else { return }
        let snapshot = counters
        for (id, waiter) in counterWaiters where waiter.predicate(snapshot) {
            counterWaiters.removeValue(forKey: id)
            waiter.timer?.cancel()
            waiter.resume(snapshot)
        }
    }

    /// Calls `resume` with the counters once `predicate` holds for them (at once if it does now), or with
    /// `nil` after `timeout`. On the loop.
    func whenCounters(
        within timeout: Duration,
        _ predicate: @escaping (Counters) -> Bool,
        resume: @escaping (Counters?) -> Void
    ) {
        loop.preconditionInEventLoop()
        if predicate(counters) {
            resume(counters)
            return
        }
        let id = nextCounterWaiter
        nextCounterWaiter += 1
        // unowned(unsafe): see resolved(_:); close() cancels the timer.
        let timer = loop.scheduleTimer(at: .now.advanced(by: timeout)) { [unowned(unsafe) self] in
            self.counterWaiters.removeValue(forKey: id)?.resume(nil)
        }
        counterWaiters[id] = (predicate, resume, timer)
    }

    /// The subchannels' states and addresses, in address-list order (tests).
    var subchannelStates: [(addresses: [SocketAddress], state: LoadBalancerStateMachine.Subchannel.State)] {
        balancer.order.compactMap { id in balancer.subchannels[id].map { ($0.addresses, $0.state) } }
    }

    // MARK: Closing

    /// Closes every connection (cleanly: TLS close_notify), then calls `completion` once their sockets
    /// are closed, or after ``closeWait`` at most, so that the loop can stop.
    func close(completion: @escaping () -> Void = {}) {
        loop.preconditionInEventLoop()
        closeCompletion = completion
        closed = true
        resolutionTimer?.cancel()
        resolutionTimer = nil
        resolutionRequests?.finish()
        for timer in backoffTimers.values { timer.cancel() }
        backoffTimers.removeAll()
        connections.removeAll()
        subchannelOf.removeAll()
        perform(balancer.shutDown().filter { if case .shutDown = $0 { false } else { true } })
        let pending = waiting
        waiting = []
        let error = RPCError(code: .unavailable, message: "The client transport is closed.")
        for stream in pending { stream.connectionLost(error) }
        for connection in live.values { connection.close() }
        let waiters = counterWaiters.values
        counterWaiters.removeAll()
        for waiter in waiters {
            waiter.timer?.cancel()
            waiter.resume(nil)
        }
        if live.isEmpty {
            finishClosing()
            return
        }
        // unowned(unsafe): see resolved(_:); the transport waits for the completion before letting go.
        closeTimer = loop.scheduleTimer(at: .now.advanced(by: Self.closeWait)) { [unowned(unsafe) self] in
            self.finishClosing()
        }
    }

    /// How long ``close(completion:)`` waits for the sockets to close (a TLS close lingers at most 1 s).
    static let closeWait: Duration = .seconds(2)

    private func finishClosing() {
        closeTimer?.cancel()
        closeTimer = nil
        let completion = closeCompletion
        closeCompletion = nil
        completion?()
    }
}
