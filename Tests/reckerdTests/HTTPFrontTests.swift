import Foundation
import ReckerTestSupport
import XCTest

/// The HTTP/1.1 proxy front with real clients (curl, Python's urllib and http.client), a
/// real daemon and a real nginx on loopback: one pooled upstream connection for all of
/// them, pipelining, chunked bodies both ways, 100-continue, upstream failures, clients
/// that vanish or never read, TLS origination, annotations and /metrics.
final class HTTPFrontTests: XCTestCase {
    static let curl = "/usr/bin/curl"
    static let python = "/usr/bin/python3"

    /// nginx with a location that says the scheme its request came in with.
    func makeNginx() throws -> Nginx {
        try Nginx(files: Fixtures.files, extraConfig: #"location = /scheme { return 200 "$scheme\n"; }"#)
    }

    /// A daemon with the HTTP front on (its socket beside the daemon's, a loopback port).
    func startDaemon(_ nginx: Nginx, http: String = "", extra: String = "") throws -> (DaemonProcess, socket: String, port: UInt16) {
        let port = TestEnvironment.freePort()
        let section = #""http": { "enabled": true, "listen": "127.0.0.1:\#(port)"\#(http.isEmpty ? "" : ", " + http) }"#
        let daemon = try DaemonProcess(config: Fixtures.config(nginx, extra: section + (extra.isEmpty ? "" : ", " + extra)))
        return (daemon, daemon.dir.appendingPathComponent("http.sock").path, port)
    }

    func curl(_ args: [String]) throws -> TestEnvironment.Result {
        try TestEnvironment.run(Self.curl, ["-sS", "--max-time", "20"] + args, timeout: 30)
    }

    func python(_ script: String, _ args: [String]) throws -> TestEnvironment.Result {
        try TestEnvironment.run(Self.python, ["-c", script] + args, timeout: 30)
    }

    // MARK: - clients and the pool

    /// curl over the Unix socket and through the TCP listener (`-x`), Python's urllib with
    /// a ProxyHandler and http.client over the Unix socket: every request answered, and
    /// nginx saw them all on one connection, the pool's.
    func testEveryClientKindSharesOnePooledUpstreamConnection() throws {
        let nginx = try makeNginx()
        let (daemon, sock, port) = try startDaemon(nginx, extra: #""http2": { "enabled": false }"#)
        let url = nginx.url("/hello.txt")
        for _ in 0 ..< 2 {
            let r = try curl(["--unix-socket", sock, url])
            XCTAssertEqual(r.text, "hello from nginx\n", r.stderr)
        }
        for _ in 0 ..< 2 {
            let r = try curl(["-x", "http://127.0.0.1:\(port)", url])
            XCTAssertEqual(r.text, "hello from nginx\n", r.stderr)
        }
        let urllib = try python("""
            import sys, urllib.request
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": sys.argv[1]}))
            for _ in range(2):
                with opener.open(sys.argv[2], timeout=10) as r:
                    sys.stdout.write(r.read().decode())
            """, ["http://127.0.0.1:\(port)", url])
        XCTAssertEqual(urllib.text, "hello from nginx\n" + "hello from nginx\n", urllib.stderr)
        let httpClient = try python("""
            import sys, socket, http.client
            class UnixConnection(http.client.HTTPConnection):
                def connect(self):
                    self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    self.sock.settimeout(10)
                    self.sock.connect(sys.argv[1])
            c = UnixConnection(sys.argv[2])
            for _ in range(2):
                c.request("GET", "/hello.txt")
                r = c.getresponse()
                sys.stdout.write("%d %s %s" % (r.status, r.getheader("Via"), r.read().decode()))
            c.close()
            """, [sock, "127.0.0.1:\(nginx.httpPort)"])
        XCTAssertEqual(httpClient.text, "200 1.1 reckerd hello from nginx\n200 1.1 reckerd hello from nginx\n", httpClient.stderr)

        let log = nginx.waitForLog(count: 8)
        XCTAssertEqual(log.count, 8, "\(log)")
        XCTAssertEqual(Set(log.map(\.connection)).count, 1, "one pooled connection for curl, urllib and http.client: \(log)")
        XCTAssertEqual(log.last?.connectionRequests, 8)
        XCTAssertEqual(daemon.stop(), 0)
    }

    /// wrk through the TCP listener for two seconds: every response a 200, none failed,
    /// and nginx saw them on no more connections than the pool allows.
    func testWrkLoadThroughTheFront() throws {
        guard let wrk = ["/usr/bin/wrk", "/usr/local/bin/wrk"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            print("skipping testWrkLoadThroughTheFront: wrk is not installed (apt-get install wrk)")
            return
        }
        let nginx = try makeNginx()
        let (daemon, _, port) = try startDaemon(nginx, extra: #""agent": { "connections": 4 }, "http2": { "enabled": false }"#)
        let script = daemon.dir.appendingPathComponent("proxy.lua").path
        try #"wrk.path = "\#(nginx.url("/hello.txt"))""#.write(toFile: script, atomically: true, encoding: .utf8)
        let r = try TestEnvironment.run(wrk, ["-t", "2", "-c", "16", "-d", "2s", "-s", script, "http://127.0.0.1:\(port)"], timeout: 30)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertFalse(r.text.contains("Non-2xx"), r.text)
        XCTAssertFalse(r.text.contains("Socket errors"), r.text)
        let total = r.text.split(separator: "\n").first { $0.contains("requests in") }
            .flatMap { Int($0.trimmingCharacters(in: .whitespaces).split(separator: " ")[0]) } ?? 0
        XCTAssertGreaterThan(total, 0, r.text)
        let log = nginx.waitForLog(count: total, seconds: 10)
        XCTAssertGreaterThanOrEqual(log.count, total)
        XCTAssertLessThanOrEqual(Set(log.map(\.connection)).count, 4, "within agent.connections")
        XCTAssertEqual(daemon.stop(), 0)
    }

    /// Three requests written at once come back in order, on one client connection.
    func testPipelinedRequestsAreAnsweredInOrder() throws {
        let nginx = try makeNginx()
        let (daemon, sock, _) = try startDaemon(nginx)
        let client = try HTTPFrontClient(unix: sock)
        let host = "127.0.0.1:\(nginx.httpPort)"
        client.send((1 ... 3).map { "GET /n/\($0).txt HTTP/1.1\r\nHost: \(host)\r\n\r\n" }.joined())
        let (data, closed) = client.read(seconds: 10) { String(decoding: $0, as: UTF8.self).contains("item 3\n") }
        let text = String(decoding: data, as: UTF8.self)
        XCTAssertFalse(closed, "kept alive")
        XCTAssertEqual(HTTPFrontClient.statuses(data), [200, 200, 200], text)
        let one = text.range(of: "item 1\n"), two = text.range(of: "item 2\n"), three = text.range(of: "item 3\n")
        XCTAssertNotNil(one)
        XCTAssertTrue(one!.upperBound <= two!.lowerBound && two!.upperBound <= three!.lowerBound, "in order: \(text)")
        XCTAssertEqual(daemon.stop(), 0)
    }

    /// A client that sends its request whole and then shuts its sending side (`nc -N`,
    /// some HTTP/1.0 tools) is still answered, then the connection closes; one that shuts
    /// mid-request is closed at once.
    func testAHalfClosedClientIsStillAnswered() throws {
        let nginx = try makeNginx()
        let (daemon, sock, _) = try startDaemon(nginx)
        let client = try HTTPFrontClient(unix: sock)
        client.send("GET /hello.txt HTTP/1.1\r\nHost: 127.0.0.1:\(nginx.httpPort)\r\n\r\n")
        XCTAssertEqual(shutdown(client.fd, Int32(SHUT_WR)), 0)
        let (data, closed) = client.read(seconds: 10)
        let text = String(decoding: data, as: UTF8.self)
        XCTAssertEqual(HTTPFrontClient.statuses(data), [200], text)
        XCTAssertTrue(text.hasSuffix("hello from nginx\n"), text)
        XCTAssertTrue(closed, "closed after the answer")

        // Three pipelined requests, then the half-close: all three are answered, in order.
        let pipelined = try HTTPFrontClient(unix: sock)
        let get = "GET /hello.txt HTTP/1.1\r\nHost: 127.0.0.1:\(nginx.httpPort)\r\n\r\n"
        pipelined.send(get + get + get)
        XCTAssertEqual(shutdown(pipelined.fd, Int32(SHUT_WR)), 0)
        let three = pipelined.read(seconds: 10)
        XCTAssertEqual(HTTPFrontClient.statuses(three.data), [200, 200, 200], String(decoding: three.data, as: UTF8.self))
        XCTAssertTrue(three.closed, "closed after the third answer")

        let partial = try HTTPFrontClient(unix: sock)
        partial.send("GET /hello.txt HTTP/1.1\r\nHost: 127.0.0.1:\(nginx.httpPort)\r\n")
        XCTAssertEqual(shutdown(partial.fd, Int32(SHUT_WR)), 0)
        let cut = partial.read(seconds: 5)
        XCTAssertTrue(cut.closed)
        XCTAssertEqual(cut.data.count, 0, "nothing to answer")
        XCTAssertEqual(daemon.stop(), 0)
    }

    /// Two pipelined requests, the first with a chunked body, sent one byte per write: every
    /// boundary of the head scanner and the parser is crossed mid-token, and both are
    /// answered, in order.
    func testRequestsSentOneByteAtATime() throws {
        let nginx = try makeNginx()
        let server = try FaultServer()
        let (daemon, sock, _) = try startDaemon(nginx)
        let client = try HTTPFrontClient(unix: sock)
        let text = "\r\nPOST /digest HTTP/1.1\r\nHost: 127.0.0.1:\(server.port)\r\nTransfer-Encoding: chunked\r\n\r\n"
            + "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
            + "GET /n/7.txt HTTP/1.1\r\nHost: 127.0.0.1:\(nginx.httpPort)\r\n\r\n"
        for b in text.utf8 {
            client.send([b])
            usleep(500)
        }
        let (data, _) = client.read(seconds: 10) { String(decoding: $0, as: UTF8.self).hasSuffix("item 7\n") }
        let answer = String(decoding: data, as: UTF8.self)
        XCTAssertEqual(HTTPFrontClient.statuses(data), [200, 200], answer)
        let digest = "POST 11 \(String(FaultServer.fnv1a(Array("hello world".utf8)), radix: 16))"
        XCTAssertTrue(answer.contains(digest), answer)
        XCTAssertTrue(answer.hasSuffix("item 7\n"), answer)
        XCTAssertEqual(daemon.stop(), 0)
    }

    /// A chunked request body arrives whole upstream; a chunked upstream response reaches
    /// the client chunked, whole.
    func testChunkedBodiesBothWays() throws {
        let nginx = try makeNginx()
        let server = try FaultServer()
        let (daemon, sock, port) = try startDaemon(nginx)
        let body = Fixtures.bytes(300_000, seed: 7)
        let file = daemon.dir.appendingPathComponent("body.bin").path
        try body.write(to: URL(fileURLWithPath: file))
        let up = try curl(["--unix-socket", sock, "-H", "Transfer-Encoding: chunked", "--data-binary", "@\(file)", server.url("/digest")])
        XCTAssertEqual(up.text, "POST \(body.count) \(String(FaultServer.fnv1a(body), radix: 16))", up.stderr)

        let down = try curl(["-x", "http://127.0.0.1:\(port)", "-D", "-", server.url("/chunks/5000")])
        XCTAssertTrue(down.text.lowercased().contains("transfer-encoding: chunked"), down.text)
        XCTAssertTrue(down.text.hasSuffix("\r\n\r\n" + String(repeating: "x", count: 5000)), down.text.suffix(200).description)
        XCTAssertEqual(daemon.stop(), 0)
    }

    /// A chunked request is held until its body is whole (up to the stream window): one
    /// refused partway through its framing never reaches the upstream (as nginx's request
    /// buffering), and a whole one goes with a Content-Length. A body past the window goes
    /// chunked, as it comes (testChunkedBodiesBothWays, 300 KB).
    func testChunkedRequestsAreHeldUntilTheirBodyIsWhole() throws {
        let nginx = try makeNginx()
        let server = try FaultServer()
        let (daemon, sock, _) = try startDaemon(nginx)
        let host = "Host: 127.0.0.1:\(server.port)\r\n"
        let broken = try HTTPFrontClient(unix: sock)
        broken.send("POST /digest?broken HTTP/1.1\r\n\(host)Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        usleep(300_000)
        broken.send("3\r\nabcXY0\r\n\r\n")
        let (data, closed) = broken.read(seconds: 5)
        XCTAssertEqual(HTTPFrontClient.statuses(data), [400], String(decoding: data, as: UTF8.self))
        XCTAssertTrue(closed)
        usleep(300_000)
        XCTAssertEqual(server.connections, 0, "nothing of the refused request reached the upstream: not even a connection")

        let whole = try HTTPFrontClient(unix: sock)
        whole.send("POST /headers HTTP/1.1\r\n\(host)Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        let (answer, _) = whole.read(seconds: 5, until: { String(decoding: $0, as: UTF8.self).contains("Via") && $0.count > 100 })
        let text = String(decoding: answer, as: UTF8.self)
        XCTAssertTrue(text.contains("Content-Length: 11"), text)
        XCTAssertFalse(text.lowercased().contains("transfer-encoding"), text)
        XCTAssertEqual(daemon.stop(), 0)
    }

    /// `Expect: 100-continue`: the client is told to go on, and its body arrives whole.
    func testExpect100Continue() throws {
        let nginx = try makeNginx()
        let server = try FaultServer()
        let (daemon, sock, _) = try startDaemon(nginx)
        let body = Fixtures.bytes(2_000_000, seed: 9)
        let file = daemon.dir.appendingPathComponent("body.bin").path
        try body.write(to: URL(fileURLWithPath: file))
        let r = try curl(["-v", "--unix-socket", sock, "-H", "Expect: 100-continue", "--data-binary", "@\(file)", server.url("/digest")])
        XCTAssertTrue(r.stderr.contains("< HTTP/1.1 100 Continue"), r.stderr)
        XCTAssertEqual(r.text, "POST \(body.count) \(String(FaultServer.fnv1a(body), radix: 16))", r.stderr)
        XCTAssertEqual(daemon.stop(), 0)
    }

    /// Hop-by-hop headers the client sends never reach the upstream (those `Connection`
    /// names included); `Via` does, and the client's other headers.
    func testHopByHopHeadersAreStrippedAndViaAdded() throws {
        let nginx = try makeNginx()
        let server = try FaultServer()
        let (daemon, sock, _) = try startDaemon(nginx)
        let r = try curl(["--unix-socket", sock, "-H", "Connection: keep-alive, X-Secret", "-H", "X-Secret: 1", "-H", "Keep-Alive: timeout=5",
                          "-H", "Proxy-Authorization: Basic Zm9vOmJhcg==", "-H", "TE: trailers", "-H", "Upgrade: h2c",
                          "-H", "Proxy-Connection: keep-alive", "-H", "X-Kept: yes", server.url("/headers")])
        let seen = r.text.lowercased()
        for name in ["x-secret", "keep-alive", "proxy-authorization", "te:", "upgrade", "proxy-connection", "connection: keep-alive, x-secret"] {
            XCTAssertFalse(seen.contains(name), "\(name) reached the upstream: \(r.text)")
        }
        XCTAssertTrue(seen.contains("x-kept: yes"), r.text)
        XCTAssertTrue(seen.contains("via: 1.1 reckerd"), r.text)
        XCTAssertEqual(daemon.stop(), 0)
    }

    // MARK: - failures

    /// An upstream that refuses connections: 502 naming CONNECT_FAILED. One that keeps the
    /// only connection busy: the next request times out in the queue, 504 QUEUE_TIMEOUT.
    func testUpstreamFailuresAre502And504WithTheErrorCode() throws {
        let nginx = try makeNginx()
        let server = try FaultServer()
        let (daemon, sock, port) = try startDaemon(nginx, extra: #""agent": { "connections": 1, "queueTimeout": 300 }, "http2": { "enabled": false }"#)
        let closed = TestEnvironment.freePort()
        let refused = try curl(["-x", "http://127.0.0.1:\(port)", "-D", "-", "http://127.0.0.1:\(closed)/x"])
        XCTAssertTrue(refused.text.hasPrefix("HTTP/1.1 502"), refused.text)
        XCTAssertTrue(refused.text.contains("CONNECT_FAILED"), refused.text)

        let hanging = try HTTPFrontClient(unix: sock)
        hanging.send("GET /hang HTTP/1.1\r\nHost: 127.0.0.1:\(server.port)\r\n\r\n")
        XCTAssertTrue(TestEnvironment.eventually(5) { server.received("GET", "/hang") == 1 })
        let queued = try curl(["--unix-socket", sock, "-D", "-", server.url("/delay/1")])
        XCTAssertTrue(queued.text.hasPrefix("HTTP/1.1 504"), queued.text)
        XCTAssertTrue(queued.text.contains("QUEUE_TIMEOUT"), queued.text)
        XCTAssertEqual(daemon.stop(signal: SIGKILL), 9 as Int32?)
    }

    /// A client that leaves mid-request (half a body sent) or mid-response (a slow body
    /// half read): its request ends in the daemon, nothing stays in flight, and the
    /// daemon serves the next client.
    func testClientsThatVanishMidRequestAndMidResponse() throws {
        let nginx = try makeNginx()
        let server = try FaultServer()
        let (daemon, sock, _) = try startDaemon(nginx)
        do {
            let c = try HTTPFrontClient(unix: sock)
            c.send("POST /digest HTTP/1.1\r\nHost: 127.0.0.1:\(server.port)\r\nContent-Length: 100000\r\n\r\n" + String(repeating: "a", count: 1000))
            usleep(200_000)
        }
        do {
            let c = try HTTPFrontClient(unix: sock)
            c.send("GET /slow/big HTTP/1.1\r\nHost: 127.0.0.1:\(nginx.httpPort)\r\n\r\n")
            let (head, _) = c.read(seconds: 10) { $0.count > 100_000 }
            XCTAssertTrue(String(decoding: head.prefix(20), as: UTF8.self).hasPrefix("HTTP/1.1 200"))
        }
        XCTAssertTrue(TestEnvironment.eventually(10) { (try? daemon.stats()["requests_in_flight"] as? Int) == 0 },
                      "nothing left in flight: \(String(describing: try? daemon.stats()))")
        XCTAssertEqual(server.received("POST", "/digest"), 0, "a request cut short is never completed upstream")
        XCTAssertEqual(try curl(["--unix-socket", sock, nginx.url("/hello.txt")]).text, "hello from nginx\n")
        XCTAssertEqual(daemon.stop(), 0)
    }

    /// A client that asks for 8 MiB and never reads does not hold the domain's only
    /// connection: the next client is answered on it (not after the queue timeout), and
    /// the sleeper still gets every byte when it reads at last.
    func testAClientThatNeverReadsHoldsNoUpstreamConnection() throws {
        let nginx = try makeNginx()
        let (daemon, sock, port) = try startDaemon(nginx, extra: """
            "agent": { "connections": 1, "queueTimeout": 5000 }, "http2": { "enabled": false },
            "limits": { "responseBuffer": 65536, "streamWindow": 65536 }
            """)
        let sleeper = try HTTPFrontClient(unix: sock)
        sleeper.send("GET /size/8388608 HTTP/1.1\r\nHost: 127.0.0.1:\(nginx.httpPort)\r\n\r\n")
        usleep(300_000)
        let other = try curl(["-x", "http://127.0.0.1:\(port)", "-w", " %{http_code}", nginx.url("/hello.txt")])
        XCTAssertEqual(other.text, "hello from nginx\n 200", other.stderr)
        let log = nginx.waitForLog(count: 2)
        XCTAssertEqual(log.map(\.uri), ["/size/8388608", "/hello.txt"], "the big response ended upstream before the sleeper read it")
        XCTAssertEqual(Set(log.map(\.connection)).count, 1, "on the one connection, freed for the second client")

        let (data, _) = sleeper.read(seconds: 30) { $0.count >= (8 << 20) + 100 && $0.suffix(16).count == 16 && Self.complete($0) }
        let text = data.prefix(400)
        guard let split = data.range(of: Data("\r\n\r\n".utf8)) else { return XCTFail("no head: \(text)") }
        XCTAssertEqual(data.count - split.upperBound, 8 << 20, "every byte")
        XCTAssertTrue(data[split.upperBound...] == Fixtures.files["size/8388608"]!, "every byte, in order")
        XCTAssertEqual(try daemon.stats()["requests_in_flight"] as? Int, 0)
        XCTAssertEqual(daemon.stop(), 0)
    }

    /// A client that stops reading for `http.idleTimeout` while its response waits is
    /// closed, and its request leaves nothing behind.
    func testAClientThatStopsReadingIsClosedAfterTheIdleTimeout() throws {
        let nginx = try makeNginx()
        let (daemon, sock, _) = try startDaemon(nginx, http: #""idleTimeout": 500"#, extra: #""limits": { "responseBuffer": 65536 }"#)
        let sleeper = try HTTPFrontClient(unix: sock)
        sleeper.send("GET /size/8388608 HTTP/1.1\r\nHost: 127.0.0.1:\(nginx.httpPort)\r\n\r\n")
        usleep(2_000_000)
        let (data, closed) = sleeper.read(seconds: 20)
        XCTAssertTrue(closed, "closed")
        XCTAssertLessThan(data.count, 8 << 20, "before the whole response")
        XCTAssertTrue(TestEnvironment.eventually(5) { (try? daemon.stats()["requests_in_flight"] as? Int) == 0 })
        XCTAssertEqual(try curl(["--unix-socket", sock, nginx.url("/hello.txt")]).text, "hello from nginx\n")
        XCTAssertEqual(daemon.stop(), 0)
    }

    static func complete(_ data: Data) -> Bool {
        guard let split = data.range(of: Data("\r\n\r\n".utf8)) else { return false }
        return data.count - split.upperBound >= 8 << 20
    }

    // MARK: - origination, annotations, metrics

    /// `originate: "https"`: the client's http:// request reaches nginx's TLS port as
    /// https (nginx's `$scheme`, over HTTP/2), verified against the test CA. Without the CA
    /// the same request fails verification (502 TLS_FAILED); without `originate`, http
    /// stays http.
    func testOriginationSendsHTTPUpstreamAsVerifiedHTTPS() throws {
        let nginx = try makeNginx()
        let domain = "localhost:\(nginx.httpsPort)"
        let (daemon, sock, port) = try startDaemon(nginx, extra: #""domains": { "\#(domain)": { "originate": "https" } }"#)
        let r = try curl(["-x", "http://127.0.0.1:\(port)", "http://\(domain)/scheme"])
        XCTAssertEqual(r.text, "https\n", r.stderr)
        let r2 = try curl(["--unix-socket", sock, "http://\(domain)/scheme"])
        XCTAssertEqual(r2.text, "https\n", r2.stderr)
        let log = nginx.waitForLog(count: 2)
        XCTAssertEqual(log.map(\.proto), ["HTTP/2.0", "HTTP/2.0"], "\(log)")
        XCTAssertEqual(Set(log.map(\.connection)).count, 1, "pooled")
        let plain = try curl(["-x", "http://127.0.0.1:\(port)", nginx.url("/scheme")])
        XCTAssertEqual(plain.text, "http\n", "other domains stay http")
        XCTAssertEqual(daemon.stop(), 0)

        let untrustingPort = TestEnvironment.freePort()
        let untrusting = try DaemonProcess(config: """
            { "http": { "enabled": true, "listen": "127.0.0.1:\(untrustingPort)" }, "domains": { "\(domain)": { "originate": "https" } } }
            """)
        let refused = try curl(["-x", "http://127.0.0.1:\(untrustingPort)", "-D", "-", "http://\(domain)/scheme"])
        XCTAssertTrue(refused.text.hasPrefix("HTTP/1.1 502"), refused.text)
        XCTAssertTrue(refused.text.contains("TLS_FAILED"), refused.text)
        XCTAssertEqual(untrusting.stop(), 0)
    }

    /// `http.annotate`: each response head names its upstream connection, whether it was
    /// reused and the time queued; without it, none of these headers.
    func testAnnotationsNameTheConnectionAndReuse() throws {
        let nginx = try makeNginx()
        let (daemon, sock, _) = try startDaemon(nginx, http: #""annotate": true"#, extra: #""http2": { "enabled": false }"#)
        let first = try curl(["--unix-socket", sock, "-D", "-", "-o", "/dev/null", nginx.url("/hello.txt")]).text
        let second = try curl(["--unix-socket", sock, "-D", "-", "-o", "/dev/null", nginx.url("/hello.txt")]).text
        func header(_ text: String, _ name: String) -> String? {
            text.components(separatedBy: "\r\n").first { $0.lowercased().hasPrefix(name.lowercased() + ":") }
                .map { String($0.dropFirst(name.count + 1)).trimmingCharacters(in: .whitespaces) }
        }
        XCTAssertEqual(header(first, "X-Reckerd-Reused"), "0", first)
        XCTAssertEqual(header(second, "X-Reckerd-Reused"), "1", second)
        XCTAssertNotNil(header(first, "X-Reckerd-Connection"))
        XCTAssertEqual(header(first, "X-Reckerd-Connection"), header(second, "X-Reckerd-Connection"))
        XCTAssertNotNil(header(second, "X-Reckerd-Queue-Ms").flatMap(Double.init), second)
        XCTAssertEqual(daemon.stop(), 0)

        let (plain, plainSock, _) = try startDaemon(nginx)
        let head = try curl(["--unix-socket", plainSock, "-D", "-", "-o", "/dev/null", nginx.url("/hello.txt")]).text
        XCTAssertFalse(head.lowercased().contains("x-reckerd"), head)
        XCTAssertEqual(plain.stop(), 0)
    }

    /// `GET /metrics` on `metrics.listen` is the Prometheus document `recker stats
    /// --prometheus` prints: the same families, and it parses.
    func testMetricsEndpointServesThePrometheusDocument() throws {
        let nginx = try makeNginx()
        let metricsPort = TestEnvironment.freePort()
        let (daemon, sock, _) = try startDaemon(nginx, extra: #""metrics": { "listen": "127.0.0.1:\#(metricsPort)" }"#)
        XCTAssertEqual(try curl(["--unix-socket", sock, nginx.url("/hello.txt")]).text, "hello from nginx\n")
        let scraped = try curl(["-D", "-", "http://127.0.0.1:\(metricsPort)/metrics"])
        XCTAssertTrue(scraped.text.hasPrefix("HTTP/1.1 200"), scraped.text)
        XCTAssertTrue(scraped.text.contains("text/plain; version=0.0.4"), scraped.text)
        let body = scraped.text.components(separatedBy: "\r\n\r\n").dropFirst().joined(separator: "\r\n\r\n")
        let cli = try daemon.recker(["stats", "--prometheus"]).text
        func families(_ text: String) -> [String] { text.split(separator: "\n").filter { $0.hasPrefix("# TYPE ") }.map(String.init) }
        XCTAssertFalse(families(body).isEmpty)
        XCTAssertEqual(families(body), families(cli))
        XCTAssertTrue(body.contains("domain=\"127.0.0.1:\(nginx.httpPort)\""), body)
        let check = try TestEnvironment.run(Self.python, ["-c", """
            import sys
            from prometheus_client.parser import text_string_to_metric_families
            print(len(list(text_string_to_metric_families(sys.stdin.read()))))
            """], stdin: Data(body.utf8), timeout: 30)
        XCTAssertEqual(check.status, 0, check.stderr)
        XCTAssertEqual(Int(check.text.trimmingCharacters(in: .whitespacesAndNewlines)), families(body).count)
        let missing = try curl(["-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(metricsPort)/other"])
        XCTAssertEqual(missing.text, "404")
        XCTAssertEqual(daemon.stop(), 0)
    }
}
