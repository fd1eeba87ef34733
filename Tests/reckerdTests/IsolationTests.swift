import Foundation
import ReckerProtocol
import ReckerTestSupport
import XCTest

/// Clients share connections, never state, and one client cannot take more than its share.
final class IsolationTests: XCTestCase {
    func testNoCookieCarriesFromOneRequestToAnother() throws {
        let server = try FaultServer()
        let daemon = try DaemonProcess()
        let set = try daemon.recker(["-sS", "-i", server.url("/set-cookie")])
        XCTAssertTrue(set.text.contains("Set-Cookie: session=secret"), set.text)
        let echo = try daemon.recker(["-sS", server.url("/headers")])
        XCTAssertEqual(echo.status, 0, echo.stderr)
        XCTAssertFalse(echo.text.lowercased().contains("cookie"), "a later request carried state: \(echo.text)")
        XCTAssertEqual(server.connections, 1, "yet both went over the same connection")
    }

    /// Easy handles are reused, reset: nothing of one request (custom method, headers,
    /// credentials, body, cookies) reaches the next, seen at the upstream.
    func testNothingOfOneRequestReachesTheNext() throws {
        let server = try FaultServer()
        let daemon = try DaemonProcess(config: #"{ "agent": { "connections": 1 } }"#)
        _ = try daemon.recker(["-sS", server.url("/set-cookie")])
        let loud = try daemon.recker(["-sS", "-X", "PURGE", "-H", "X-Secret: 1", "-u", "me:pw", "-H", "Cookie: a=b", "-d", "body",
                                      server.url("/digest")])
        XCTAssertTrue(loud.text.hasPrefix("PURGE 4 "), loud.text + loud.stderr)
        for _ in 0 ..< 3 {
            let echo = try daemon.recker(["-sS", server.url("/headers")]).text.lowercased()
            for leak in ["x-secret", "authorization", "cookie", "content-length", "content-type"] {
                XCTAssertFalse(echo.contains(leak), "\(leak) reached a later request: \(echo)")
            }
            let digest = try daemon.recker(["-sS", server.url("/digest")]).text
            XCTAssertEqual(digest, "GET 0 cbf29ce484222325", "a later request went out as sent: \(digest)")
        }
        XCTAssertEqual(server.connections, 1, "all on one connection, so one handle after another")
    }

    func testRequestsInFlightPerClientAreCapped() throws {
        let server = try FaultServer()
        let daemon = try DaemonProcess(config: #"{ "limits": { "maxInFlightPerClient": 2 } }"#)
        let c = try ReckerConnection(socketPath: daemon.socketPath)
        XCTAssertEqual(c.welcome.maxInFlight, 2)
        for id in UInt32(1) ... 3 {
            try c.send(.requestHead(stream: id, RequestHead(url: server.url("/delay/300")), endRequest: true))
        }
        var refused: [UInt32] = []
        var answered: [UInt32] = []
        for _ in 0 ..< 20 where refused.count + answered.count < 3 {
            switch try c.receive() {
            case .error(let s, let e):
                XCTAssertEqual(e.code, .tooManyInFlight)
                refused.append(s)
            case .responseEnd(let s, _): answered.append(s)
            default: continue
            }
        }
        XCTAssertEqual(refused, [3])
        XCTAssertEqual(answered.sorted(), [1, 2])
    }

    func testCancelStopsTheUpstreamTransfer() throws {
        let server = try FaultServer()
        let daemon = try DaemonProcess()
        let c = try ReckerConnection(socketPath: daemon.socketPath)
        try c.send(.requestHead(stream: 7, RequestHead(url: server.url("/delay/5000")), endRequest: true))
        usleep(200_000)
        try c.send(.cancel(stream: 7))
        guard case .error(7, let e) = try c.receive() else { return XCTFail("no answer to CANCEL") }
        XCTAssertEqual(e.code, .cancelled)
        XCTAssertTrue(TestEnvironment.eventually(5) { ((try? daemon.stats())?["requests_in_flight"] as? Int) == 0 })
    }

    func testUnwritableSocketDirectoryIsRefused() throws {
        let r = try TestEnvironment.run(TestEnvironment.binDir.appendingPathComponent("reckerd").path,
                                        ["--socket", "/nonexistent-reckerd-dir/reckerd.sock"], timeout: 20)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("/nonexistent-reckerd-dir"), r.stderr)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
    }
}
