import ReckerProtocol
import ReckerSession
import XCTest

/// The HTTP front's rules without a socket: parsed requests in, upstream requests or
/// refusals out; upstream heads in, client heads out.
final class HTTPProxyRulesTests: XCTestCase {
    func request(_ target: String, _ headers: [(String, String)], method: String = "GET", http10: Bool = false,
                 chunked: Bool = false, length: UInt64? = nil) -> HTTPParsedRequest {
        var r = HTTPParsedRequest()
        r.method = method
        r.target = target
        r.minor = http10 ? 0 : 1
        r.headers = headers.map { (name: $0.0, value: $0.1) }
        r.chunked = chunked
        r.contentLength = length
        return r
    }

    func upstream(_ r: HTTPParsedRequest, originate: Set<String> = []) throws(HTTPRefusal) -> HTTPProxyRules.Upstream {
        try HTTPProxyRules.upstream(r, originate: originate, limits: .standard)
    }

    func refusal(_ r: HTTPParsedRequest) -> HTTPRefusal? {
        do { _ = try upstream(r); return nil } catch { return error }
    }

    func testOriginFormTakesTheHostAndAbsoluteFormItsOwnAuthority() throws {
        XCTAssertEqual(try upstream(request("/a?b", [("Host", "api.example:8080")])).head.url, "http://api.example:8080/a?b")
        let absolute = try upstream(request("http://api.example/x", [("Host", "other.example")]))
        XCTAssertEqual(absolute.head.url, "http://api.example/x")
        XCTAssertFalse(absolute.head.headers.contains { $0.name.lowercased() == "host" }, "the engine sets Host from the URL")
        XCTAssertEqual(try upstream(request("http://api.example/x", [], http10: true)).head.url, "http://api.example/x")
        XCTAssertEqual(refusal(request("/x", []))?.status, 400)
        XCTAssertEqual(refusal(request("http://api.example/x", []))?.status, 400, "HTTP/1.1 needs Host")
        XCTAssertEqual(refusal(request("/x", [("Host", "a.example/evil")]))?.status, 400)
        XCTAssertEqual(refusal(request("/x", [("Host", "a.example@b.example")]))?.status, 400)
        XCTAssertEqual(refusal(request("*", [("Host", "a.example")]))?.status, 400)
        XCTAssertEqual(refusal(request("ftp://a.example/", [("Host", "a.example")]))?.status, 400)
    }

    func testOriginateTurnsHTTPIntoHTTPSForItsDomainsOnly() throws {
        let set: Set<String> = ["api.example", "pinned.example:8080"]
        XCTAssertEqual(try upstream(request("http://api.example/x", [("Host", "api.example")]), originate: set).head.url, "https://api.example/x")
        XCTAssertEqual(try upstream(request("/x", [("Host", "pinned.example:8080")]), originate: set).head.url, "https://pinned.example:8080/x")
        XCTAssertEqual(try upstream(request("/x", [("Host", "pinned.example:9090")]), originate: set).head.url, "http://pinned.example:9090/x")
        XCTAssertEqual(try upstream(request("/x", [("Host", "other.example")]), originate: set).head.url, "http://other.example/x")
        XCTAssertTrue(try upstream(request("/x", [("Host", "API.example")]), originate: set).target.https, "host names are case-insensitive")
        XCTAssertEqual(try upstream(request("http://api.example./x", [("Host", "api.example.")]), originate: set).head.url,
                       "https://api.example./x", "the name with its root dot is the same name: no plain http")
        XCTAssertTrue(try upstream(request("/x", [("Host", "pinned.example.:8080")]), originate: set).target.https)
    }

    /// An upstream's header names that are not tokens never reach the client: with a space
    /// before the colon a hop-by-hop name would slip past its filter. Nor do headers that
    /// pretend to be reckerd's own.
    func testUpstreamHeaderNamesThatAreNotTokensAreDropped() {
        let start = HTTPProxyRules.responseStart(head(200, [("Transfer-Encoding ", "chunked"), ("Connection ", "close"), ("", "empty"),
                                                            ("Bad Name", "v"), ("X-Reckerd-Error", "FAKE"), ("X-Good", "1")]),
                                                 method: "GET", clientHTTP10: false, clientKeepAlive: true, annotate: false)
        let out = text(start)
        XCTAssertTrue(out.contains("X-Good: 1\r\n"), out)
        XCTAssertEqual(out.components(separatedBy: "Transfer-Encoding").count, 2, "only the front's own: \(out)")
        for gone in ["Connection ", "empty", "Bad Name", "FAKE"] { XCTAssertFalse(out.contains(gone), "\(gone) in \(out)") }
        XCTAssertTrue(start.keepAlive)
    }

    func testHopByHopHeadersAreDroppedAndViaAdded() throws {
        let up = try upstream(request("/x", [("Host", "a.example"), ("Connection", "keep-alive, X-Private"), ("X-Private", "1"),
                                             ("Keep-Alive", "5"), ("Proxy-Authorization", "Basic x"), ("TE", "trailers"), ("Upgrade", "h2c"),
                                             ("Proxy-Connection", "keep-alive"), ("Trailer", "X"), ("Expect", "100-continue"),
                                             ("Accept", "*/*")], length: 3))
        XCTAssertEqual(up.head.headers.map(\.name), ["Accept", "Via"])
        XCTAssertEqual(up.head.headers.last?.value, "1.1 reckerd")
        XCTAssertTrue(up.expectContinue)
        XCTAssertEqual(up.head.bodyLength, 3)
    }

    func testOddRequestsAreRefused() {
        XCTAssertEqual(refusal(request("a:443", [("Host", "a:443")], method: "CONNECT"))?.status, 405)
        XCTAssertEqual(refusal(request("a:443", [("Host", "a:443")], method: "connect"))?.status, 405)
        XCTAssertEqual(refusal(request("/t", [("Host", "a")], method: "trace"))?.status, 405, "TRACE in any case")
        XCTAssertEqual(refusal(request("a:443", [("Host", "a:443")], method: "CONNECT"))?.headers.first?.hasPrefix("Allow:"), true)
        XCTAssertEqual(refusal(request("/x", [("Host", "a"), ("Expect", "something")]))?.status, 417)
        XCTAssertEqual(refusal(request("/x", [("Host", "a"), ("Via", "1.1 reckerd")]))?.status, 508)
        var h2 = request("/x", [("Host", "a")])
        h2.major = 2
        XCTAssertEqual(refusal(h2)?.status, 505)
        let many = request("/x", [("Host", "a")] + (0 ..< 1000).map { ("X-\($0)", "v") })
        XCTAssertEqual(refusal(many)?.status, 431)
    }

    /// RFC 9110 §2.5, §7.6.2, §9.3.8: HTTP/1.2 is served as 1.1; TRACE is not forwarded;
    /// OPTIONS with Max-Forwards 0 is answered here, above 0 forwarded one lower.
    func testVersionsTraceAndMaxForwards() throws {
        var later = request("/x", [("Host", "a")])
        later.minor = 2
        XCTAssertNil(refusal(later), "HTTP/1.2 is served")
        XCTAssertEqual(refusal(request("/x", [("Host", "a")], method: "TRACE"))?.status, 405)
        XCTAssertEqual(refusal(request("/x", [("Host", "a"), ("Max-Forwards", "0")], method: "TRACE"))?.status, 405)
        let final = refusal(request("/x", [("Host", "a"), ("Max-Forwards", "0")], method: "OPTIONS"))
        XCTAssertEqual(final?.status, 200)
        XCTAssertEqual(final?.headers.first?.hasPrefix("Allow:"), true)
        let answer = String(decoding: HTTPProxyRules.errorResponse(try XCTUnwrap(final), close: false, method: "OPTIONS"), as: UTF8.self)
        XCTAssertTrue(answer.hasPrefix("HTTP/1.1 200 OK\r\n") && answer.contains("Content-Length: 0\r\n") && !answer.contains("X-Reckerd-Error"), answer)
        let up = try HTTPProxyRules.upstream(request("/x", [("Host", "a"), ("Max-Forwards", "3")], method: "OPTIONS"), originate: [], limits: .standard)
        XCTAssertEqual(up.head.headers.first { $0.name == "Max-Forwards" }?.value, "2")
        XCTAssertEqual(refusal(request("/x", [("Host", "a"), ("Max-Forwards", "x")], method: "OPTIONS"))?.status, 400)
    }

    /// An absolute-form request's Host is checked too; names with an underscore are dropped.
    func testAbsoluteFormHostsAndUnderscoreNames() throws {
        for bad in ["", "a/b", "a,b", "a b", "a@b"] {
            XCTAssertEqual(refusal(request("http://api.example/x", [("Host", bad)]))?.status, 400, bad)
        }
        let up = try HTTPProxyRules.upstream(request("/x", [("Host", "a"), ("Transfer_Encoding", "chunked"), ("X_Y", "1"), ("X-Y", "2")]),
                                             originate: [], limits: .standard)
        XCTAssertEqual(up.head.headers.filter { $0.name.contains("_") }.count, 0)
        XCTAssertEqual(up.head.headers.first { $0.name == "X-Y" }?.value, "2")
    }

    func head(_ status: UInt16, _ headers: [(String, String)]) -> ResponseHead {
        ResponseHead(status: status, httpVersion: 11, connectionID: 7, reused: true, queueMicros: 1234,
                     headers: headers.map { (name: $0.0, value: $0.1) })
    }

    func text(_ start: HTTPProxyRules.ResponseStart) -> String { String(decoding: start.bytes, as: UTF8.self) }

    func testResponsesAreFramedForTheClientWithoutHopByHopHeaders() {
        let known = HTTPProxyRules.responseStart(head(200, [("Content-Length", "5"), ("Connection", "X-Up"), ("X-Up", "1"),
                                                           ("Keep-Alive", "timeout=5"), ("Trailer", "X"), ("ETag", "\"e\"")]),
                                                 method: "GET", clientHTTP10: false, clientKeepAlive: true, annotate: false)
        XCTAssertEqual(known.framing, .length(5))
        XCTAssertTrue(known.keepAlive)
        XCTAssertEqual(text(known), "HTTP/1.1 200 OK\r\nETag: \"e\"\r\nContent-Length: 5\r\nVia: 1.1 reckerd\r\n\r\n")

        let unknown = HTTPProxyRules.responseStart(head(200, [("Transfer-Encoding", "chunked")]), method: "GET", clientHTTP10: false,
                                                   clientKeepAlive: true, annotate: true)
        XCTAssertEqual(unknown.framing, .chunked)
        XCTAssertEqual(text(unknown).components(separatedBy: "Transfer-Encoding").count, 2, "the upstream's dropped, the front's own once")
        XCTAssertTrue(text(unknown).contains("X-Reckerd-Reused: 1\r\nX-Reckerd-Connection: 7\r\nX-Reckerd-Queue-Ms: 1.234\r\n"))

        let both = HTTPProxyRules.responseStart(head(200, [("Transfer-Encoding", "chunked"), ("Content-Length", "3")]), method: "GET",
                                                clientHTTP10: false, clientKeepAlive: true, annotate: false)
        XCTAssertEqual(both.framing, .chunked, "Transfer-Encoding overrides Content-Length")
        XCTAssertFalse(text(both).contains("Content-Length"))

        let old = HTTPProxyRules.responseStart(head(200, []), method: "GET", clientHTTP10: true, clientKeepAlive: true, annotate: false)
        XCTAssertEqual(old.framing, .close)
        XCTAssertFalse(old.keepAlive)
        XCTAssertTrue(text(old).hasSuffix("Connection: close\r\n\r\n"))

        let headReq = HTTPProxyRules.responseStart(head(200, [("Content-Length", "99")]), method: "HEAD", clientHTTP10: false,
                                                   clientKeepAlive: true, annotate: false)
        XCTAssertEqual(headReq.framing, .none)
        XCTAssertTrue(text(headReq).contains("Content-Length: 99\r\n"))
        XCTAssertEqual(HTTPProxyRules.responseStart(head(204, []), method: "GET", clientHTTP10: false, clientKeepAlive: true, annotate: false).framing, .none)

        let split = HTTPProxyRules.responseStart(head(200, [("X-Evil", "a\r\nSet-Cookie: b"), ("Content-Length", "1")]), method: "GET",
                                                 clientHTTP10: false, clientKeepAlive: true, annotate: false)
        XCTAssertFalse(text(split).contains("Set-Cookie"), "a value with a line break is dropped")
    }

    func testErrorsMapToStatuses() {
        XCTAssertEqual(HTTPProxyRules.status(for: ReckerError(.connectFailed, "")), 502)
        XCTAssertEqual(HTTPProxyRules.status(for: ReckerError(.tlsFailed, "")), 502)
        XCTAssertEqual(HTTPProxyRules.status(for: ReckerError(.timeout, "")), 504)
        XCTAssertEqual(HTTPProxyRules.status(for: ReckerError(.queueTimeout, "")), 504)
        XCTAssertEqual(HTTPProxyRules.status(for: ReckerError(.destinationDenied, "")), 403)
        XCTAssertEqual(HTTPProxyRules.status(for: ReckerError(.queueFull, "")), 503)
        let body = String(decoding: HTTPProxyRules.errorResponse(HTTPRefusal(ReckerError(.connectFailed, "refused")), close: false), as: UTF8.self)
        XCTAssertTrue(body.hasPrefix("HTTP/1.1 502 Bad Gateway\r\n"))
        XCTAssertTrue(body.hasSuffix("\r\n\r\nreckerd: CONNECT_FAILED: refused\n"))
        XCTAssertTrue(body.contains("X-Reckerd-Error: CONNECT_FAILED\r\n"))
    }
}
