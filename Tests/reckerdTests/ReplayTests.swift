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
            } catch let e as ReckerError {
                result = .failure(e)
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
}
