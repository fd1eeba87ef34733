import ReckerProtocol

/// The decisions of one HTTP front connection, without its socket or its parser: which
/// request is served and how (`HTTPProxyRules`), what its response looks like on the wire,
/// when the connection stays open for the next request or closes, how the engine is told of
/// the client's progress, and when each wait times out. Parsed requests, engine events and
/// the output's state go in; actions come out for `HTTPFrontConnection` to carry out.
///
/// Requests are served one at a time: after a complete request the parser waits
/// (`acceptsInput` false) until its response has gone out, then `resumeParsing` lets it go
/// on, so pipelined requests are answered in order. In every list of actions the engine
/// calls come last: the engine may deliver events (its answer, a failure) from within a
/// call, and those must find the machine already in its new state.
package struct HTTPSessionStateMachine {
    package enum Action: Equatable {
        /// Bytes for the client.
        case write([UInt8])
        /// Something for the engine to do with a request.
        case engine(EngineCommand)
        /// Render the Prometheus document, then call `statsReady`.
        case stats
        /// A response head went out (for the per-user counts).
        case responded(reused: Bool)
        case log(LogLevel, String)
        /// The parser may go on to the next request.
        case resumeParsing
        /// A deadline may have come sooner: the timer is set again.
        case rearm
        /// Close once the output is written (a lingering close).
        case closeWhenWritten
        case closeNow

        package static func == (a: Action, b: Action) -> Bool {
            switch (a, b) {
            case (.write(let x), .write(let y)): x == y
            case (.engine(let x), .engine(let y)): x == y
            case (.responded(let x), .responded(let y)): x == y
            case (.log(let l, let s), .log(let m, let t)): l == m && s == t
            case (.stats, .stats), (.resumeParsing, .resumeParsing), (.rearm, .rearm), (.closeWhenWritten, .closeWhenWritten),
                 (.closeNow, .closeNow): true
            default: false
            }
        }
    }

    /// What the connection serves.
    package enum Role { case proxy, metrics }

    /// The request being served and its response's progress.
    package struct Exchange {
        package var transfer: TransferID?
        package var method: String
        package var url: String
        package var domain: String
        package var clientHTTP10: Bool
        package var clientKeepAlive: Bool
        package var hasBody: Bool
        /// The whole request (its body included) has been read.
        package var requestComplete = false
        /// Set once the response head has been written.
        package var framing: HTTPProxyRules.Framing?
        package var keepAliveAfter = false
        /// Body pieces waiting while the client does not read.
        package var queued: [[UInt8]] = []
        package var responseEnded = false
        /// Body bytes written but not yet reported to the engine, and how many make a report.
        package var unreported = 0
        package var reportEvery: Int
        /// Request body bytes handed to the engine and not yet sent upstream.
        package var bodyOutstanding = 0
        /// A chunked request held back until its body is whole or past `holdLimit`: a request
        /// refused partway through its framing then never reached the upstream (as nginx's
        /// request buffering), and one that ends in time goes with a Content-Length.
        package var held: EngineRequest?
        package var heldBody: [UInt8] = []
        package var holdLimit = 0
    }

    /// Where the connection is in its life.
    package enum Phase: Equatable {
        /// Reading requests: between two, or a request's head or body (`exchange` says which).
        case reading
        /// A complete request waits for its response; the parser is paused meanwhile.
        case awaitingResponse
        /// A refusal or a last response went out: the connection closes once it is written,
        /// and reads nothing more. It ends here.
        case closing
    }

    package let role: Role
    package private(set) var exchange: Exchange?
    package private(set) var phase = Phase.reading
    /// False while the client's unread output is past the high mark.
    private var writable = true
    /// Why every request on this connection is refused (access, too many connections).
    private let refusal: HTTPRefusal?
    private var servedOne = false
    private var headBegan: UInt64?
    private var lastActivity: UInt64
    private var lastWrite: UInt64 = 0

    package static let prometheusType = "text/plain; version=0.0.4; charset=utf-8"

    package init(role: Role, refusal: HTTPRefusal?, now: UInt64) {
        self.role = role
        self.refusal = refusal
        lastActivity = now
    }

    /// Whether the parser may be fed: no request waits for its response, and no close is due.
    package var acceptsInput: Bool { phase == .reading }

    /// Whether the connection reads from its client now: not once closing, and not while
    /// the request body in the engine is at `window` (reading resumes with `bodySent`).
    package func readsInput(window: Int) -> Bool {
        phase != .closing && (exchange?.bodyOutstanding ?? 0) < window
    }

    // MARK: - the client

    /// Bytes arrived from the client.
    package mutating func bytesRead(now: UInt64) { lastActivity = now }

    /// The first byte of a request head arrived: the header timeout runs from now.
    package mutating func headBegins(now: UInt64) -> [Action] {
        headBegan = now
        return [.rearm]
    }

    /// A request head, parsed; `transfer` is the id its engine request will have.
    package mutating func head(_ r: HTTPParsedRequest, transfer id: TransferID, config: SessionConfig, draining: Bool, now: UInt64,
                       client: ClientID, user: ClientID? = nil) -> [Action] {
        headBegan = nil
        servedOne = true
        if let refusal { return refuse(refusal, method: r.method, now: now) }
        if role == .metrics { return metricsHead(r, now: now) }
        guard config.httpEnabled else {
            return refuse(HTTPRefusal(503, "HTTP_FRONT_OFF", "the HTTP front is off in reckerd's config (http.enabled)"), method: r.method, now: now)
        }
        guard !draining else {
            return refuse(HTTPRefusal(503, ReckerError.Code.shuttingDown.name, "reckerd is stopping and takes no new requests"), method: r.method, now: now)
        }
        let up: HTTPProxyRules.Upstream
        do { up = try HTTPProxyRules.upstream(r, originate: config.originate, limits: config.headerLimits) } catch {
            return refuse(error, method: r.method, now: now)
        }
        let buffer = config.responseBuffer
        exchange = Exchange(transfer: id, method: r.method, url: up.head.url, domain: up.target.domain, clientHTTP10: r.isHTTP10,
                            clientKeepAlive: r.keepAlive && !r.upgrade, hasBody: up.hasBody, reportEvery: SessionConfig.reportEvery(buffer: buffer))
        var actions: [Action] = [.rearm]
        if up.expectContinue { actions.append(.write(Array("HTTP/1.1 100 Continue\r\n\r\n".utf8))) }
        let request = EngineRequest(head: up.head, target: up.target, arrival: now, hasBody: up.hasBody,
                                    responseBuffer: buffer, client: client, user: user)
        if up.hasBody && up.head.bodyLength == nil {
            exchange!.held = request
            exchange!.holdLimit = min(buffer, config.streamWindow)
            return actions
        }
        actions.append(.engine(.start(id, request)))
        return actions
    }

    /// `GET /metrics`: the stats in Prometheus text.
    private mutating func metricsHead(_ r: HTTPParsedRequest, now: UInt64) -> [Action] {
        guard r.method == "GET" || r.method == "HEAD" else {
            return refuse(HTTPRefusal(405, ReckerError.Code.invalidMethod.name, "only GET and HEAD are served here", headers: ["Allow: GET, HEAD"]),
                          method: r.method, now: now)
        }
        guard !r.chunked && (r.contentLength ?? 0) == 0 else {
            return refuse(HTTPRefusal(400, "BAD_REQUEST", "a metrics request has no body"), method: r.method, now: now)
        }
        let path = r.target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        guard path == "/metrics" else {
            return refuse(HTTPRefusal(404, "NOT_FOUND", "only /metrics is served here"), method: r.method, now: now)
        }
        exchange = Exchange(transfer: nil, method: r.method, url: r.target, domain: "", clientHTTP10: r.isHTTP10,
                            clientKeepAlive: r.keepAlive, hasBody: false, reportEvery: 1)
        return [.stats]
    }

    /// The Prometheus document is ready.
    package mutating func statsReady(_ document: [UInt8], draining: Bool, now: UInt64) -> [Action] {
        guard let e = exchange, e.transfer == nil, e.framing == nil else { return [] }
        let keepAlive = e.clientKeepAlive && !draining
        exchange!.framing = .length(UInt64(document.count))
        exchange!.responseEnded = true
        return [.write(HTTPProxyRules.documentResponse(status: 200, contentType: Self.prometheusType, document, method: e.method, close: !keepAlive))]
            + exchangeDone(keepAlive: keepAlive && e.requestComplete, now: now)
    }

    /// Body pieces of the request, de-chunked: one piece for the engine.
    package mutating func body(_ pieces: [[UInt8]]) -> [Action] {
        guard !pieces.isEmpty, let t = exchange?.transfer, !exchange!.responseEnded else { return [] }
        let data = pieces.count == 1 ? pieces[0] : Array(pieces.joined())
        guard !data.isEmpty else { return [] }
        if let request = exchange!.held {
            exchange!.heldBody += data
            guard exchange!.heldBody.count > exchange!.holdLimit else { return [] }
            // Past the limit: it goes as it is, chunked, with what was held first.
            let first = exchange!.heldBody
            exchange!.held = nil
            exchange!.heldBody = []
            exchange!.bodyOutstanding += first.count
            return [.engine(.start(t, request)), .engine(.sendBody(t, first, end: false))]
        }
        exchange!.bodyOutstanding += data.count
        return [.engine(.sendBody(t, data, end: false))]
    }

    /// The request is read whole: its body's end goes upstream, and the parser waits for
    /// the response before it reads the next request.
    package mutating func requestComplete(now: UInt64) -> [Action] {
        guard exchange != nil else { return [.resumeParsing] }
        if phase == .reading { phase = .awaitingResponse }
        exchange!.requestComplete = true
        var actions: [Action] = [.rearm]
        if var request = exchange!.held, let t = exchange!.transfer {
            // The whole body arrived within the limit: it goes at once, with its length.
            let body = exchange!.heldBody
            request.head.bodyLength = UInt64(body.count)
            exchange!.held = nil
            exchange!.heldBody = []
            exchange!.bodyOutstanding += body.count
            actions.append(.engine(.start(t, request)))
            actions.append(.engine(.sendBody(t, body, end: true)))
            return actions
        }
        if exchange!.hasBody, let t = exchange!.transfer { actions.append(.engine(.sendBody(t, [], end: true))) }
        return actions
    }

    /// Answers with `refusal` and closes once it is written. A response already begun is
    /// cut short instead (closing is then the only way to tell the client).
    package mutating func refuse(_ refusal: HTTPRefusal, method: String, now: UInt64) -> [Action] {
        guard phase != .closing else { return [] }
        var actions: [Action] = [.log(.info, "refused HTTP request: \(refusal.status) \(refusal.code): \(refusal.message)")]
        let began = exchange?.framing != nil
        let method = exchange?.method ?? method
        let inFlight = exchange.flatMap { $0.responseEnded ? nil : $0.transfer }
        exchange = nil
        if !began { actions.append(.write(HTTPProxyRules.errorResponse(refusal, close: true, method: method))) }
        actions += close(now: now)
        if let t = inFlight { actions.append(.engine(.cancel(t))) }
        return actions
    }

    /// The client shut its sending side (end of input). A request it sent whole is still
    /// answered, then the connection closes, as nginx does: true. Otherwise false, and the
    /// caller closes now (cancelling what is in flight).
    package mutating func inputEnded() -> Bool {
        guard exchange?.requestComplete == true else { return false }
        exchange!.clientKeepAlive = false
        exchange!.keepAliveAfter = false
        return true
    }

    /// The connection closes once its output is written; the client has
    /// `http.idleTimeout` from now to take it.
    private mutating func close(now: UInt64) -> [Action] {
        phase = .closing
        lastWrite = now
        return [.closeWhenWritten, .rearm]
    }

    /// The response has gone out whole: the next request may be read, or the connection
    /// closes once the output is written.
    private mutating func exchangeDone(keepAlive: Bool, now: UInt64) -> [Action] {
        exchange = nil
        guard keepAlive else { return close(now: now) }
        lastActivity = now
        var actions: [Action] = [.rearm]
        if phase == .awaitingResponse {
            phase = .reading
            actions.append(.resumeParsing)
        }
        return actions
    }

    // MARK: - engine events

    package mutating func responseHead(_ id: TransferID, _ head: ResponseHead, annotate: Bool, draining: Bool, debug: Bool,
                               now: UInt64 = 0) -> [Action] {
        guard let e = exchange, e.transfer == id, e.framing == nil else { return [] }
        guard head.status >= 200 else {
            // A 1xx as the final answer (101 Switching Protocols without an Upgrade asked
            // for): passed on, the client would take what follows for another protocol.
            let error = ReckerError(.upstreamProtocol, "the upstream's final answer was \(head.status), an interim status; reckerd asked for no protocol switch",
                                    mayHaveReachedUpstream: true, retrySafe: false)
            return failed(id, error, draining: draining, now: now) + [.engine(.cancel(id))]
        }
        let start = HTTPProxyRules.responseStart(head, method: e.method, clientHTTP10: e.clientHTTP10,
                                                 clientKeepAlive: e.clientKeepAlive && !draining, annotate: annotate)
        exchange!.framing = start.framing
        exchange!.keepAliveAfter = start.keepAlive
        var actions: [Action] = [.responded(reused: head.reused)]
        if debug {
            actions.append(.log(.debug, "http \(e.method) \(Redact.url(e.url)) \(head.status) request_id=\(id) domain=\(e.domain) connection_id=\(head.connectionID) reused=\(head.reused)"))
        }
        actions.append(.write(start.bytes))
        return actions
    }

    package mutating func responseBody(_ id: TransferID, _ chunk: [UInt8], now: UInt64) -> [Action] {
        guard let e = exchange, e.transfer == id, e.framing != nil else { return [] }
        exchange!.queued.append(chunk)
        return e.queued.isEmpty && writable ? pump(now: now) : []
    }

    package mutating func responseEnd(_ id: TransferID, now: UInt64) -> [Action] {
        guard let e = exchange, e.transfer == id else { return [] }
        exchange!.responseEnded = true
        return pump(now: now)
    }

    package mutating func failed(_ id: TransferID, _ error: ReckerError, draining: Bool, now: UInt64) -> [Action] {
        guard let e = exchange, e.transfer == id else { return [] }
        var actions: [Action] = []
        if error.code != .cancelled {
            actions.append(.log(.warning, "http \(e.method) \(Redact.url(e.url)) failed: \(error.code.name): \(error.message) request_id=\(id) domain=\(e.domain)"))
        }
        guard e.framing == nil else {
            // The head went out: only closing before the body's end tells the client.
            exchange = nil
            return actions + close(now: now)
        }
        let keepAlive = e.requestComplete && e.clientKeepAlive && !draining
        actions.append(.write(HTTPProxyRules.errorResponse(HTTPRefusal(error), close: !keepAlive, method: e.method)))
        return actions + exchangeDone(keepAlive: keepAlive, now: now)
    }

    /// `bytes` of request body went upstream; true when reading may resume (the body in
    /// the engine fell below `window`).
    package mutating func bodySent(_ id: TransferID, bytes: Int, window: Int) -> Bool {
        guard exchange?.transfer == id else { return false }
        let before = exchange!.bodyOutstanding
        exchange!.bodyOutstanding = max(0, before - bytes)
        return before >= window && exchange!.bodyOutstanding < window
    }

    // MARK: - the output

    /// The client's unread output passed the high mark (false) or fell below the low one.
    package mutating func writabilityChanged(_ writable: Bool, now: UInt64) -> [Action] {
        self.writable = writable
        lastWrite = now
        return writable ? pump(now: now) : [.rearm]
    }

    /// The client took output.
    package mutating func wrote(now: UInt64) { lastWrite = now }

    /// Writes the queued body while the client reads, then the response's end. The
    /// engine hears of the progress last, a quarter of the response buffer at a time (as
    /// the binary front reports it).
    private mutating func pump(now: UInt64) -> [Action] {
        guard writable, var e = exchange, let framing = e.framing else { return [] }
        var actions: [Action] = []
        for chunk in e.queued where !chunk.isEmpty {
            switch framing {
            case .none:
                break
            case .chunked:
                actions.append(.write(Array(String(chunk.count, radix: 16).utf8) + [0x0D, 0x0A] + chunk + [0x0D, 0x0A]))
            case .length, .close:
                actions.append(.write(chunk))
            }
            e.unreported += chunk.count
        }
        e.queued = []
        if e.responseEnded {
            if framing == .chunked { actions.append(.write(Array("0\r\n\r\n".utf8))) }
            exchange = e
            return actions + exchangeDone(keepAlive: e.keepAliveAfter && e.requestComplete && framing != .close, now: now)
        }
        var report: Int?
        if e.unreported >= e.reportEvery {
            report = e.unreported
            e.unreported = 0
        }
        exchange = e
        if let n = report, let t = e.transfer { actions.append(.engine(.consumed(t, n))) }
        return actions
    }

    // MARK: - time

    /// When the connection's current wait runs out: the client's reading, while output
    /// waits on it (`http.idleTimeout` without progress); the head's (`http.headerTimeout`,
    /// from its first byte, or from connecting for the first request); the request body's
    /// between reads (`limits.bodyTimeout`); idleness between requests (`http.idleTimeout`).
    /// nil while a response is awaited (the engine's timeouts hold).
    package func deadline(_ config: SessionConfig) -> UInt64? {
        if !writable || phase == .closing { return lastWrite &+ UInt64(config.idleTimeoutMs) * 1_000_000 }
        if let e = exchange {
            return e.requestComplete ? nil : lastActivity &+ UInt64(config.bodyTimeoutMs) * 1_000_000
        }
        if let began = headBegan { return began &+ UInt64(config.headerTimeoutMs) * 1_000_000 }
        if !servedOne { return lastActivity &+ UInt64(config.headerTimeoutMs) * 1_000_000 }
        return lastActivity &+ UInt64(config.idleTimeoutMs) * 1_000_000
    }

    /// The deadline passed (the connection checked `now >= deadline`).
    package mutating func timedOut(_ config: SessionConfig, headStarted: Bool, now: UInt64) -> [Action] {
        if !writable || phase == .closing {
            return [.log(.info, "closing an HTTP client that read nothing for \(config.idleTimeoutMs) ms (http.idleTimeout)"), .closeNow]
        }
        if let e = exchange {
            guard !e.requestComplete else { return [] }
            return refuse(HTTPRefusal(408, ReckerError.Code.timeout.name, "no request body bytes for \(config.bodyTimeoutMs) ms (limits.bodyTimeout)"),
                          method: e.method, now: now)
        }
        if headStarted {
            return refuse(HTTPRefusal(408, ReckerError.Code.timeout.name, "the request head was not complete within \(config.headerTimeoutMs) ms (http.headerTimeout)"),
                          method: "GET", now: now)
        }
        return [.closeNow]
    }

    /// The socket is closed: the request in flight, if any, is cancelled.
    package mutating func closed() -> [Action] {
        phase = .closing
        let inFlight = exchange.flatMap { $0.responseEnded ? nil : $0.transfer }
        exchange = nil
        return inFlight.map { [.engine(.cancel($0))] } ?? []
    }
}
