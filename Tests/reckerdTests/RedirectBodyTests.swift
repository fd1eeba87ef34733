import Foundation
import ReckerProtocol
import ReckerTestSupport
import XCTest

/// PROTOCOL.md §2.3: on 301, 302 and 303 a POST becomes a GET without its body, unless
/// `keep_method` is 1, which keeps the method and the body on all three; 307 and 308
/// always keep both. Seen from the redirect's target, which digests what it received.
final class RedirectBodyTests: XCTestCase {
    func testKeepMethodKeepsThePostAndItsBodyOnEveryRedirect() async throws {
        let server = try FaultServer()
        let daemon = try DaemonProcess()
        let client = ReckerClient(socketPath: daemon.socketPath)
        defer { client.close() }
        let body = Array("hello".utf8)
        let digest = "POST 5 \(String(FaultServer.fnv1a(body), radix: 16))"
        for code in [301, 302, 303, 307, 308] {
            for keep in [false, true] {
                var r = ReckerRequest(method: "POST", url: server.url("/moved/\(code)/\(server.url("/digest"))"), body: body)
                r.head.options.followRedirects = 2
                r.head.options.keepMethod = keep
                let answer = try await client.send(r)
                let text = String(decoding: answer.body, as: UTF8.self)
                if keep || code >= 307 {
                    XCTAssertEqual(text, digest, "\(code), keep_method \(keep): the POST and its body reached the target")
                } else {
                    XCTAssertEqual(text, "GET 0 \(String(FaultServer.fnv1a([]), radix: 16))", "\(code): a GET without the body")
                }
            }
        }
    }

    /// Other methods keep their method and body on 301, 302, 307 and 308, and become a GET
    /// without the body on a 303 (RFC 9110 §15.4.4); a body-less PUT was sent after a 303.
    func testOtherMethodsFollowA303AsAGet() async throws {
        let server = try FaultServer()
        let daemon = try DaemonProcess()
        let client = ReckerClient(socketPath: daemon.socketPath)
        defer { client.close() }
        let body = Array("hello".utf8)
        for method in ["PUT", "PATCH", "DELETE"] {
            for code in [301, 302, 303, 307, 308] {
                for keep in [false, true] {
                    var r = ReckerRequest(method: method, url: server.url("/moved/\(code)/\(server.url("/digest"))"), body: body)
                    r.head.options.followRedirects = 2
                    r.head.options.keepMethod = keep
                    let text = String(decoding: try await client.send(r).body, as: UTF8.self)
                    let expected = code == 303 ? "GET 0 \(String(FaultServer.fnv1a([]), radix: 16))"
                                               : "\(method) 5 \(String(FaultServer.fnv1a(body), radix: 16))"
                    XCTAssertEqual(text, expected, "\(method) after \(code), keep_method \(keep)")
                }
            }
        }
    }

    /// A URL the door lets through but libcurl cannot use is INVALID_URL, sent nowhere.
    func testAURLLibcurlRefusesWasNotSent() async throws {
        let daemon = try DaemonProcess()
        let client = ReckerClient(socketPath: daemon.socketPath)
        defer { client.close() }
        for url in ["http://[zz]/", #"http://["x"]/"#] {
            do {
                _ = try await client.send(ReckerRequest(url: url))
                XCTFail("\(url) answered")
            } catch {
                XCTAssertEqual(error.code, .invalidURL, "\(url): \(error)")
                XCTAssertFalse(error.mayHaveReachedUpstream, url)
                XCTAssertTrue(error.retrySafe, url)
            }
        }
    }

    /// A resend goes out on a fresh connection (PROTOCOL.md 5.1), not on another idle one that
    /// may be as stale as the first: with four stale connections in the pool, a GET whose
    /// reused connection died is answered.
    func testAResendGoesOutOnAFreshConnection() async throws {
        let server = try FaultServer()
        let daemon = try DaemonProcess(config: #"{ "agent": { "connections": 4 }, "http2": { "enabled": false } }"#)
        let client = ReckerClient(socketPath: daemon.socketPath)
        defer { client.close() }
        let warm = await client.batch((0 ..< 8).map { _ in ReckerRequest(url: server.url("/close-on-reuse?warm")) }, concurrency: 4)
        XCTAssertGreaterThanOrEqual(server.connections, 2, "several idle connections, each of which dies on reuse")
        _ = warm
        let r = try await client.send(ReckerRequest(url: server.url("/close-on-reuse?x")))
        XCTAssertEqual(r.status, 200)
        XCTAssertFalse(r.head.reused, "the answer came on a fresh connection")
        XCTAssertLessThanOrEqual(server.received("GET", "/close-on-reuse?x"), 2, "sent at most twice")
    }

    /// A 307 to a request whose body is over what reckerd keeps to send again fails saying
    /// so (it said "the reused connection closed before any answer").
    func testA307WithABodyTooLargeToSendAgainSaysSo() async throws {
        let server = try FaultServer()
        let daemon = try DaemonProcess(config: #"{ "limits": { "responseBuffer": 16384 } }"#)
        let client = ReckerClient(socketPath: daemon.socketPath)
        defer { client.close() }
        var r = ReckerRequest(method: "PUT", url: server.url("/moved/307/\(server.url("/digest"))"), body: [UInt8](repeating: 1, count: 40000))
        r.head.options.followRedirects = 2
        do {
            let answer = try await client.send(r)
            XCTFail("answered \(answer.status)")
        } catch {
            XCTAssertEqual(error.code, .upstreamFailed, "\(error)")
            XCTAssertTrue(error.message.contains("redirected with 307"), error.message)
            XCTAssertTrue(error.message.contains("limits.responseBuffer"), error.message)
        }
        XCTAssertEqual(try daemon.stats()["retries"] as? Int, 0, "no connection died")
    }
}

/// PROTOCOL.md 2.3: a header sent with an empty or all-whitespace value goes upstream with
/// an empty value, and replaces the default reckerd would add (Accept); the echo upstream
/// shows what arrived.
final class BlankHeaderTests: XCTestCase {
    func testBlankValuesGoUpstreamEmptyAndReplaceDefaults() async throws {
        let upstream = try CLIEchoUpstream()
        let daemon = try DaemonProcess()
        let client = ReckerClient(socketPath: daemon.socketPath)
        defer { client.close() }
        let r = try await client.send(ReckerRequest(url: "http://127.0.0.1:\(upstream.port)/h",
                                                    headers: [("Accept", " "), ("X-Blank", "\t"), ("X-Empty", ""), ("X-Full", "v")]))
        let lines = String(decoding: r.body, as: UTF8.self).split(separator: "\n").map(String.init)
        for name in ["Accept", "X-Blank", "X-Empty"] {
            XCTAssertTrue(lines.contains("\(name): "), "\(name) arrived empty: \(lines)")
        }
        XCTAssertTrue(lines.contains("X-Full: v"), "\(lines)")
        XCTAssertFalse(lines.contains("Accept: */*"), "the client's Accept replaced the default: \(lines)")
        let plain = try await client.send(ReckerRequest(url: "http://127.0.0.1:\(upstream.port)/h"))
        XCTAssertTrue(String(decoding: plain.body, as: UTF8.self).contains("Accept: */*\n"), "the default when none was sent")
    }
}

/// PROTOCOL.md 2.5: `namelookup_us` is 0 for an address literal, on a new connection too.
final class FactsTests: XCTestCase {
    func testNoLookupIsReportedForAnAddressLiteral() async throws {
        let server = try FaultServer()
        let daemon = try DaemonProcess()
        let client = ReckerClient(socketPath: daemon.socketPath)
        defer { client.close() }
        let r = try await client.send(ReckerRequest(url: server.url("/delay/1")))
        XCTAssertFalse(r.head.reused, "a new connection")
        XCTAssertEqual(r.head.facts?.namelookupMicros, 0)
        XCTAssertEqual(r.head.facts?.remoteIP, "127.0.0.1")
    }
}
