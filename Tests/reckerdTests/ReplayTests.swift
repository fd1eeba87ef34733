import Foundation
import ReckerProtocol
import ReckerTestSupport
import XCTest

/// A request whose reused connection dies before any answer is sent again only when that
/// cannot repeat its effect (RFC 9110 §9.2.2, or an `Idempotency-Key`), and its body goes
/// again byte for byte. Counted by the upstream itself.
final class ReplayTests: XCTestCase {
    struct Case {
        var method: String
        var body: [UInt8]?
        var headers: [(name: String, value: String)] = []
        /// Times the upstream must receive it; 2 means one resend.
        var expected: Int
    }

    func testOnlyIdempotentRequestsAreSentTwice() async throws {
        let server = try FaultServer()
        let daemon = try DaemonProcess(config: #"{ "agent": { "connections": 1 }, "http2": { "enabled": false } }"#)
        let client = ReckerClient(socketPath: daemon.socketPath)
        defer { client.close() }
        let body = Array("a body that must arrive whole, twice if at all".utf8)
        let cases: [Case] = [
            Case(method: "POST", body: nil, expected: 1),
            Case(method: "POST", body: body, expected: 1),
            Case(method: "PATCH", body: body, expected: 1),
            Case(method: "LOCK", body: nil, expected: 1),
            Case(method: "DELETE", body: nil, expected: 2),
            Case(method: "PUT", body: body, expected: 2),
            Case(method: "GET", body: nil, expected: 2),
            Case(method: "POST", body: body, headers: [("Idempotency-Key", "8e03978e-40d5-43e8-bc93-6894a57f9324")], expected: 2),
            Case(method: "POST", body: body, headers: [("Idempotency-Key", "")], expected: 1),
        ]
        for (i, c) in cases.enumerated() {
            let name = "\(c.method)\(c.body == nil ? "" : " with body")\(c.headers.isEmpty ? "" : " with Idempotency-Key")"
            // The connection the case goes out on has served a request, so it is reused.
            let warm = try await client.send(ReckerRequest(url: server.url("/digest")))
            XCTAssertEqual(warm.status, 200)
            let uri = "/close-on-reuse?case=\(i)"
            let result: Result<ReckerResponse, ReckerError>
            do {
                result = .success(try await client.send(ReckerRequest(method: c.method, url: server.url(uri), headers: c.headers, body: c.body)))
            } catch {
                result = .failure(error)
            }
            XCTAssertEqual(server.received(c.method, uri), c.expected, "\(name): times the upstream received it")
            switch result {
            case .success(let r) where c.expected == 2:
                XCTAssertFalse(r.head.reused, "\(name): the resend went out on a fresh connection")
                let sent = c.body ?? []
                XCTAssertEqual(String(decoding: r.body, as: UTF8.self),
                               "\(c.method) \(sent.count) \(String(FaultServer.fnv1a(sent), radix: 16))", "\(name): the body went again intact")
            case .failure(let e) where c.expected == 1:
                XCTAssertEqual(e.code, .upstreamRecvFailed, name)
                XCTAssertTrue(e.mayHaveReachedUpstream, "\(name): says it may have reached the upstream")
                XCTAssertFalse(e.retrySafe, "\(name): not safe to retry")
                XCTAssertTrue(e.message.contains("not idempotent"), e.message)
            default:
                XCTFail("\(name): \(result)")
            }
        }
        let retries = try daemon.stats()["retries"] as? Int
        XCTAssertEqual(retries, cases.count, "every case met a dead reused connection once")

        // recker says so too.
        let r = try daemon.recker(["-sS", "-X", "POST", server.url("/digest")])
        XCTAssertEqual(r.status, 0)
        let refused = try daemon.recker(["-sS", "-X", "POST", server.url("/close-on-reuse?cli")])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.stderr.contains("may have reached the upstream"), refused.stderr)
        XCTAssertEqual(server.received("POST", "/close-on-reuse?cli"), 1)
    }

    /// An upstream that writes bytes after a complete response, while the connection is
    /// idle: the next request (maybe another user's) must not take them as its answer. It
    /// goes out on a fresh connection instead, and gets its own response (counted by the
    /// upstream).
    func testLateBytesOnAnIdleConnectionReachNoOne() async throws {
        let server = try FaultServer()
        let daemon = try DaemonProcess(config: #"{ "agent": { "connections": 1 }, "http2": { "enabled": false } }"#)
        let client = ReckerClient(socketPath: daemon.socketPath)
        defer { client.close() }
        let first = try await client.send(ReckerRequest(url: server.url("/late-extra")))
        XCTAssertEqual(first.body, Array("ok".utf8))
        try await Task.sleep(nanoseconds: 150_000_000)
        for i in 0 ..< 3 {
            let next = try await client.send(ReckerRequest(method: "POST", url: server.url("/digest"), body: Array("x\(i)".utf8)))
            XCTAssertTrue(String(decoding: next.body, as: UTF8.self).hasPrefix("POST 2 "), "request \(i) got its own answer: \(String(decoding: next.body, as: UTF8.self))")
        }
        XCTAssertEqual(server.received("POST", "/digest"), 3, "each sent once")
        XCTAssertEqual(server.connections, 2, "the desynchronised connection was left for a fresh one")
        // libcurl 8 declines a cached connection with input pending before any request is
        // put on it, so no request met the poisoned one: nothing was retried.
        let stats = try daemon.stats()
        XCTAssertEqual(stats["retries"] as? Int, 0)
        XCTAssertEqual(stats["connections_created"] as? Int, server.connections)
    }

    /// The bytes an upstream writes on an idle HTTP/1 connection close it at once, before
    /// any request could pick it (nginx's keepalive module does the same): the upstream sees
    /// the close with no further request, long before the keep-alive timeout.
    func testAnIdleConnectionIsClosedAtItsFirstUnaskedByte() async throws {
        let server = try FaultServer()
        let daemon = try DaemonProcess(config: #"{ "agent": { "connections": 1, "keepAliveTimeout": 20000 }, "http2": { "enabled": false } }"#)
        let client = ReckerClient(socketPath: daemon.socketPath)
        defer { client.close() }
        let quiet = try await client.send(ReckerRequest(url: server.url("/delay/1")))
        XCTAssertEqual(quiet.status, 200)
        let first = try await client.send(ReckerRequest(url: server.url("/late-extra")))
        XCTAssertEqual(first.body, Array("ok".utf8))
        XCTAssertTrue(TestEnvironment.eventually(3) { server.closedConnections == 1 }, "closed when the bytes came, not after 20 s")
        XCTAssertEqual(server.connections, 1, "no request went out on it meanwhile")
        let next = try await client.send(ReckerRequest(url: server.url("/delay/1")))
        XCTAssertEqual(next.body, Array("ok".utf8))
        XCTAssertEqual(server.connections, 2)
        daemon.stop()
        XCTAssertTrue(daemon.stderr.contains("sent bytes after its last response while idle"), daemon.stderr)
    }

    /// A PUT whose body is over the replay limit cannot be resent: it fails saying so, as a
    /// refused resend does, and reaches the upstream once.
    func testABodyTooLargeToKeepFailsLikeARefusedResend() async throws {
        let server = try FaultServer()
        let daemon = try DaemonProcess(config: #"{ "agent": { "connections": 1 }, "http2": { "enabled": false }, "limits": { "responseBuffer": 16384 } }"#)
        let client = ReckerClient(socketPath: daemon.socketPath)
        defer { client.close() }
        _ = try await client.send(ReckerRequest(url: server.url("/digest")))
        do {
            let r = try await client.send(ReckerRequest(method: "PUT", url: server.url("/close-on-reuse?big"), body: Array(repeating: 7, count: 40000)))
            XCTFail("answered \(r.status)")
        } catch let e as ReckerError {
            XCTAssertEqual(e.code, .upstreamRecvFailed, e.message)
            XCTAssertTrue(e.mayHaveReachedUpstream)
            XCTAssertFalse(e.retrySafe)
        }
        XCTAssertEqual(server.received("PUT", "/close-on-reuse?big"), 1)
    }

    /// Over HTTP/2 libcurl does not resend a stream whose reused connection died; reckerd
    /// starts it over itself, under the same policy. The upstream (h2_fault.py) counts.
    func testHTTP2StreamsOfADeadConnectionFollowTheSamePolicy() async throws {
        let nginx = try Nginx(files: Fixtures.files)  // for its certificates
        let upstream = try H2FaultServer(certificatesOf: nginx)
        let port = upstream.port
        let daemon = try DaemonProcess(config: Fixtures.config(nginx, extra: #""agent": { "connections": 1 }"#))
        let client = ReckerClient(socketPath: daemon.socketPath)
        defer { client.close() }
        let cases: [(String, [(name: String, value: String)], Bool)] = [
            ("GET", [], true), ("PUT", [], true), ("DELETE", [], true), ("POST", [("Idempotency-Key", "k")], true),
            ("POST", [], false), ("PATCH", [], false),
        ]
        for (i, (method, headers, resent)) in cases.enumerated() {
            let warm = try await client.send(ReckerRequest(url: "https://localhost:\(port)/warm\(i)"))
            XCTAssertEqual(warm.head.httpVersion, 20)
            let body: [UInt8]? = method == "GET" || method == "DELETE" ? nil : Array("abc".utf8)
            let path = "/kill\(i)"
            do {
                let r = try await client.send(ReckerRequest(method: method, url: "https://localhost:\(port)\(path)", headers: headers, body: body))
                XCTAssertTrue(resent, "\(method) answered \(r.status)")
                XCTAssertEqual(String(decoding: r.body, as: UTF8.self), "\(method) \(body?.count ?? 0)")
            } catch let e {
                XCTAssertFalse(resent, "\(method): \(e)")
                XCTAssertEqual(e.code, .upstreamRecvFailed, "\(method): \(e)")
                XCTAssertTrue(e.mayHaveReachedUpstream)
            }
            XCTAssertEqual(upstream.received("\(method) \(path) \(body?.count ?? 0)"), resent ? 2 : 1, "\(method): times the upstream read it")
        }
    }
}
