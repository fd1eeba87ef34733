import Foundation
import ReckerTestSupport
import XCTest

/// What the HTTP front refuses at the door, each with its status and the connection
/// closed: request smuggling patterns (RFC 9112 §6.3, §11.2), CONNECT, heads past the
/// header limits, and clients too slow to finish a head.
final class HTTPFrontSmugglingTests: XCTestCase {
    func startDaemon(_ nginx: Nginx, http: String = "", extra: String = "") throws -> (DaemonProcess, String) {
        let section = #""http": { "enabled": true\#(http.isEmpty ? "" : ", " + http) }"#
        let daemon = try DaemonProcess(config: Fixtures.config(nginx, extra: section + (extra.isEmpty ? "" : ", " + extra)))
        return (daemon, daemon.dir.appendingPathComponent("http.sock").path)
    }

    /// Sends `request` as is; returns the statuses answered and whether the daemon closed.
    func exchange(_ sock: String, _ request: String, seconds: Double = 5) throws -> (statuses: [Int], closed: Bool, text: String) {
        let c = try HTTPFrontClient(unix: sock)
        c.send(request)
        let (data, closed) = c.read(seconds: seconds)
        return (HTTPFrontClient.statuses(data), closed, String(decoding: data, as: UTF8.self))
    }

    /// Each smuggling case is answered 400 and the connection closed; the request that
    /// follows it on the connection never reaches the upstream.
    func testSmugglingPatternsAreRefusedWith400AndClose() throws {
        let nginx = try Nginx(files: Fixtures.files)
        let (daemon, sock) = try startDaemon(nginx)
        let host = "Host: 127.0.0.1:\(nginx.httpPort)\r\n"
        let smuggled = "GET /n/9.txt HTTP/1.1\r\n\(host)\r\n"
        let cases: [(String, String)] = [
            ("Content-Length and Transfer-Encoding", "POST /hello.txt HTTP/1.1\r\n\(host)Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled),
            ("Transfer-Encoding and Content-Length", "POST /hello.txt HTTP/1.1\r\n\(host)Transfer-Encoding: chunked\r\nContent-Length: 6\r\n\r\n0\r\n\r\n" + smuggled),
            ("two different Content-Lengths", "POST /hello.txt HTTP/1.1\r\n\(host)Content-Length: 5\r\nContent-Length: 45\r\n\r\nhello" + smuggled),
            ("two equal Content-Lengths", "POST /hello.txt HTTP/1.1\r\n\(host)Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello" + smuggled),
            ("a Content-Length list", "POST /hello.txt HTTP/1.1\r\n\(host)Content-Length: 5, 5\r\n\r\nhello" + smuggled),
            ("a signed Content-Length", "POST /hello.txt HTTP/1.1\r\n\(host)Content-Length: +5\r\n\r\nhello" + smuggled),
            ("obs-fold", "GET /hello.txt HTTP/1.1\r\n\(host)X-A: 1\r\n 2\r\n\r\n" + smuggled),
            ("obs-fold of Transfer-Encoding", "POST /hello.txt HTTP/1.1\r\n\(host)Transfer-Encoding:\r\n chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n" + smuggled),
            ("bare LF", "GET /hello.txt HTTP/1.1\n\(host)\n" + smuggled),
            ("bare LF in a header line", "GET /hello.txt HTTP/1.1\r\n\(host)X-A: 1\nX-B: 2\r\n\r\n" + smuggled),
            ("bare CR", "GET /hello.txt HTTP/1.1\r\n\(host)X-A: 1\rX-B: 2\r\n\r\n" + smuggled),
            ("an invalid chunk size", "POST /hello.txt HTTP/1.1\r\n\(host)Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n" + smuggled),
            ("a chunk size that overflows", "POST /hello.txt HTTP/1.1\r\n\(host)Transfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\nhello\r\n0\r\n\r\n" + smuggled),
            ("gzip as the final coding", "POST /hello.txt HTTP/1.1\r\n\(host)Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n" + smuggled),
            ("a coding other than chunked", "POST /hello.txt HTTP/1.1\r\n\(host)Transfer-Encoding: gzip\r\n\r\nabc" + smuggled),
            ("two Transfer-Encodings", "POST /hello.txt HTTP/1.1\r\n\(host)Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled),
            ("a space before the colon", "GET /hello.txt HTTP/1.1\r\n\(host)Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n" + smuggled),
            ("two Host headers", "GET /hello.txt HTTP/1.1\r\n\(host)Host: example.com\r\n\r\n" + smuggled),
            ("no Host in HTTP/1.1", "GET /hello.txt HTTP/1.1\r\n\r\n" + smuggled),
            ("a chunk size in 0x form", "POST /hello.txt HTTP/1.1\r\n\(host)Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n" + smuggled),
            ("a space after the chunk size", "POST /hello.txt HTTP/1.1\r\n\(host)Transfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n" + smuggled),
            ("a CR then another byte ending a chunk size", "POST /hello.txt HTTP/1.1\r\n\(host)Transfer-Encoding: chunked\r\n\r\n5\rXhello\r\n0\r\n\r\n" + smuggled),
            ("two bytes other than CRLF after chunk data", "POST /hello.txt HTTP/1.1\r\n\(host)Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXY0\r\n\r\n" + smuggled),
            ("0 CR Z as the last chunk", "POST /hello.txt HTTP/1.1\r\n\(host)Transfer-Encoding: chunked\r\n\r\n0\rZ" + smuggled),
            ("a folded trailer", "POST /hello.txt HTTP/1.1\r\n\(host)Transfer-Encoding: chunked\r\n\r\n0\r\nX-T: 1\r\n 2\r\n\r\n" + smuggled),
            ("a version that is not HTTP", "GET /hello.txt HXYZ/1.1\r\n\(host)\r\n" + smuggled),
            ("two spaces in the request line", "GET  /hello.txt HTTP/1.1\r\n\(host)\r\n" + smuggled),
            ("a method that is not a token", "G(T /hello.txt HTTP/1.1\r\n\(host)\r\n" + smuggled),
            ("a control character in a value", "GET /hello.txt HTTP/1.1\r\n\(host)X-A: 1\u{1}2\r\n\r\n" + smuggled),
            ("a Host that is not an authority", "GET /hello.txt HTTP/1.1\r\nHost: 127.0.0.1:\(nginx.httpPort)/n/9.txt?\r\n\r\n" + smuggled),
        ]
        for (name, request) in cases {
            let r = try exchange(sock, request)
            XCTAssertEqual(r.statuses, [400], "\(name): \(r.text)")
            XCTAssertTrue(r.closed, "\(name): the connection is closed")
            XCTAssertTrue(r.text.contains("reckerd: "), "\(name): the body says why: \(r.text)")
        }
        XCTAssertFalse(nginx.log().contains { $0.uri == "/n/9.txt" }, "no smuggled request reached nginx: \(nginx.log())")
        XCTAssertEqual(daemon.stop(), 0)
    }

    /// Any token is a method (RFC 9110 §9.1): extension methods reach the upstream as
    /// written, with their bodies, and the connection goes on.
    func testExtensionMethodsAreForwardedAsWritten() throws {
        let nginx = try Nginx(files: Fixtures.files)
        let (daemon, sock) = try startDaemon(nginx)
        let host = "Host: 127.0.0.1:\(nginx.httpPort)\r\n"
        let methods = ["QUERY", "LABEL", "VERSION-CONTROL", "ORDERPATCH", "BREW", "X-CUSTOM", String(repeating: "M", count: 64)]
        let c = try HTTPFrontClient(unix: sock)
        for (i, method) in methods.enumerated() {
            c.send("\(method) /hello.txt?m=\(i) HTTP/1.1\r\n\(host)Content-Length: 2\r\n\r\nhi")
            let (data, closed) = c.read(seconds: 5, until: { HTTPFrontClient.statuses($0).count == 1 })
            XCTAssertEqual(HTTPFrontClient.statuses(data).count, 1, "\(method): \(String(decoding: data, as: UTF8.self))")
            XCTAssertFalse(closed, method)
        }
        let seen = nginx.log().filter { $0.uri.hasPrefix("/hello.txt?m=") }
        XCTAssertEqual(seen.map(\.method), methods, "each method reached nginx as written: \(seen)")
        XCTAssertEqual(Set(seen.map(\.connection)).count, 1, "on one upstream connection")
        XCTAssertEqual(daemon.stop(), 0)
    }

    /// CONNECT is refused with 405, `Allow`, and a body that says why.
    func testConnectIsRefusedWith405SayingWhy() throws {
        let nginx = try Nginx(files: Fixtures.files)
        let (daemon, sock) = try startDaemon(nginx)
        let r = try exchange(sock, "CONNECT 127.0.0.1:\(nginx.httpsPort) HTTP/1.1\r\nHost: 127.0.0.1:\(nginx.httpsPort)\r\n\r\n")
        XCTAssertEqual(r.statuses, [405], r.text)
        XCTAssertTrue(r.closed)
        XCTAssertTrue(r.text.contains("\r\nAllow: GET"), r.text)
        XCTAssertTrue(r.text.contains("tunnel") && r.text.contains("pool"), r.text)
        let curl = try TestEnvironment.run("/usr/bin/curl", ["-sS", "--max-time", "10", "-p", "--unix-socket", sock, nginx.url("/hello.txt", https: true)])
        XCTAssertNotEqual(curl.status, 0, "curl's tunnel through the front is refused")
        XCTAssertEqual(daemon.stop(), 0)
    }

    /// `limits.maxHeaders` and `limits.maxHeaderBytes` hold as on the binary protocol: a
    /// request at each limit is served, one past it answered 431 and closed.
    func testHeaderLimitsAtTheLimitAndOnePast() throws {
        let nginx = try Nginx(files: Fixtures.files)
        let (daemon, sock) = try startDaemon(nginx, extra: #""limits": { "maxHeaders": 20, "maxHeaderBytes": 1024 }"#)
        let host = "127.0.0.1:\(nginx.httpPort)"
        func request(count: Int) -> String {
            "GET /hello.txt HTTP/1.1\r\nHost: \(host)\r\n" + (1 ..< count).map { "X-H\($0): v\r\n" }.joined() + "\r\n"
        }
        let atCount = try exchange(sock, request(count: 20), seconds: 2)
        XCTAssertEqual(atCount.statuses, [200], atCount.text)
        XCTAssertFalse(atCount.closed)
        let overCount = try exchange(sock, request(count: 21))
        XCTAssertEqual(overCount.statuses, [431], overCount.text)
        XCTAssertTrue(overCount.closed)

        // Bytes of names and values: "Host" + host + "X-Fill" + filler = 1024, then 1025.
        func request(bytes: Int) -> String {
            let filler = bytes - 4 - host.utf8.count - 6
            return "GET /hello.txt HTTP/1.1\r\nHost: \(host)\r\nX-Fill: \(String(repeating: "f", count: filler))\r\n\r\n"
        }
        let atBytes = try exchange(sock, request(bytes: 1024), seconds: 2)
        XCTAssertEqual(atBytes.statuses, [200], atBytes.text)
        let overBytes = try exchange(sock, request(bytes: 1025))
        XCTAssertEqual(overBytes.statuses, [431], overBytes.text)
        XCTAssertTrue(overBytes.closed)
        XCTAssertTrue(overBytes.text.contains("HEADERS_TOO_LARGE"), overBytes.text)
        XCTAssertEqual(daemon.stop(), 0)
    }

    /// A head that never ends is answered 408 after `http.headerTimeout` and closed; a
    /// connection that never sends a byte is closed (slowloris).
    func testSlowHeadsTimeOut() throws {
        let nginx = try Nginx(files: Fixtures.files)
        let (daemon, path) = try startDaemon(nginx, http: #""headerTimeout": 300"#)
        let c = try HTTPFrontClient(unix: path)
        c.send("GET /hello.txt HTTP/1.1\r\nHost: 127.0.0.1:\(nginx.httpPort)\r\nX-A: ")
        let (data, closed) = c.read(seconds: 10)
        XCTAssertEqual(HTTPFrontClient.statuses(data), [408], String(decoding: data, as: UTF8.self))
        XCTAssertTrue(closed)
        let silent = try HTTPFrontClient(unix: path)
        let (nothing, silentClosed) = silent.read(seconds: 10)
        XCTAssertTrue(silentClosed, "a silent connection is closed")
        XCTAssertTrue(nothing.isEmpty)
        XCTAssertEqual(daemon.stop(), 0)
    }

    /// 400 requests mutated at random (seeded, so a failure replays): bytes flipped,
    /// line ends, spaces, colons and digits inserted, pieces cut. Whatever each gets, the
    /// daemon keeps serving, and nothing stays in flight.
    func testMutatedRequestsNeverStopTheDaemon() throws {
        let nginx = try Nginx(files: Fixtures.files)
        let (daemon, sock) = try startDaemon(nginx, http: #""headerTimeout": 500"#)
        let host = "Host: 127.0.0.1:\(nginx.httpPort)\r\n"
        let templates = [
            "GET /hello.txt HTTP/1.1\r\n\(host)\r\n",
            "POST /hello.txt HTTP/1.1\r\n\(host)Content-Length: 5\r\n\r\nhello",
            "POST /hello.txt HTTP/1.1\r\n\(host)Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            "GET http://127.0.0.1:\(nginx.httpPort)/n/1.txt HTTP/1.1\r\n\(host)Connection: keep-alive\r\nExpect: 100-continue\r\n\r\n",
        ].map { Array($0.utf8) }
        let inserts: [UInt8] = Array("\r\n :;,0123456789-+\t\u{0}".utf8) + [0x80, 0xFF]
        var state: UInt64 = 0x5EED_0F_4077
        func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        for _ in 0 ..< 400 {
            var bytes = templates[Int(next() % UInt64(templates.count))]
            for _ in 0 ..< 1 + Int(next() % 4) {
                let at = Int(next() % UInt64(bytes.count))
                switch next() % 4 {
                case 0: bytes[at] = UInt8(truncatingIfNeeded: next())
                case 1: bytes.insert(inserts[Int(next() % UInt64(inserts.count))], at: at)
                case 2: bytes.remove(at: at)
                default: bytes = Array(bytes[..<at])
                }
                if bytes.isEmpty { bytes = [0x0D] }
            }
            let c = try HTTPFrontClient(unix: sock)
            c.send(bytes)
            _ = c.read(seconds: 0.02)
        }
        XCTAssertEqual(try TestEnvironment.run("/usr/bin/curl", ["-sS", "--max-time", "10", "--unix-socket", sock, nginx.url("/hello.txt")]).text,
                       "hello from nginx\n")
        XCTAssertTrue(TestEnvironment.eventually(10) { (try? daemon.stats()["requests_in_flight"] as? Int) == 0 },
                      "nothing left in flight: \(String(describing: try? daemon.stats()["requests_in_flight"]))")
        XCTAssertEqual(daemon.stop(), 0)
    }
}
