import Foundation
import ReckerProtocol
import ReckerTestSupport
import XCTest

/// An HTTP/2 upstream that ends streams or connections in the ways RFC 9113 allows but a
/// client must read right (h2_fault.py): each request gets an answer or an error that says
/// what happened, with flags that are true, and none waits on a connection that is done.
final class HTTP2UpstreamFaultTests: XCTestCase {
    func setUpDaemon() throws -> (Nginx, H2FaultServer, DaemonProcess, ReckerClient) {
        let nginx = try Nginx(files: Fixtures.files)  // for its certificates
        let upstream = try H2FaultServer(certificatesOf: nginx)
        let daemon = try DaemonProcess(config: Fixtures.config(nginx, extra: #""agent": { "connections": 1 }"#))
        return (nginx, upstream, daemon, ReckerClient(socketPath: daemon.socketPath))
    }

    /// REFUSED_STREAM means the upstream did not process the request (RFC 9113 §8.7).
    /// libcurl 8.14 resends after it on a fresh connection only for that reason, so there
    /// any method goes again once, and the error then says it never reached the upstream's
    /// application (MAY_HAVE_REACHED clear, RETRY_SAFE set, a POST too). On a reused
    /// connection libcurl resends after REFUSED_STREAM, GOAWAY or a dead connection alike
    /// and tells which only in its trace: the policy decides, the error names the three,
    /// and the flags stay on the safe side.
    func testARefusedStreamIsResentOnlyWhenItIsKnownUnprocessed() async throws {
        let (_, upstream, daemon, client) = try setUpDaemon()
        defer { client.close() }
        let port = upstream.port
        let body = Array("abc".utf8)
        // On a fresh connection (nothing open to the upstream yet).
        do {
            let r = try await client.send(ReckerRequest(method: "POST", url: "https://localhost:\(port)/refuse-fresh", body: body))
            XCTFail("answered \(r.status)")
        } catch let e {
            XCTAssertEqual(e.code, .upstreamRecvFailed, "\(e)")
            XCTAssertTrue(e.message.contains("REFUSED_STREAM") && e.message.contains("did not process"), "\(e)")
            XCTAssertFalse(e.mayHaveReachedUpstream, "\(e)")
            XCTAssertTrue(e.retrySafe, "\(e)")
        }
        XCTAssertEqual(upstream.received("REFUSED POST /refuse-fresh"), 2, "\(upstream.log())")
        // On a reused connection.
        for (method, attempts) in [("POST", 1), ("GET", 2)] {
            _ = try await client.send(ReckerRequest(url: "https://localhost:\(port)/warm"))
            let path = "/refuse-reused-\(method)"
            do {
                let r = try await client.send(ReckerRequest(method: method, url: "https://localhost:\(port)\(path)", body: method == "POST" ? body : nil))
                XCTFail("\(method) answered \(r.status)")
            } catch let e {
                XCTAssertEqual(e.code, .upstreamRecvFailed, "\(method): \(e)")
                XCTAssertTrue(e.message.contains("REFUSED_STREAM") && e.message.contains("GOAWAY"), "\(method): \(e)")
                XCTAssertTrue(e.mayHaveReachedUpstream, "\(method): \(e)")
                XCTAssertEqual(e.retrySafe, method == "GET", "\(method): \(e)")
            }
            XCTAssertEqual(upstream.received("REFUSED \(method) \(path)"), attempts, "\(method): \(upstream.log())")
        }
        let after = try await client.send(ReckerRequest(url: "https://localhost:\(port)/after"))
        XCTAssertEqual(after.status, 200)
        XCTAssertEqual(daemon.stop(), 0)
    }

    /// GOAWAY naming earlier streams as the last processed, then TLS close_notify with the
    /// TCP connection left open: nothing waits on that connection (requests hung 15-30 s,
    /// until the client's or the upstream's timeout). A GET goes again on a fresh connection
    /// and is answered; a POST fails at once, naming what may have happened.
    func testGoawayAndCloseNotifyOnAnOpenConnectionDoNotHoldRequests() async throws {
        let (_, upstream, daemon, client) = try setUpDaemon()
        defer { client.close() }
        let port = upstream.port
        var options = RequestOptions()
        options.totalTimeoutMs = 20000
        _ = try await client.send(ReckerRequest(url: "https://localhost:\(port)/warm"))
        let started = Date()
        let get = try await client.send(ReckerRequest(url: "https://localhost:\(port)/goaway-get", options: options))
        XCTAssertEqual(String(decoding: get.body, as: UTF8.self), "GET 0", "answered on a fresh connection")
        XCTAssertEqual(upstream.received("GET /goaway-get 0"), 2, "read on the old connection (left out by GOAWAY), then answered on a new one")
        _ = try await client.send(ReckerRequest(url: "https://localhost:\(port)/warm"))
        do {
            let r = try await client.send(ReckerRequest(method: "POST", url: "https://localhost:\(port)/goaway-post", body: Array("abc".utf8), options: options))
            XCTFail("answered \(r.status)")
        } catch let e {
            XCTAssertEqual(e.code, .upstreamRecvFailed, "\(e)")
            XCTAssertTrue(e.message.contains("GOAWAY"), "\(e)")
        }
        XCTAssertLessThan(Date().timeIntervalSince(started), 10, "a connection the upstream was done with held a request")
        XCTAssertEqual(upstream.received("POST /goaway-post 3"), 1)
        XCTAssertEqual(daemon.stop(), 0)
    }

    /// RST_STREAM(NO_ERROR) before the response's END_STREAM ends the stream without its
    /// body (RFC 9113 §8.1): 3 of 10 promised bytes are an error, never a whole answer.
    func testAResetBeforeTheBodyEndsIsAnError() async throws {
        let (_, upstream, daemon, client) = try setUpDaemon()
        defer { client.close() }
        do {
            let r = try await client.send(ReckerRequest(url: "https://localhost:\(upstream.port)/reset"))
            XCTFail("answered \(r.status) with \(r.body.count) bytes")
        } catch let e {
            XCTAssertTrue(e.mayHaveReachedUpstream, "\(e)")
            XCTAssertNotEqual(e.code, .upstreamProtocol, "the upstream broke no rule of HTTP/2: \(e)")
        }
        XCTAssertEqual(upstream.received("GET /reset 0"), 1)
        XCTAssertEqual(daemon.stop(), 0)
    }
}
