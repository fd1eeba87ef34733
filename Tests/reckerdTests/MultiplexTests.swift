import Foundation
import ReckerProtocol
import ReckerTestSupport
import XCTest

/// Many requests share one client connection; each gets its own response.
final class MultiplexTests: XCTestCase {
    func testFiftyConcurrentRequestsOverOneClientConnection() async throws {
        let nginx = try Nginx(files: Fixtures.files)
        let daemon = try DaemonProcess(config: Fixtures.config(nginx))
        let client = ReckerClient(socketPath: daemon.socketPath)
        defer { client.close() }
        for https in [false, true] {
            let results = try await withThrowingTaskGroup(of: (Int, String, Int).self) { group in
                for i in 0 ..< 50 {
                    group.addTask {
                        let r = try await client.send(ReckerRequest(url: nginx.url("/n/\(i).txt", https: https)))
                        return (i, String(decoding: r.body, as: UTF8.self), r.status)
                    }
                }
                var all: [(Int, String, Int)] = []
                for try await r in group { all.append(r) }
                return all
            }
            XCTAssertEqual(results.count, 50)
            for (i, body, status) in results {
                XCTAssertEqual(status, 200)
                XCTAssertEqual(body, "item \(i)\n", "https=\(https)")
            }
        }
        let log = nginx.waitForLog(count: 100)
        XCTAssertEqual(log.count, 100)
        let h2 = log.filter { $0.proto == "HTTP/2.0" }
        XCTAssertEqual(h2.count, 50)
        XCTAssertLessThanOrEqual(Set(h2.map(\.connection)).count, 2, "h2 multiplexes the 50 onto at most 2 connections")
        XCTAssertLessThanOrEqual(Set(log.filter { $0.proto == "HTTP/1.1" }.map(\.connection)).count, 10, "at most `connections` (10)")
    }

    /// A burst bigger than one HTTP/2 connection's streams opens only the connections it
    /// needs (libcurl alone opened one per request past the first connection's streams, up
    /// to `connections`), read from the upstream's log.
    func testABurstOver256StreamsOpensThreeConnections() async throws {
        let nginx = try Nginx(files: Fixtures.files)
        let daemon = try DaemonProcess(config: Fixtures.config(nginx, extra: #""agent": { "connections": 64 }, "http2": { "maxConcurrentStreams": 100 }"#))
        let clients = (0 ..< 4).map { _ in ReckerClient(socketPath: daemon.socketPath) }
        defer { for c in clients { c.close() } }
        for burst in 0 ..< 2 {
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for i in 0 ..< 256 {
                    group.addTask {
                        try await clients[i % 4].send(ReckerRequest(url: nginx.url("/n/\(i % 50).txt", https: true))).status
                    }
                }
                var all: [Int] = []
                for try await s in group { all.append(s) }
                return all
            }
            XCTAssertEqual(statuses.filter { $0 == 200 }.count, 256, "burst \(burst)")
        }
        let log = nginx.waitForLog(count: 512)
        XCTAssertEqual(log.count, 512)
        XCTAssertTrue(log.allSatisfy { $0.proto == "HTTP/2.0" })
        let used = Set(log.map(\.connection)).count
        XCTAssertLessThanOrEqual(used, 3, "256 concurrent requests at 100 streams each need 3 connections; \(used) were opened")
    }
}
