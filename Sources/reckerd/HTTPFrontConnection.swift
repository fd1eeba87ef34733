import Glibc
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
final class HTTPFrontConnection: DaemonClient, EngineEvents {
    private let fd: Int32
    private var registration: EventLoop.Registration?
    private unowned let daemon: Daemon
    let kind: Listener.Kind
    let peer: PeerCredentials?
    let client: ClientID
    var registered = false
    var countedAs: UInt32? { kind.isUnix ? peer?.uid : kind == .metrics ? Daemon.metricsPeers : Daemon.tcpPeers }
    let sink = ConnectionSink<HTTPFrontConnection>()
    private var machine: HTTPSessionStateMachine
    private var reader: HTTPRequestReader
    private var input: [UInt8] = []
    private var inputStart = 0
    private var output: [UInt8] = []
    private var outputStart = 0
    private var backpressured = false
    private var queuedForFlush = false
    private(set) var isClosed = false
    private var timer: EventLoop.TimerID?
    private var timerAt: UInt64 = .max
    private var lingerTimer: EventLoop.TimerID?
    private var processScheduled = false

    /// Unparsed input past which reading pauses (pipelined requests waiting their turn).
    static let maxPendingInput = 64 * 1024
    /// The head a request may have: the header limits, 4 bytes per header for ": " and
    /// line ends, and 8 KiB for the request line.
    static func headLimit(_ limits: HeaderLimits) -> Int { limits.bytes + 4 * limits.count + 8192 }

    /// `refusal` (too many connections of one user) and, on the Unix socket, the access
    /// lists make every request on the connection answered with an error, then closed.
    init(fd: Int32, daemon: Daemon, kind: Listener.Kind, peer: PeerCredentials?, client: ClientID, refusal tooMany: ReckerError?) {
        self.fd = fd
        self.daemon = daemon
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
                if !SessionStateMachine.allows(uid: peer.uid, gids: peer.gids, config: config) {
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

    /// Starts reading.
    func start() {
        sink.connection = self
        do {
            registration = try daemon.loop.register(fd, .readable) { [unowned self] events in ready(events) }
        } catch {
            daemon.logger.error("cannot watch an HTTP client connection: \(error)")
            closeNow()
            return
        }
        if kind == .httpTCP || kind == .metrics {
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        }
        rearm()
    }

    // MARK: - carrying out the machine's actions

    private func run(_ actions: [HTTPSessionStateMachine.Action]) {
        for action in actions {
            guard !isClosed else { return }
            switch action {
            case .write(let bytes):
                output += bytes
                wrote()
            case .start(let id, let request):
                daemon.engine.start(id, request, sink: sink)
            case .sendBody(let id, let data, let end):
                daemon.engine.sendBody(id, data, end: end)
            case .consumed(let id, let n):
                daemon.engine.consumed(id, bytes: n)
            case .cancel(let id):
                daemon.engine.cancel(id)
            case .stats:
                // The scrape endpoint the config turned on is for monitoring: every uid's counts.
                daemon.statsReport(.prometheus, for: .everyone) { [weak self] document in
                    guard let self, !isClosed else { return }
                    run(machine.statsReady(document, draining: daemon.isDraining, now: daemon.loop.now))
                }
            case .responded(let reused):
                daemon.noteResponse(uid: countedAs ?? Daemon.tcpPeers, reused: reused)
            case .log(let level, let text):
                daemon.logger.log(level: level, "\(text)")
            case .resumeParsing:
                scheduleProcess()
            case .rearm:
                rearm()
            case .closeWhenWritten:
                // The flush at the end of this pass closes once the output is out.
                if !queuedForFlush {
                    queuedForFlush = true
                    daemon.flushAtEndOfPass(self)
                }
                updateInterest()
            case .closeNow:
                closeNow()
            }
        }
    }

    // MARK: - reading and parsing

    private func ready(_ events: EventLoop.Events) {
        guard !isClosed else { return }
        if lingerTimer != nil { return discardUntilEOF() }
        // Half-closed, then gone altogether (HUP is reported whatever the interest): no one
        // is left to answer, and the event would come back on every pass.
        if inputEnded && !events.isDisjoint(with: [.hangup, .error]) { return closeNow() }
        if events.contains(.writable) { flush() }
        if !isClosed && wantsRead && !events.isDisjoint(with: [.readable, .hangup, .readHangup, .error]) { readInput() }
    }

    /// The client shut its sending side: nothing more is read.
    private var inputEnded = false

    private var wantsRead: Bool {
        !inputEnded && !backpressured && !machine.closing && input.count - inputStart < Self.maxPendingInput
            && machine.bodyOutstanding < daemon.config.streamWindow
    }

    private func readInput() {
        let (n, err) = SystemError.retrying {
            daemon.scratch.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        }
        if n < 0 {
            if err == EAGAIN || err == EWOULDBLOCK { return }
            closeNow()
            return
        }
        if n == 0 {
            // The client shut its side: the requests it sent whole are still answered, each
            // in turn (pipelined ones wait in `input`), then the connection closes.
            inputEnded = true
            endOfInputReached()
            if !isClosed { updateInterest() }
            return
        }
        machine.bytesRead(now: daemon.loop.now)
        input.append(contentsOf: daemon.scratch[0 ..< n])
        process()
    }

    private func scheduleProcess() {
        guard !processScheduled else { return }
        processScheduled = true
        daemon.loop.soon { [weak self] in
            guard let self, !isClosed else { return }
            processScheduled = false
            process()
            updateInterest()
        }
    }

    /// Reads what has arrived, request by request, until the input runs out, a complete
    /// request waits for its response, or the connection is refused.
    private func process() {
        while !isClosed && machine.acceptsInput && (inputStart < input.count || reader.hasEventWithoutInput) {
            let (taken, event) = reader.read(input[inputStart...])
            inputStart += taken
            guard let event else { break }
            switch event {
            case .begun:
                run(machine.headBegins(now: daemon.loop.now))
            case .head(let request):
                run(machine.head(request, transfer: daemon.engine.makeTransferID(), config: daemon.config,
                                 draining: daemon.isDraining, now: daemon.loop.now,
                                 client: client, user: TurnKey.of(uid: countedAs ?? Daemon.tcpPeers, connection: client)))
                if isClosed || machine.closing { return }
            case .body(let piece):
                run(machine.body([Array(piece)]))
            case .end:
                run(machine.requestComplete(now: daemon.loop.now))
            case .refused(let refusal):
                return refuse(refusal)
            }
        }
        compactInput()
        if inputEnded { endOfInputReached() }
    }

    /// After the client's half-close, once every buffered byte is parsed: the request in
    /// progress, if whole, is answered and the connection closes after it; with nothing
    /// left to answer (or only part of a request) it closes now.
    private func endOfInputReached() {
        guard !isClosed, inputStart >= input.count else { return }
        if !machine.inputEnded() { closeNow() }
    }

    private func refuse(_ refusal: HTTPRefusal) {
        run(machine.refuse(refusal, method: reader.method, now: daemon.loop.now))
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
        if machine.bodySent(id, bytes: bytes, window: daemon.config.streamWindow) { updateInterest() }
    }

    // MARK: - writing

    private func wrote() {
        if !queuedForFlush {
            queuedForFlush = true
            daemon.flushAtEndOfPass(self)
        }
        if !backpressured && output.count - outputStart > ClientConnection.highWater {
            backpressured = true
            updateInterest()
            run(machine.writabilityChanged(false, now: daemon.loop.now))
        }
    }

    /// Writes what is buffered; what the socket does not take waits for it to be writable.
    func flush() {
        queuedForFlush = false
        guard !isClosed, lingerTimer == nil else { return }
        if outputStart < output.count {
            let (n, err) = SystemError.retrying {
                output.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + outputStart, $0.count - outputStart) }
            }
            if n < 0 {
                if err == EAGAIN || err == EWOULDBLOCK {
                    updateInterest()
                    return
                }
                closeNow()
                return
            }
            outputStart += n
            if n > 0 { machine.wrote(now: daemon.loop.now) }
        }
        if outputStart == output.count {
            output.removeAll(keepingCapacity: output.capacity <= 256 * 1024)
            outputStart = 0
            if machine.closing { return lingerAndClose() }
        } else if outputStart > ClientConnection.lowWater {
            output.removeFirst(outputStart)
            outputStart = 0
        }
        if backpressured && output.count - outputStart < ClientConnection.lowWater {
            backpressured = false
            run(machine.writabilityChanged(true, now: daemon.loop.now))
            if !isClosed { scheduleProcess() }
        }
        updateInterest()
    }

    private func updateInterest() {
        guard let registration, !isClosed, lingerTimer == nil else { return }
        var interest: EventLoop.Events = wantsRead ? .readable : []
        if outputStart < output.count { interest.insert(.writable) }
        daemon.loop.modify(registration, interest)
    }

    // MARK: - time and closing

    /// Makes sure a timer fires by the machine's deadline. A timer already due sooner is
    /// left alone (it looks again when it fires), so most requests touch no timer at all.
    private func rearm() {
        guard !isClosed, lingerTimer == nil, let d = machine.deadline(daemon.config) else { return }
        if timer != nil && timerAt <= d { return }
        if let t = timer { daemon.loop.cancel(t) }
        timerAt = d
        timer = daemon.loop.schedule(at: d) { [weak self] in self?.timerFired() }
    }

    private func timerFired() {
        timer = nil
        timerAt = .max
        guard !isClosed, lingerTimer == nil, let d = machine.deadline(daemon.config) else { return }
        guard daemon.loop.now >= d else { return rearm() }
        run(machine.timedOut(daemon.config, headStarted: reader.inRequest, now: daemon.loop.now))
    }

    /// After a refusal or a last response: the write side is shut and what the client still
    /// sends is read and dropped until it closes, for up to a second (nginx's lingering
    /// close), so it reads the answer instead of a reset.
    private func lingerAndClose() {
        guard !isClosed, lingerTimer == nil else { return }
        run(machine.closed())
        sink.markGone()
        if let t = timer { daemon.loop.cancel(t) }
        timer = nil
        shutdown(fd, Int32(SHUT_WR))
        let loop = daemon.loop
        lingerTimer = loop.schedule(at: loop.now &+ ClientConnection.lingerNs) { [weak self] in self?.closeNow() }
        if let registration { loop.modify(registration, .readable) }
    }

    private func discardUntilEOF() {
        let (n, err) = SystemError.retrying {
            daemon.scratch.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        }
        if n == 0 || (n < 0 && err != EAGAIN && err != EWOULDBLOCK) { closeNow() }
    }

    /// Closes the socket at once and cancels the request in flight, if any.
    func closeNow() {
        guard !isClosed else { return }
        let cancels = machine.closed()
        isClosed = true
        sink.markGone()
        if let t = timer { daemon.loop.cancel(t) }
        if let t = lingerTimer { daemon.loop.cancel(t) }
        timer = nil
        lingerTimer = nil
        if let registration { daemon.loop.unregister(registration) }
        Glibc.close(fd)
        for case .cancel(let id) in cancels { daemon.engine.cancel(id) }
        daemon.clientDisconnected(self)
        sink.connection = nil
    }
}
