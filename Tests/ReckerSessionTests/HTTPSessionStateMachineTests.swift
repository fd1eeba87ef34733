import ReckerProtocol
import ReckerSession
import XCTest

/// The HTTP front's session without a socket: parsed requests, engine events and the
/// output's state in, actions out.
final class HTTPSessionStateMachineTests: XCTestCase {
    var config: SessionConfig = {
        var c = SessionConfig()
        c.httpEnabled = true
        c.responseBuffer = 64
        return c
    }()

    func request(_ method: String = "GET", _ target: String = "/x", headers: [(String, String)] = [("Host", "a.example")],
                 chunked: Bool = false, length: UInt64? = nil) -> HTTPParsedRequest {
        var r = HTTPParsedRequest()
        r.method = method
        r.target = target
        r.headers = headers.map { (name: $0.0, value: $0.1) }
        r.chunked = chunked
        r.contentLength = length
        return r
    }

    func text(_ actions: [HTTPSessionStateMachine.Action]) -> String {
        actions.map { if case .write(let b) = $0 { String(decoding: b, as: UTF8.self) } else { "" } }.joined()
    }

    func head(_ status: UInt16 = 200, _ headers: [(String, String)] = [("Content-Length", "5")]) -> ResponseHead {
        ResponseHead(status: status, httpVersion: 11, connectionID: 3, reused: false, headers: headers.map { (name: $0.0, value: $0.1) })
    }

    /// An interim status as the final answer (101 with no Upgrade asked for) is not passed
    /// on: the client gets a 502 and the transfer is cancelled.
    func testAnInterimStatusAsTheFinalAnswerIsA502() {
        var m = HTTPSessionStateMachine(role: .proxy, refusal: nil, now: 0)
        _ = m.head(request(), transfer: 7, config: config, draining: false, now: 1, client: 1)
        _ = m.requestComplete(now: 2)
        let actions = m.responseHead(7, head(101, [("Upgrade", "evil")]), annotate: false, draining: false, debug: false, now: 3)
        XCTAssertTrue(text(actions).hasPrefix("HTTP/1.1 502 "), text(actions))
        XCTAssertFalse(text(actions).contains("evil"))
        XCTAssertEqual(actions.last, .engine(.cancel(7)), "the engine call comes last")
    }

    /// Reading stops while the request body in the engine is at the window and resumes as
    /// it goes upstream; a refusal makes the connection closing for good: nothing is read,
    /// refused or started after it.
    func testReadingFollowsTheBodyWindowAndClosingIsFinal() {
        var m = HTTPSessionStateMachine(role: .proxy, refusal: nil, now: 0)
        _ = m.head(request("PUT", length: 100), transfer: 7, config: config, draining: false, now: 1, client: 1)
        XCTAssertTrue(m.readsInput(window: 64))
        _ = m.body([Array(repeating: 1, count: 64)])
        XCTAssertFalse(m.readsInput(window: 64), "64 bytes in the engine: at the window")
        XCTAssertFalse(m.bodySent(8, bytes: 64, window: 64), "another transfer's progress is not this one's")
        XCTAssertTrue(m.bodySent(7, bytes: 1, window: 64), "63 left: below the window again, reading resumes")
        XCTAssertFalse(m.bodySent(7, bytes: 1, window: 64), "already below: nothing more to resume")
        XCTAssertTrue(m.readsInput(window: 64))
        XCTAssertEqual(m.phase, .reading)
        let refused = m.refuse(HTTPRefusal(400, "BAD_REQUEST", "no"), method: "PUT", now: 5)
        XCTAssertTrue(refused.contains(.closeWhenWritten) && refused.contains(.engine(.cancel(7))), "\(refused)")
        XCTAssertEqual(m.phase, .closing)
        XCTAssertFalse(m.acceptsInput)
        XCTAssertFalse(m.readsInput(window: 64))
        XCTAssertEqual(m.refuse(HTTPRefusal(400, "BAD_REQUEST", "again"), method: "GET", now: 6), [], "refused once")
        XCTAssertEqual(m.requestComplete(now: 7), [.resumeParsing], "no exchange left to complete")
        XCTAssertEqual(m.phase, .closing, "closing is final")
    }

    /// GET, its response with a length, the next request: the parser waits between.
    func testAKeptAliveRequestAndItsResponse() {
        var m = HTTPSessionStateMachine(role: .proxy, refusal: nil, now: 0)
        let started = m.head(request(), transfer: 7, config: config, draining: false, now: 1, client: 1)
        XCTAssertEqual(started.first, .rearm)
        guard case .engine(.start(7, let req)) = started.last else { return XCTFail("\(started)") }
        XCTAssertEqual(req.head.url, "http://a.example/x")
        XCTAssertEqual(m.requestComplete(now: 2), [.rearm], "no body, so no body end for the engine")
        XCTAssertFalse(m.acceptsInput, "the next request waits for this response")
        XCTAssertNil(m.deadline(config), "the engine's timeouts hold while the response is awaited")

        let h = m.responseHead(7, head(), annotate: false, draining: false, debug: false)
        XCTAssertEqual(h.first, .responded(reused: false))
        XCTAssertTrue(text(h).hasPrefix("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"))
        XCTAssertEqual(text(m.responseBody(7, Array("hello".utf8), now: 3)), "hello")
        XCTAssertEqual(m.responseEnd(7, now: 4), [.rearm, .resumeParsing])
        XCTAssertTrue(m.acceptsInput)
        XCTAssertNil(m.exchange)
        XCTAssertEqual(m.deadline(config), 4 + UInt64(config.idleTimeoutMs) * 1_000_000, "idle from the response's end")
    }

    /// A chunked response to a client that stops reading: nothing is written while it
    /// does not read; then the queue goes out framed, the engine hears of the progress
    /// last, and the final chunk ends it.
    func testAChunkedResponseWaitsForTheClientAndReportsProgressLast() {
        var m = HTTPSessionStateMachine(role: .proxy, refusal: nil, now: 0)
        _ = m.head(request(), transfer: 7, config: config, draining: false, now: 1, client: 1)
        _ = m.requestComplete(now: 1)
        XCTAssertTrue(text(m.responseHead(7, head(200, []), annotate: false, draining: false, debug: false)).contains("Transfer-Encoding: chunked\r\n"))
        XCTAssertEqual(m.writabilityChanged(false, now: 5), [.rearm])
        XCTAssertEqual(m.deadline(config), 5 + UInt64(config.idleTimeoutMs) * 1_000_000, "the client has idleTimeout to read")
        XCTAssertEqual(m.responseBody(7, [UInt8](repeating: 0x61, count: 10), now: 6), [])
        XCTAssertEqual(m.responseBody(7, [UInt8](repeating: 0x62, count: 10), now: 6), [])
        let resumed = m.writabilityChanged(true, now: 7)
        XCTAssertEqual(text(resumed), "a\r\naaaaaaaaaa\r\na\r\nbbbbbbbbbb\r\n")
        XCTAssertEqual(resumed.last, .engine(.consumed(7, 20)), "a quarter of the 64-byte buffer reached: reported, last")
        let end = m.responseEnd(7, now: 8)
        XCTAssertEqual(text(end), "0\r\n\r\n")
        XCTAssertEqual(end.last, .resumeParsing)
    }

    /// An upstream failure before the head: the client gets the status and the code, and
    /// the connection stays open. After the head: the response is cut short by a close.
    func testUpstreamFailuresBeforeAndAfterTheHead() {
        var m = HTTPSessionStateMachine(role: .proxy, refusal: nil, now: 0)
        _ = m.head(request(), transfer: 7, config: config, draining: false, now: 1, client: 1)
        _ = m.requestComplete(now: 1)
        let failed = m.failed(7, ReckerError(.connectFailed, "refused"), draining: false, now: 2)
        XCTAssertTrue(text(failed).hasPrefix("HTTP/1.1 502 Bad Gateway\r\n"), text(failed))
        XCTAssertTrue(text(failed).hasSuffix("reckerd: CONNECT_FAILED: refused\n"))
        XCTAssertEqual(failed.last, .resumeParsing)
        XCTAssertNotEqual(m.phase, .closing)

        _ = m.head(request(), transfer: 8, config: config, draining: false, now: 3, client: 1)
        _ = m.requestComplete(now: 3)
        _ = m.responseHead(8, head(), annotate: false, draining: false, debug: false)
        let cut = m.failed(8, ReckerError(.upstreamRecvFailed, "reset"), draining: false, now: 4)
        XCTAssertEqual(text(cut), "", "nothing more is written into a begun response")
        XCTAssertTrue(cut.contains(.closeWhenWritten))
        XCTAssertEqual(m.phase, .closing)
    }

    /// A body request: the 100 Continue goes out before the engine starts it; the body's
    /// end is the last action; a refusal of a request in flight cancels it, last.
    func testEngineCallsComeLast() {
        var m = HTTPSessionStateMachine(role: .proxy, refusal: nil, now: 0)
        let started = m.head(request("POST", headers: [("Host", "a.example"), ("Expect", "100-continue")], length: 3), transfer: 7,
                             config: config, draining: false, now: 1, client: 1)
        XCTAssertEqual(text(started), "HTTP/1.1 100 Continue\r\n\r\n")
        guard case .engine(.start) = started.last else { return XCTFail("\(started)") }
        XCTAssertEqual(m.body([Array("ab".utf8), Array("c".utf8)]), [.engine(.sendBody(7, Array("abc".utf8), end: false))])
        XCTAssertEqual(m.requestComplete(now: 2).last, .engine(.sendBody(7, [], end: true)))

        var n = HTTPSessionStateMachine(role: .proxy, refusal: nil, now: 0)
        _ = n.head(request("POST", chunked: true), transfer: 9, config: config, draining: false, now: 1, client: 1)
        let refused = n.refuse(HTTPRefusal(400, "BAD_REQUEST", "bad chunk"), method: "POST", now: 2)
        XCTAssertTrue(text(refused).hasPrefix("HTTP/1.1 400 "))
        XCTAssertEqual(refused.last, .engine(.cancel(9)))
        XCTAssertNil(n.exchange, "a cancel reported back finds nothing")
        XCTAssertEqual(n.failed(9, ReckerError(.cancelled, "cancelled"), draining: false, now: 3), [])
    }

    /// A refused peer is answered on every request and closed; the front off, or a daemon
    /// stopping, answers 503.
    func testRefusalsAtTheDoor() {
        var denied = HTTPSessionStateMachine(role: .proxy, refusal: HTTPRefusal(403, "ACCESS_DENIED", "uid 4242"), now: 0)
        let r = denied.head(request(), transfer: 1, config: config, draining: false, now: 1, client: 1)
        XCTAssertTrue(text(r).hasPrefix("HTTP/1.1 403 Forbidden\r\n"))
        XCTAssertTrue(r.contains(.closeWhenWritten))
        XCTAssertFalse(r.contains { if case .engine(.start) = $0 { true } else { false } })

        var off = HTTPSessionStateMachine(role: .proxy, refusal: nil, now: 0)
        var c = config
        c.httpEnabled = false
        XCTAssertTrue(text(off.head(request(), transfer: 1, config: c, draining: false, now: 1, client: 1)).contains("HTTP_FRONT_OFF"))
        var stopping = HTTPSessionStateMachine(role: .proxy, refusal: nil, now: 0)
        XCTAssertTrue(text(stopping.head(request(), transfer: 1, config: config, draining: true, now: 1, client: 1)).contains("SHUTTING_DOWN"))
    }

    /// Deadlines: the first head from connecting, a later head from its first byte, a
    /// stalled body; what each timeout does.
    func testDeadlinesAndTimeouts() {
        let header = UInt64(config.headerTimeoutMs) * 1_000_000
        var m = HTTPSessionStateMachine(role: .proxy, refusal: nil, now: 100)
        XCTAssertEqual(m.deadline(config), 100 + header)
        XCTAssertEqual(m.timedOut(config, headStarted: false, now: 100 + header), [.closeNow], "a silent connection is just closed")

        var n = HTTPSessionStateMachine(role: .proxy, refusal: nil, now: 0)
        XCTAssertEqual(n.headBegins(now: 50), [.rearm])
        XCTAssertEqual(n.deadline(config), 50 + header)
        XCTAssertTrue(text(n.timedOut(config, headStarted: true, now: 50 + header)).hasPrefix("HTTP/1.1 408 "))

        var b = HTTPSessionStateMachine(role: .proxy, refusal: nil, now: 0)
        _ = b.head(request("POST", length: 10), transfer: 4, config: config, draining: false, now: 10, client: 1)
        b.bytesRead(now: 20)
        XCTAssertEqual(b.deadline(config), 20 + UInt64(config.bodyTimeoutMs) * 1_000_000)
        let stalled = b.timedOut(config, headStarted: false, now: 1 << 40)
        XCTAssertTrue(text(stalled).hasPrefix("HTTP/1.1 408 "))
        XCTAssertEqual(stalled.last, .engine(.cancel(4)))
    }

    /// The metrics role: GET /metrics asks for the document and answers it, kept alive.
    func testMetrics() {
        var m = HTTPSessionStateMachine(role: .metrics, refusal: nil, now: 0)
        XCTAssertEqual(m.head(request("GET", "/metrics"), transfer: 1, config: config, draining: false, now: 1, client: 1), [.stats])
        _ = m.requestComplete(now: 1)
        let answer = m.statsReady(Array("# doc\n".utf8), draining: false, now: 2)
        XCTAssertTrue(text(answer).hasPrefix("HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4"))
        XCTAssertTrue(text(answer).hasSuffix("\r\n\r\n# doc\n"))
        XCTAssertEqual(answer.last, .resumeParsing)
        var other = HTTPSessionStateMachine(role: .metrics, refusal: nil, now: 0)
        XCTAssertTrue(text(other.head(request("GET", "/"), transfer: 1, config: config, draining: false, now: 1, client: 1)).hasPrefix("HTTP/1.1 404 "))
    }
}
