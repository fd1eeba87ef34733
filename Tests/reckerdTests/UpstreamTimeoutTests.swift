import Foundation
import ReckerProtocol
import ReckerTestSupport
import XCTest

/// A stalled upstream holds a connection slot only as long as `agent.readTimeout`: the
/// request then fails with TIMEOUT saying so, and the slot serves the next request.
final class UpstreamTimeoutTests: XCTestCase {
    func testAStalledUpstreamTimesOutAndFreesItsConnection() async throws {
        let server = try FaultServer()
        let daemon = try DaemonProcess(config: #"{ "agent": { "connections": 1, "readTimeout": 1000 }, "http2": { "enabled": false } }"#)
        let client = ReckerClient(socketPath: daemon.socketPath)
        defer { client.close() }
        let start = Date()
        do {
            let r = try await client.send(ReckerRequest(url: server.url("/delay/20000")))
            XCTFail("answered \(r.status)")
        } catch {
            XCTAssertEqual(error.code, .timeout, "\(error)")
            XCTAssertTrue(error.message.contains("agent.readTimeout"), error.message)
            XCTAssertTrue(error.mayHaveReachedUpstream)
            XCTAssertTrue(error.retrySafe, "a GET")
        }
        let waited = Date().timeIntervalSince(start)
        XCTAssertGreaterThanOrEqual(waited, 0.9)
        XCTAssertLessThan(waited, 10, "the stalled request was let go")
        let next = try await client.send(ReckerRequest(url: server.url("/delay/1")))
        XCTAssertEqual(next.status, 200, "the one connection slot serves the next request")
        XCTAssertEqual(try daemon.stats()["timeouts"] as? Int, 1)
        // A slow but moving answer is not stalled: a 1.5 s answer within a 2 s limit.
        let patient = try DaemonProcess(config: #"{ "agent": { "readTimeout": 2000 } }"#)
        let c2 = ReckerClient(socketPath: patient.socketPath)
        defer { c2.close() }
        let slow = try await c2.send(ReckerRequest(url: server.url("/delay/1500")))
        XCTAssertEqual(slow.status, 200)
    }

    func testTheReadTimeoutIsAConfigKeyPerDomain() throws {
        let daemon = try DaemonProcess(config: #"{ "agent": { "readTimeout": 1234 }, "domains": { "a.localhost": { "readTimeout": 99 } } }"#)
        let check = try TestEnvironment.run(TestEnvironment.binDir.appendingPathComponent("reckerd").path,
                                            ["--config", daemon.configPath, "--check-config"])
        XCTAssertEqual(check.status, 0, check.stderr)
        XCTAssertTrue(check.text.contains(#""readTimeout" : 1234"#), check.text)
        XCTAssertTrue(check.text.contains(#""readTimeout" : 99"#), "the domain's own: \(check.text)")
        let file = daemon.dir.appendingPathComponent("zero.json")
        try Data(#"{ "agent": { "readTimeout": 0 } }"#.utf8).write(to: file)
        let bad = try TestEnvironment.run(TestEnvironment.binDir.appendingPathComponent("reckerd").path,
                                          ["--config", file.path, "--check-config"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("readTimeout"), bad.stderr)
    }
}

/// `connections_created` counts connections, not attempts: refused connects are connect
/// failures, and the reuse ratio stays within 0...1 (PROTOCOL.md 2.12).
final class ConnectionCountTests: XCTestCase {
    func testRefusedConnectsAreNotConnections() async throws {
        let server = try FaultServer()
        let closed = TestEnvironment.freePort()
        let daemon = try DaemonProcess(config: #"{ "agent": { "connections": 1 }, "http2": { "enabled": false } }"#)
        let client = ReckerClient(socketPath: daemon.socketPath)
        defer { client.close() }
        for _ in 0 ..< 50 {
            do {
                _ = try await client.send(ReckerRequest(url: "http://127.0.0.1:\(closed)/"))
                XCTFail("a closed port answered")
            } catch {
                XCTAssertEqual(error.code, .connectFailed)
            }
        }
        for _ in 0 ..< 50 { _ = try await client.send(ReckerRequest(url: server.url("/delay/1"))) }
        let s = try daemon.stats()
        XCTAssertEqual(s["connections_created"] as? Int, 1, "\(s)")
        XCTAssertEqual(s["connect_failures"] as? Int, 50)
        XCTAssertEqual(server.connections, 1)
        let ratio = try XCTUnwrap(s["reuse_ratio"] as? Double)
        XCTAssertEqual(ratio, 0.98, accuracy: 0.0001, "1 - 1 / (100 - 50)")
    }
}
