import Foundation
import ReckerProtocol
import ReckerTestSupport
import XCTest

/// An upstream that answers with a malformed head can neither crash the daemon nor hurt
/// another request: each answer is the response made sense of (an obs-folded line joined
/// to the field before it, RFC 9112 §5.2) or UPSTREAM_PROTOCOL, the request is sent once
/// (the upstream's own log), and the daemon keeps serving. Debian 12's libcurl 7.88.1
/// crashed on the first of these after one earlier transfer (curl issue 11620,
/// docs/LIBCURL.md), so each runs on a fresh daemon's first easy handle and connection, and
/// again on reused ones, through both fronts, and over HTTP/2.
final class HostileUpstreamTests: XCTestCase {
    /// What a case must come to: the body (with a header as passed on, where one is
    /// checked), or an UPSTREAM_PROTOCOL error saying this.
    enum Outcome {
        case body(String)
        case header(String, name: String, value: String?)
        case refused(String)
    }

    static let incomplete = "before its response head was complete"

    /// Every HTTP/1.1 case of hostile_upstream.py, with what it must come to: an obs-fold
    /// joined to its field with one space (RFC 9112 §5.2), or refused where it continues a
    /// field that frames the body; a line of whitespace before any field consumed (§2.2);
    /// control bytes in a value replaced by spaces, names that are not tokens dropped;
    /// invalid or conflicting lengths, a length beside Transfer-Encoding, a status line
    /// that is not HTTP's, a head the upstream cut short and an interim status as the final
    /// answer refused (§4, §6.3; RFC 9110 §15.2).
    static let h1Cases: [(String, Outcome)] = [
        ("fold-first", .header("hello", name: " X-A", value: nil)), ("fold-first-tab", .body("hello")),
        ("fold-middle", .header("hello", name: "X-A", value: "1 folded")), ("fold-last", .header("hello", name: "X-A", value: "1 folded")),
        ("fold-many", .header("hello", name: "X-A", value: "1 two three four")), ("fold-only-space", .header("hello", name: "X-A", value: "1")),
        ("fold-content-length", .refused("folded its Content-Length")), ("fold-long", .body("hello")), ("fold-many-lines", .body("hello")),
        ("fold-status", .refused("Header without colon")), ("fold-bare-lf", .header("hello", name: "X-B", value: "2 folded")), ("fold-1xx", .body("hello")),
        ("fold-trailer", .body("hello")), ("fold-trailer-first", .body("hello")), ("fold-redirect", .body("ok")),
        ("fold-close", .body("hello")), ("fold-te", .refused("folded its Transfer-Encoding")), ("fold-cl", .refused("Content-Length")),
        ("fold-location", .body("ok")),
        ("bare-cr-value", .header("hello", name: "X-A", value: "a Content-Length: 10")),
        ("ctl-value", .header("hello", name: "X-A", value: "a [31mred")),
        ("close-after-status", .refused(incomplete)), ("close-mid-header", .refused(incomplete)),
        ("cl-hex", .refused("not a number")), ("cl-plus", .refused("Content-Length")), ("cl-huge", .refused("not a number")),
        ("cl-conflict", .refused("conflicting")), ("cl-list-conflict", .refused("conflicting")), ("cl-list-equal", .body("hello")),
        ("cl-and-te", .refused("both Content-Length and Transfer-Encoding")),
        ("status-long", .refused("status line")), ("status-four-digits", .refused("status line")), ("status-letter", .refused("status line")),
        ("close-101", .refused("interim status 101")), ("no-colon", .refused("colon")), ("space-before-colon", .header("hello", name: "X-A ", value: nil)),
        ("empty-name", .body("hello")), ("nul-in-value", .refused("Nul byte in header")),
    ]

    final class Upstream {
        let server: PythonServer
        let log: String

        init(_ mode: String, dir: URL, cert: (String, String)? = nil) throws {
            log = dir.appendingPathComponent("hostile-\(mode).log").path
            let script = try String(contentsOf: TestEnvironment.packageRoot.appendingPathComponent("Tests/ReckerTestSupport/hostile_upstream.py"),
                                    encoding: .utf8)
            server = try PythonServer(script, arguments: [mode, log] + (cert.map { [$0.0, $0.1] } ?? []), name: "hostile_upstream.py")
        }

        /// The requests the upstream read, as "CONNECTION METHOD PATH" lines.
        var requests: [String] {
            ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        }

        func times(_ path: String) -> Int { requests.filter { $0.hasSuffix(" GET /\(path)") }.count }
        var connections: Set<Substring> { Set(requests.compactMap { $0.split(separator: " ").first }) }
    }

    private func request(_ url: String) -> ReckerRequest {
        var r = ReckerRequest(url: url)
        r.head.options.followRedirects = 3
        return r
    }

    private func check(_ result: Result<ReckerResponse, ReckerError>, _ outcome: Outcome, _ name: String,
                       file: StaticString = #filePath, line: UInt = #line) {
        switch (result, outcome) {
        case (.success(let r), .body(let body)):
            XCTAssertEqual(r.status, 200, name, file: file, line: line)
            XCTAssertEqual(String(decoding: r.body, as: UTF8.self), body, name, file: file, line: line)
        case (.success(let r), .header(let body, let header, let value)):
            XCTAssertEqual(r.status, 200, name, file: file, line: line)
            XCTAssertEqual(String(decoding: r.body, as: UTF8.self), body, name, file: file, line: line)
            XCTAssertEqual(r.head.headers.first { $0.name == header }?.value, value, "\(name): \(r.head.headers)", file: file, line: line)
        case (.failure(let e), .refused(let why)):
            XCTAssertEqual(e.code, .upstreamProtocol, "\(name): \(e)", file: file, line: line)
            XCTAssertTrue(e.message.contains(why), "\(name): \(e.message)", file: file, line: line)
            XCTAssertTrue(e.mayHaveReachedUpstream, name, file: file, line: line)
        default:
            XCTFail("\(name): \(result)", file: file, line: line)
        }
    }

    private func send(_ client: ReckerClient, _ url: String) async -> Result<ReckerResponse, ReckerError> {
        do { return .success(try await client.send(request(url))) } catch { return .failure(error) }
    }

    /// Each case as the first request of a fresh daemon (a new easy handle, a new
    /// connection), then on one daemon after an earlier request on the same handle and
    /// connection, with a plain request after each: answered, sent once, still serving.
    func testFoldedAndMalformedHeadsOnFreshAndReusedHandles() async throws {
        let dir = try TestEnvironment.makeTempDir("hostile")
        let upstream = try Upstream("h1", dir: dir)
        let base = "http://127.0.0.1:\(upstream.server.port)"
        let config = #"{ "agent": { "connections": 1 }, "http2": { "enabled": false } }"#

        for (name, outcome) in Self.h1Cases {
            let daemon = try DaemonProcess(config: config)
            let client = ReckerClient(socketPath: daemon.socketPath)
            check(await send(client, "\(base)/\(name)"), outcome, "\(name), first request of a fresh daemon")
            check(await send(client, "\(base)/ok"), .body("ok"), "\(name): the request after it")
            client.close()
            XCTAssertTrue(daemon.process.isRunning, "\(name): the daemon is up")
        }

        let daemon = try DaemonProcess(config: config)
        let client = ReckerClient(socketPath: daemon.socketPath)
        defer { client.close() }
        for round in 0 ..< 2 {
            for (name, outcome) in Self.h1Cases {
                check(await send(client, "\(base)/ok"), .body("ok"), "\(name): the request before it")
                check(await send(client, "\(base)/\(name)"), outcome, "\(name) on a reused handle, round \(round)")
            }
        }
        check(await send(client, "\(base)/ok"), .body("ok"), "the last request")
        XCTAssertTrue(daemon.process.isRunning, "the daemon is up")
        for (name, _) in Self.h1Cases {
            XCTAssertEqual(upstream.times(name), 3, "\(name): once per run, never resent")
        }
        // A connection whose answer was refused carries no further request (README, "An
        // upstream that lies"): the request after it came on another connection.
        let log = upstream.requests.map { $0.split(separator: " ").map(String.init) }
        let refused = Set(Self.h1Cases.compactMap { if case .refused = $0.1 { "/" + $0.0 } else { nil } })
        for (i, line) in log.enumerated() where i + 1 < log.count && refused.contains(line[2]) {
            XCTAssertNotEqual(log[i + 1][0], line[0], "after \(line[2]) the next request went out on a new connection")
        }
        XCTAssertEqual(try daemon.stats()["requests_in_flight"] as? Int, 0)
        daemon.stop()
        XCTAssertFalse(daemon.stderr.contains("Fatal error") || daemon.stderr.contains("corrupted"), daemon.stderr)
    }

    /// The same cases through the HTTP front, each between two plain requests on one kept-
    /// alive front connection: a made-sense-of answer is relayed, a refused one is a 502,
    /// and the connection goes on serving.
    func testFoldedHeadsThroughTheHTTPFront() throws {
        let dir = try TestEnvironment.makeTempDir("hostile-front")
        let upstream = try Upstream("h1", dir: dir)
        let host = "127.0.0.1:\(upstream.server.port)"
        let daemon = try DaemonProcess(config: #"{ "agent": { "connections": 1 }, "http2": { "enabled": false }, "http": { "enabled": true } }"#)
        let sock = daemon.dir.appendingPathComponent("http.sock").path
        for round in 0 ..< 2 {
            for (name, outcome) in Self.h1Cases {
                let c = try HTTPFrontClient(unix: sock)
                let ask = { (path: String) in "GET http://\(host)/\(path) HTTP/1.1\r\nHost: \(host)\r\n\r\n" }
                c.send(ask("ok") + ask(name) + ask("ok"))
                let (data, _) = c.read(seconds: 10) { HTTPFrontClient.statuses($0).count >= 3 && $0.suffix(2) == Data("ok".utf8) }
                let text = String(decoding: data, as: UTF8.self)
                let statuses = HTTPFrontClient.statuses(data)
                switch outcome {
                case .body(let body), .header(let body, _, _):
                    let redirect = name == "fold-redirect" || name == "fold-location"
                    XCTAssertEqual(statuses, [200, redirect ? 302 : 200, 200], "\(name), round \(round): \(text)")
                    // A chunked answer goes on chunked, without the (folded) trailer; so does
                    // one whose length came as a list.
                    let relayed = name.hasPrefix("fold-trailer") || name == "cl-list-equal" ? "\r\n\r\n5\r\n\(body)\r\n0\r\n\r\nHTTP/1.1 200" : "\r\n\r\n\(body)HTTP/1.1 200"
                    if !redirect { XCTAssertTrue(text.contains(relayed), "\(name): \(text)") }
                case .refused:
                    XCTAssertEqual(statuses, [200, 502, 200], "\(name), round \(round): \(text)")
                }
            }
        }
        XCTAssertTrue(daemon.process.isRunning, "the daemon is up")
        for (name, _) in Self.h1Cases { XCTAssertEqual(upstream.times(name), 2, "\(name): once per round") }
    }

    /// HTTP/2 has no folding (RFC 9113 §8.2.1): a field carrying one, in a HEADERS frame, a
    /// CONTINUATION or trailers, fails its own stream with UPSTREAM_PROTOCOL; the
    /// connection and the daemon go on, and nothing is sent twice.
    func testFoldsOverHTTP2FailTheirStreamOnly() async throws {
        let nginx = try Nginx(files: Fixtures.files)  // for its CA and certificates
        let upstream = try Upstream("h2", dir: nginx.dir, cert: (nginx.dir.appendingPathComponent("server.pem").path,
                                                                  nginx.dir.appendingPathComponent("server.key").path))
        let base = "https://localhost:\(upstream.server.port)"
        let daemon = try DaemonProcess(config: Fixtures.config(nginx, extra: #""agent": { "connections": 1 }"#))
        let client = ReckerClient(socketPath: daemon.socketPath)
        defer { client.close() }
        let cases: [(String, Outcome)] = [
            ("fold-value", .refused("Invalid HTTP header field")), ("fold-continuation", .refused("Invalid HTTP header field")),
            ("leading-space-value", .body("hello")), ("space-in-name", .refused("Invalid HTTP header field")),
        ]
        for round in 0 ..< 2 {
            for (name, outcome) in cases {
                check(await send(client, "\(base)/ok"), .body("ok"), "\(name): the request before it")
                check(await send(client, "\(base)/\(name)"), outcome, "\(name) over HTTP/2, round \(round)")
            }
            // Trailers come after the body: the client has the head and body, then the error.
            let trailer = await send(client, "\(base)/fold-trailer")
            if case .failure(let e) = trailer {
                XCTAssertEqual(e.code, .upstreamProtocol, "\(e)")
            } else {
                XCTFail("a folded trailer was let through: \(trailer)")
            }
        }
        check(await send(client, "\(base)/ok"), .body("ok"), "the last request")
        XCTAssertTrue(daemon.process.isRunning)
        for (name, _) in cases { XCTAssertEqual(upstream.times(name), 2, "\(name): once per round") }
        XCTAssertEqual(upstream.connections.count, 1, "a refused stream does not cost the connection: \(upstream.requests)")
    }
}
