import Logging
import ReckerLoop
import ReckerPool
import ReckerProtocol
import ReckerSession

/// One HTTP/1.1 client of the HTTP front (or of the metrics port): its socket, its
/// request reader, its output buffer and its timer. What the
/// requests become, and when the connection goes on or closes, is decided by its
/// `HTTPSessionStateMachine`; this carries out the actions, on the same engine, pools,
/// limits and policy as the binary front. Loop-confined, like the daemon.
final class HTTPFrontConnection: DaemonClient, ClientSocketOwner, EngineEvents {
    private unowned let daemon: Daemon
    private let socket: ClientSocket
    let kind: Listener.Kind
    let peer: PeerCredentials?
    let client: ClientID
    var registered = false
    var countedAs: UInt32? { kind.isUnix ? peer?.uid : kind == .metrics ? Daemon.metricsPeers : Daemon.tcpPeers }
    let sink: ConnectionSink<HTTPFrontConnection>
    private var machine: HTTPSessionStateMachine
    private var reader: HTTPRequestReader
    private var input: [UInt8] = []
    private var inputStart = 0
    private var processScheduled = false

    /// Unparsed input past which reading pauses (pipelined requests waiting their turn).
    static let maxPendingInput = 64 * 1024
    /// The head a request may have: the header limits, 4 bytes per header for ": " and
    /// line ends, and 8 KiB for the request line.
    static func headLimit(_ limits: HeaderLimits) -> Int { limits.bytes + 4 * limits.count + 8192 }

    /// `refusal` (too many connections of one user) and, on the Unix socket, the access
    /// lists make every request on the connection answered with an error, then closed.
    init(fd: Int32, daemon: Daemon, kind: Listener.Kind, peer: PeerCredentials?, client: ClientID, refusal tooMany: ReckerError?) {
        self.daemon = daemon
        socket = ClientSocket(fd: fd, daemon: daemon)
        sink = ConnectionSink(loop: daemon.loop)
        self.kind = kind
        self.peer = peer
        self.client = client
        let config = daemon.config
        reader = HTTPRequestReader(headLimit: Self.headLimit(config.pool.headerLimits))
        var refusal: HTTPRefusal?
        if let tooMany {
            refusal = HTTPRefusal(503, tooMany.code.name, tooMany.message)
        } else if kind == .httpUnix {
            if let peer {
                if !daemon.session.allows(uid: peer.uid, gids: peer.gids) {
                    daemon.logger.notice("refused HTTP client uid \(peer.uid) pid \(peer.pid)")
                    refusal = HTTPRefusal(403, ReckerError.Code.accessDenied.name,
                                          "uid \(peer.uid) is not in allowUsers and none of its groups is in allowGroups")
                }
            } else {
                refusal = HTTPRefusal(403, ReckerError.Code.accessDenied.name, "reckerd could not read this client's credentials")
            }
        }
        machine = HTTPSessionStateMachine(role: kind == .metrics ? .metrics : .proxy, refusal: refusal, now: daemon.loop.now)
    }

    func start() {
        sink.connection = self
        guard socket.start(owner: self) else { return }
        if kind == .httpTCP || kind == .metrics { socket.setNoDelay() }
        rearm()
    }

    func closeNow() { socket.closeNow() }

    // MARK: - carrying out the machine's actions

    private func run(_ actions: [HTTPSessionStateMachine.Action]) {
        for action in actions {
            guard !socket.isClosed else { return }
            switch action {
            case .write(let bytes):
                socket.write(bytes)
            case .engine(let command):
                daemon.engine.perform(command, sink: sink)
            case .stats:
                // The scrape endpoint the config turned on is for monitoring: every uid's counts.
                daemon.statsReport(.prometheus, for: .everyone) { [weak self] document in
                    guard let self, !socket.isClosed else { return }
                    run(machine.statsReady(document, draining: daemon.isDraining, now: daemon.loop.now))
                }
            case .responded(let reused):
                daemon.noteResponse(uid: countedAs ?? Daemon.tcpPeers, reused: reused)
            case .log(let level, let text):
                daemon.logger.log(level: Logger.Level(level), "\(text)")
            case .resumeParsing:
                scheduleProcess()
            case .rearm:
                rearm()
            case .closeWhenWritten:
                socket.closeAfterWriting()
            case .closeNow:
                socket.closeNow()
            }
        }
    }

    // MARK: - reading and parsing

    var wantsInput: Bool {
        input.count - inputStart < Self.maxPendingInput && machine.readsInput(window: daemon.config.streamWindow)
    }

    func received(_ bytes: ArraySlice<UInt8>) {
        machine.bytesRead(now: daemon.loop.now)
        input.append(contentsOf: bytes)
        process()
    }

    /// The client shut its side: the requests it sent whole are still answered, each in
    /// turn (pipelined ones wait in `input`), then the connection closes.
    func inputEnded() { endOfInputReached() }

    private func scheduleProcess() {
        guard !processScheduled else { return }
        processScheduled = true
        daemon.loop.soon { [weak self] in
            guard let self, !socket.isClosed else { return }
            processScheduled = false
            process()
            socket.updateInterest()
        }
    }

    /// Reads what has arrived, request by request, until the input runs out, a complete
    /// request waits for its response, or the connection is refused.
    private func process() {
        while !socket.isClosed && machine.acceptsInput && (inputStart < input.count || reader.hasEventWithoutInput) {
            let (taken, event) = reader.read(input[inputStart...])
            inputStart += taken
            guard let event else { break }
            switch event {
            case .begun:
                run(machine.headBegins(now: daemon.loop.now))
            case .head(let request):
                run(machine.head(request, transfer: daemon.engine.makeTransferID(), config: daemon.session,
                                 draining: daemon.isDraining, now: daemon.loop.now,
                                 client: client, user: TurnKey.of(uid: countedAs ?? Daemon.tcpPeers, connection: client)))
                if socket.isClosed || !machine.acceptsInput { return }
            case .body(let piece):
                run(machine.body([Array(piece)]))
            case .end:
                run(machine.requestComplete(now: daemon.loop.now))
            case .refused(let refusal):
                return run(machine.refuse(refusal, method: reader.method, now: daemon.loop.now))
            }
        }
        compactInput()
        if socket.inputEnded { endOfInputReached() }
    }

    /// After the client's half-close, once every buffered byte is parsed: the request in
    /// progress, if whole, is answered and the connection closes after it; with nothing
    /// left to answer (or only part of a request) it closes now.
    private func endOfInputReached() {
        guard !socket.isClosed, inputStart >= input.count else { return }
        if !machine.inputEnded() { socket.closeNow() }
    }

    private func compactInput() {
        if inputStart == input.count {
            input.removeAll(keepingCapacity: input.capacity <= 128 * 1024)
            inputStart = 0
        } else if inputStart > 64 * 1024 {
            input.removeFirst(inputStart)
            inputStart = 0
        }
    }

    // MARK: - engine events (loop thread)

    func engineHead(_ id: TransferID, _ head: ResponseHead) {
        run(machine.responseHead(id, head, annotate: daemon.config.http.annotate, draining: daemon.isDraining,
                                 debug: daemon.logger.logLevel <= .debug, now: daemon.loop.now))
    }

    func engineBody(_ id: TransferID, _ chunk: [UInt8]) { run(machine.responseBody(id, chunk, now: daemon.loop.now)) }
    func engineEnd(_ id: TransferID, _ end: ResponseEnd) { run(machine.responseEnd(id, now: daemon.loop.now)) }

    func engineFailed(_ id: TransferID, _ error: ReckerError) {
        run(machine.failed(id, error, draining: daemon.isDraining, now: daemon.loop.now))
    }

    func engineBodySent(_ id: TransferID, bytes: Int) {
        if machine.bodySent(id, bytes: bytes, window: daemon.config.streamWindow) { socket.updateInterest() }
    }

    // MARK: - the socket's news

    func outputTaken() { machine.wrote(now: daemon.loop.now) }

    func writabilityChanged(_ writable: Bool) {
        run(machine.writabilityChanged(writable, now: daemon.loop.now))
        if writable && !socket.isClosed { scheduleProcess() }
    }

    /// After a refusal or a last response, once it is out: the client reads it instead of
    /// a reset.
    func lingerBegan() {
        run(machine.closed())
        sink.markGone()
    }

    func socketClosed() {
        let cancels = machine.closed()
        sink.markGone()
        for case .engine(let command) in cancels { daemon.engine.perform(command, sink: sink) }
        daemon.clientDisconnected(self)
        sink.connection = nil
    }

    // MARK: - time

    /// Makes sure the socket wakes this connection by the machine's deadline.
    private func rearm() { socket.wake(by: machine.deadline(daemon.session)) }

    func deadlineReached(now: UInt64) {
        guard let d = machine.deadline(daemon.session) else { return }
        guard now >= d else { return rearm() }
        run(machine.timedOut(daemon.session, headStarted: reader.inRequest, now: now))
    }
}
