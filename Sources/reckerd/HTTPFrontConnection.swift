import Glibc
import Logging
import ReckerLoop
import ReckerPool
import ReckerProtocol

/// One HTTP/1.1 client of the HTTP front (or of the metrics port): parses its requests with
/// libhttp-parser, checks them with `HTTPProxyRules`, hands them to the same engine, pools,
/// limits and policy as the binary front, and writes the responses back in order. Requests
/// on one connection are served one at a time: a pipelined request waits, parsed no
/// further, until the response before it has gone out (as nginx does), so responses are in
/// order without holding one response while another is fetched. Loop-confined.
final class HTTPFrontConnection: DaemonClient {
    /// The request being served and its response's progress.
    struct Exchange {
        var transfer: TransferID?
        var method: String
        var url: String
        var domain: String
        var clientHTTP10: Bool
        var clientKeepAlive: Bool
        var hasBody: Bool
        /// The whole request (its body included) has been read.
        var requestComplete = false
        /// Set once the response head has been written.
        var framing: HTTPProxyRules.Framing?
        var keepAliveAfter = false
        /// Body pieces waiting while the client does not read.
        var queued: [[UInt8]] = []
        var responseEnded = false
        /// Body bytes written but not yet reported to the engine, and how many make a report.
        var unreported = 0
        var reportEvery: Int
        /// Request body bytes handed to the engine and not yet sent upstream.
        var bodyOutstanding = 0
    }

    private let fd: Int32
    private var registration: EventLoop.Registration?
    private unowned let daemon: Daemon
    let kind: Listener.Kind
    let peer: PeerCredentials?
    let client: ClientID
    var registered = false
    var countedAs: UInt32? { kind.isUnix ? peer?.uid : Daemon.tcpPeers }
    let sink = HTTPFrontSink()
    private let parser: HTTPRequestParser?
    private var scanner: HTTPHeadScanner
    /// How far the input has been scanned for the current head, and whether its end was found.
    private var scanPos = 0
    private var headDone = false
    private var input: [UInt8] = []
    private var inputStart = 0
    private var output: [UInt8] = []
    private var outputStart = 0
    private var backpressured = false
    private var queuedForFlush = false
    private(set) var isClosed = false
    /// A refusal or a response without keep-alive went out: close once it is written.
    private var closeWhenFlushed = false
    private var exchange: Exchange?
    /// The parser is paused after a complete request until its response has gone out.
    private var awaitingResponse = false
    /// Why every request on this connection is refused (access, too many connections).
    private var refusal: HTTPRefusal?
    private var timer: EventLoop.TimerID?
    private var timerAt: UInt64 = .max
    private var lastActivity: UInt64 = 0
    /// When the client last took output (or output began to wait on it).
    private var lastWrite: UInt64 = 0
    /// When the first byte of the current request head arrived (nil between requests).
    private var headBegan: UInt64?
    /// Whether a request head has been handled on this connection (before it, the header
    /// timeout runs from connecting).
    private var servedOne = false
    private var lingerTimer: EventLoop.TimerID?
    private var processScheduled = false

    /// Unparsed input past which reading pauses (pipelined requests waiting their turn).
    static let maxPendingInput = 64 * 1024
    /// The head a request may have: the header limits, 4 bytes per header for ": " and
    /// line ends, and 8 KiB for the request line.
    static func headLimit(_ limits: HeaderLimits) -> Int { limits.bytes + 4 * limits.count + 8192 }

    init(fd: Int32, daemon: Daemon, kind: Listener.Kind, peer: PeerCredentials?, client: ClientID) {
        self.fd = fd
        self.daemon = daemon
        self.kind = kind
        self.peer = peer
        self.client = client
        parser = HTTPRequestParser()
        scanner = HTTPHeadScanner(limit: Self.headLimit(daemon.config.pool.headerLimits))
    }

    /// Starts reading. `refusal` (too many connections of one user) and an access check
    /// on the Unix socket make every request on it answered with an error, then closed.
    func start(refusal tooMany: ReckerError?) {
        sink.connection = self
        let loop = daemon.loop
        do {
            registration = try loop.register(fd, .readable) { [unowned self] events in ready(events) }
        } catch {
            daemon.logger.error("cannot watch an HTTP client connection: \(error)")
            closeNow()
            return
        }
        if kind == .httpTCP || kind == .metrics {
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        }
        if let tooMany {
            refusal = HTTPRefusal(503, tooMany.code.name, tooMany.message)
        } else if kind == .httpUnix {
            let config = daemon.config
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
        if parser == nil { refusal = HTTPRefusal(503, ReckerError.Code.localResources.name, "out of memory") }
        lastActivity = loop.now
        rearm()
    }

    // MARK: - reading and parsing

    private func ready(_ events: EventLoop.Events) {
        guard !isClosed else { return }
        if lingerTimer != nil { return discardUntilEOF() }
        if events.contains(.writable) { flush() }
        if !isClosed && wantsRead && !events.isDisjoint(with: [.readable, .hangup, .readHangup, .error]) { readInput() }
    }

    private var wantsRead: Bool {
        !backpressured && !closeWhenFlushed && input.count - inputStart < Self.maxPendingInput
            && (exchange?.bodyOutstanding ?? 0) < daemon.config.streamWindow
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
            // The client is gone (or shut its side): what it had in flight is cancelled.
            closeNow()
            return
        }
        lastActivity = daemon.loop.now
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

    /// Scans and parses what has been read, request by request, until the input runs out,
    /// a complete request waits for its response, or the connection is refused.
    private func process() {
        guard let parser else { return }
        while !isClosed && !closeWhenFlushed && !awaitingResponse && inputStart < input.count {
            var end = input.count
            if !headDone {
                let begun = scanner.hasBegun
                var i = max(scanPos, inputStart)
                scanning: while i < input.count {
                    switch scanner.scan(input[i]) {
                    case .more:
                        i += 1
                    case .endOfHead:
                        i += 1
                        headDone = true
                        break scanning
                    case .bareLineEnd:
                        return refuse(HTTPRefusal(400, "BAD_REQUEST", "a line of the request head ends in a bare LF or CR, not CRLF (RFC 9112 §2.2)"))
                    case .obsFold:
                        return refuse(HTTPRefusal(400, "BAD_REQUEST", "a header line is folded (obs-fold, RFC 9112 §5.2)"))
                    case .tooLong:
                        let limits = daemon.config.pool.headerLimits
                        return refuse(HTTPRefusal(431, ReckerError.Code.headersTooLarge.name,
                                                  "the request head is longer than \(Self.headLimit(limits)) bytes (limits.maxHeaderBytes, limits.maxHeaders)"))
                    }
                }
                scanPos = i
                end = i
                if !begun && scanner.hasBegun {
                    headBegan = daemon.loop.now
                    rearm()
                }
            }
            let fed = end - inputStart
            let taken = input.withUnsafeBytes { parser.execute(UnsafeRawBufferPointer(rebasing: $0[inputStart ..< end])) }
            inputStart += taken
            if let failure = parser.failure {
                return refuse(HTTPRefusal(400, "BAD_REQUEST", "malformed request: \(failure.description) (\(failure.name))"))
            }
            if parser.headComplete {
                handleHead(parser.request)
                if isClosed || closeWhenFlushed { return }
                parser.continueAfterHead()
            }
            forwardBody(parser.takeBody())
            if parser.messageComplete {
                requestComplete()
                continue
            }
            if !parser.isPaused && taken == fed {
                if headDone && exchange == nil && !isClosed {
                    // The scanner saw the head end but the parser did not: never feed it more.
                    return refuse(HTTPRefusal(400, "BAD_REQUEST", "the request head could not be parsed"))
                }
                if end == input.count { break }
            }
        }
        compactInput()
    }

    private func compactInput() {
        if inputStart == input.count {
            scanPos = max(0, scanPos - inputStart)
            input.removeAll(keepingCapacity: input.capacity <= 128 * 1024)
            inputStart = 0
        } else if inputStart > 64 * 1024 {
            input.removeFirst(inputStart)
            scanPos = max(0, scanPos - inputStart)
            inputStart = 0
        }
    }

    private func handleHead(_ r: HTTPParsedRequest) {
        headBegan = nil
        servedOne = true
        if let refusal { return refuse(refusal) }
        if kind == .metrics { return metricsHead(r) }
        let config = daemon.config
        guard config.http.enabled else {
            return refuse(HTTPRefusal(503, "HTTP_FRONT_OFF", "the HTTP front is off in reckerd's config (http.enabled)"))
        }
        guard !daemon.isDraining else {
            return refuse(HTTPRefusal(503, ReckerError.Code.shuttingDown.name, "reckerd is stopping and takes no new requests"))
        }
        let up: HTTPProxyRules.Upstream
        do { up = try HTTPProxyRules.upstream(r, originate: config.originate, limits: config.pool.headerLimits) } catch {
            return refuse(error)
        }
        let engine = daemon.engine
        let id = engine.makeTransferID()
        let buffer = config.pool.maxResponseBuffer
        exchange = Exchange(transfer: id, method: r.method, url: up.head.url, domain: up.target.domain, clientHTTP10: r.isHTTP10,
                            clientKeepAlive: r.keepAlive && !r.upgrade, hasBody: up.hasBody, reportEvery: max(1, buffer / 4))
        rearm()
        engine.start(id, EngineRequest(head: up.head, target: up.target, arrival: daemon.loop.now, hasBody: up.hasBody,
                                       responseBuffer: buffer, client: client), sink: sink)
        // The engine may have refused it from within the call (policy, queue full).
        if up.expectContinue && exchange?.transfer == id && exchange?.framing == nil {
            output += "HTTP/1.1 100 Continue\r\n\r\n".utf8
            wrote()
        }
    }

    /// `GET /metrics`: the stats in Prometheus text, rendered off the loop.
    private func metricsHead(_ r: HTTPParsedRequest) {
        guard r.method == "GET" || r.method == "HEAD" else {
            return refuse(HTTPRefusal(405, ReckerError.Code.invalidMethod.name, "only GET and HEAD are served here", headers: ["Allow: GET, HEAD"]))
        }
        guard !r.chunked && (r.contentLength ?? 0) == 0 else {
            return refuse(HTTPRefusal(400, "BAD_REQUEST", "a metrics request has no body"))
        }
        let path = r.target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        guard path == "/metrics" else {
            return refuse(HTTPRefusal(404, "NOT_FOUND", "only /metrics is served here"))
        }
        exchange = Exchange(transfer: nil, method: r.method, url: r.target, domain: "", clientHTTP10: r.isHTTP10,
                            clientKeepAlive: r.keepAlive, hasBody: false, reportEvery: 1)
        daemon.statsReport(.prometheus) { [weak self] document in
            guard let self, !isClosed, let e = exchange else { return }
            let keepAlive = e.clientKeepAlive && !daemon.isDraining
            output += HTTPProxyRules.documentResponse(status: 200, contentType: "text/plain; version=0.0.4; charset=utf-8", document,
                                                      method: e.method, close: !keepAlive)
            exchange?.framing = .length(UInt64(document.count))
            exchange?.responseEnded = true
            wrote()
            exchangeDone(keepAlive: keepAlive && e.requestComplete)
        }
    }

    /// Body pieces go to the engine, which may answer (or fail) from within the call: the
    /// exchange is checked before each.
    private func forwardBody(_ pieces: [[UInt8]]) {
        guard !pieces.isEmpty, let t = exchange?.transfer else { return }
        for piece in pieces {
            guard exchange?.transfer == t else { return }
            exchange!.bodyOutstanding += piece.count
            daemon.engine.sendBody(t, piece, end: false)
        }
    }

    /// The request is read whole: its body's end goes upstream, and the parser waits for
    /// the response before it reads the next request.
    private func requestComplete() {
        scanner.reset()
        headDone = false
        scanPos = inputStart
        guard exchange != nil else {
            parser?.continueAfterMessage()
            return
        }
        awaitingResponse = true
        exchange!.requestComplete = true
        rearm()
        if exchange!.hasBody, let t = exchange!.transfer { daemon.engine.sendBody(t, [], end: true) }
    }

    /// The response has gone out whole: the next request may be read, or the connection
    /// closes once the output is written.
    private func exchangeDone(keepAlive: Bool) {
        exchange = nil
        guard keepAlive else {
            closeWhenFlushed = true
            outputWaits()
            updateInterest()
            return
        }
        lastActivity = daemon.loop.now
        if awaitingResponse {
            awaitingResponse = false
            parser?.continueAfterMessage()
            scheduleProcess()
        }
        rearm()
    }

    // MARK: - engine events (loop thread)

    func engineHead(_ id: TransferID, _ head: ResponseHead) {
        guard let e = exchange, e.transfer == id, e.framing == nil else { return }
        let config = daemon.config
        let start = HTTPProxyRules.responseStart(head, method: e.method, clientHTTP10: e.clientHTTP10,
                                                 clientKeepAlive: e.clientKeepAlive && !daemon.isDraining, annotate: config.http.annotate)
        exchange!.framing = start.framing
        exchange!.keepAliveAfter = start.keepAlive
        daemon.noteResponse(uid: peer?.uid ?? UInt32.max, reused: head.reused)
        if daemon.logger.logLevel <= .debug {
            daemon.logger.debug("http \(e.method) \(Redact.url(e.url)) \(head.status) request_id=\(id) domain=\(e.domain) connection_id=\(head.connectionID) reused=\(head.reused)")
        }
        output += start.bytes
        wrote()
    }

    func engineBody(_ id: TransferID, _ chunk: [UInt8]) {
        guard let e = exchange, e.transfer == id, e.framing != nil else { return }
        if backpressured || !e.queued.isEmpty {
            exchange!.queued.append(chunk)
        } else {
            writeBody(chunk)
        }
    }

    func engineEnd(_ id: TransferID, _ end: ResponseEnd) {
        guard let e = exchange, e.transfer == id else { return }
        exchange!.responseEnded = true
        pump()
    }

    func engineFailed(_ id: TransferID, _ error: ReckerError) {
        guard let e = exchange, e.transfer == id else { return }
        if error.code != .cancelled {
            daemon.logger.warning("http \(e.method) \(Redact.url(e.url)) failed: \(error.code.name): \(error.message) request_id=\(id) domain=\(e.domain)")
        }
        exchange!.responseEnded = true
        guard e.framing == nil else {
            // The head went out: only closing before the body's end tells the client.
            exchange = nil
            closeWhenFlushed = true
            outputWaits()
            wrote()
            return
        }
        let keepAlive = e.requestComplete && e.clientKeepAlive && !daemon.isDraining
        output += HTTPProxyRules.errorResponse(HTTPRefusal(error), close: !keepAlive, method: e.method)
        wrote()
        exchangeDone(keepAlive: keepAlive)
    }

    func engineBodySent(_ id: TransferID, bytes: Int) {
        guard exchange?.transfer == id else { return }
        let window = daemon.config.streamWindow
        let before = exchange!.bodyOutstanding
        exchange!.bodyOutstanding = max(0, before - bytes)
        if before >= window && exchange!.bodyOutstanding < window { updateInterest() }
    }

    // MARK: - writing

    /// Writes queued body while the client reads, then the response's end.
    private func pump() {
        while !backpressured, !isClosed, let first = exchange?.queued.first {
            exchange!.queued.removeFirst()
            writeBody(first)
        }
        guard let e = exchange, e.responseEnded, e.queued.isEmpty, let framing = e.framing else { return }
        if framing == .chunked { output += "0\r\n\r\n".utf8 }
        wrote()
        exchangeDone(keepAlive: e.keepAliveAfter && e.requestComplete && framing != .close)
    }

    private func writeBody(_ chunk: [UInt8]) {
        guard let e = exchange, let framing = e.framing else { return }
        switch framing {
        case .none:
            break
        case .chunked:
            guard !chunk.isEmpty else { break }
            output += String(chunk.count, radix: 16).utf8
            output += "\r\n".utf8
            output += chunk
            output += "\r\n".utf8
        case .length, .close:
            output += chunk
        }
        // The engine holds at most `responseBuffer` bytes of a response and reads on as
        // they are reported, a quarter at a time (as the binary front does). The report is
        // the last thing done: the engine may deliver more of the response (or its end)
        // from within the call.
        exchange!.unreported += chunk.count
        wrote()
        guard !e.responseEnded, let t = e.transfer, let n = exchange?.unreported, n >= e.reportEvery else { return }
        exchange!.unreported = 0
        daemon.engine.consumed(t, bytes: n)
    }

    private func wrote() {
        if !queuedForFlush {
            queuedForFlush = true
            daemon.flushAtEndOfPass(self)
        }
        if !backpressured && output.count - outputStart > ClientConnection.highWater {
            backpressured = true
            outputWaits()
            updateInterest()
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
            if n > 0 { lastWrite = daemon.loop.now }
        }
        if outputStart == output.count {
            output.removeAll(keepingCapacity: output.capacity <= 256 * 1024)
            outputStart = 0
            if closeWhenFlushed { return lingerAndClose() }
        } else if outputStart > ClientConnection.lowWater {
            output.removeFirst(outputStart)
            outputStart = 0
        }
        if backpressured && output.count - outputStart < ClientConnection.lowWater {
            backpressured = false
            pump()
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

    // MARK: - refusals, timeouts, closing

    /// Answers with `refusal` and closes once it is written. A response already begun is
    /// cut short instead (closing is then the only way to tell the client).
    private func refuse(_ refusal: HTTPRefusal) {
        guard !isClosed, !closeWhenFlushed else { return }
        daemon.logger.info("refused HTTP request: \(refusal.status) \(refusal.code): \(refusal.message)")
        let began = exchange?.framing != nil
        let method = exchange?.method ?? parser?.request.method ?? "GET"
        cancelExchange()
        if !began { output += HTTPProxyRules.errorResponse(refusal, close: true, method: method) }
        closeWhenFlushed = true
        outputWaits()
        wrote()
        updateInterest()
    }

    /// When the connection's current wait runs out: the client's reading, while output
    /// waits on it (`http.idleTimeout` without progress); the head's (`http.headerTimeout`, from
    /// its first byte, or from connecting for the first request), the request body's
    /// between reads (`limits.bodyTimeout`), or idleness between requests
    /// (`http.idleTimeout`); nil while a response is awaited (the engine's timeouts hold).
    private var deadline: UInt64? {
        let config = daemon.config
        if backpressured || closeWhenFlushed {
            return lastWrite &+ UInt64(config.http.idleTimeoutMs) * 1_000_000
        }
        if let e = exchange {
            return e.requestComplete ? nil : lastActivity &+ UInt64(config.pool.bodyTimeoutMs) * 1_000_000
        }
        if let began = headBegan { return began &+ UInt64(config.http.headerTimeoutMs) * 1_000_000 }
        if !servedOne { return lastActivity &+ UInt64(config.http.headerTimeoutMs) * 1_000_000 }
        return lastActivity &+ UInt64(config.http.idleTimeoutMs) * 1_000_000
    }

    /// Output now waits on the client (past the high mark, or the last bytes before a
    /// close): if it reads nothing for `http.idleTimeout`, the connection is closed.
    private func outputWaits() {
        lastWrite = daemon.loop.now
        rearm()
    }

    /// Makes sure a timer fires by the current deadline. A timer already due sooner is
    /// left alone (it looks again when it fires), so most requests touch no timer at all.
    private func rearm() {
        guard !isClosed, let d = deadline else { return }
        if timer != nil && timerAt <= d { return }
        if let t = timer { daemon.loop.cancel(t) }
        timerAt = d
        timer = daemon.loop.schedule(at: d) { [weak self] in self?.timerFired() }
    }

    private func timerFired() {
        timer = nil
        timerAt = .max
        guard !isClosed, lingerTimer == nil, let d = deadline else { return }
        guard daemon.loop.now >= d else { return rearm() }
        let config = daemon.config
        if backpressured || closeWhenFlushed {
            daemon.logger.info("closing an HTTP client that read nothing for \(config.http.idleTimeoutMs) ms (http.idleTimeout)")
            closeNow()
        } else if let e = exchange {
            if !e.requestComplete {
                refuse(HTTPRefusal(408, ReckerError.Code.timeout.name, "no request body bytes for \(config.pool.bodyTimeoutMs) ms (limits.bodyTimeout)"))
            }
        } else if scanner.hasBegun {
            refuse(HTTPRefusal(408, ReckerError.Code.timeout.name, "the request head was not complete within \(config.http.headerTimeoutMs) ms (http.headerTimeout)"))
        } else {
            closeNow()
        }
    }

    /// After a refusal or a last response: the write side is shut and what the client still
    /// sends is read and dropped until it closes, for up to a second (nginx's lingering
    /// close), so it reads the answer instead of a reset.
    private func lingerAndClose() {
        guard !isClosed, lingerTimer == nil else { return }
        cancelExchange()
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

    /// Drops the exchange, cancelling its transfer if the engine still has it (the engine
    /// may report the cancel at once: the exchange is gone by then, so it is ignored).
    private func cancelExchange() {
        guard let e = exchange else { return }
        exchange = nil
        if let t = e.transfer, !e.responseEnded { daemon.engine.cancel(t) }
    }

    /// Closes the socket at once and cancels the request in flight, if any.
    func closeNow() {
        guard !isClosed else { return }
        isClosed = true
        sink.markGone()
        if let t = timer { daemon.loop.cancel(t) }
        if let t = lingerTimer { daemon.loop.cancel(t) }
        timer = nil
        lingerTimer = nil
        if let registration { daemon.loop.unregister(registration) }
        Glibc.close(fd)
        cancelExchange()
        daemon.clientDisconnected(self)
        sink.connection = nil
    }
}
