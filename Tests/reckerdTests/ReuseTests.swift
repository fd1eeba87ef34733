import Foundation
import ReckerTestSupport
import XCTest

/// Separate `recker` processes, one after another, share one upstream connection — seen
/// from nginx's side (`$connection` in its log), not from reckerd's counters.
final class ReuseTests: XCTestCase {
    func testThirtyProcessesOverOneConnection() throws {
        let nginx = try Nginx(files: Fixtures.files)
        let daemon = try DaemonProcess(config: Fixtures.config(nginx))
        for https in [false, true] {
            let before = nginx.log().count
            for i in 0 ..< 30 {
                let r = try daemon.recker(["-s", "-S", "-w", "\n%{num_connects} %{connection_id}", nginx.url("/hello.txt", https: https)])
                XCTAssertEqual(r.status, 0, r.stderr)
                let lines = r.text.split(separator: "\n", omittingEmptySubsequences: false)
                XCTAssertEqual(lines.first, "hello from nginx", "request \(i)")
                XCTAssertEqual(lines.last?.hasPrefix(i == 0 ? "1 " : "0 "), true, "request \(i) reused: \(r.text)")
            }
            let log = Array(nginx.waitForLog(count: before + 30).dropFirst(before))
            XCTAssertEqual(log.count, 30)
            XCTAssertEqual(Set(log.map(\.connection)).count, 1, "https=\(https): nginx saw connections \(Set(log.map(\.connection)))")
            XCTAssertEqual(log.map(\.connectionRequests), Array(1 ... 30))
            XCTAssertTrue(log.allSatisfy { $0.status == 200 })
            if https { XCTAssertEqual(log.first?.proto, "HTTP/2.0", "HTTPS goes out as HTTP/2") }
        }
        let stats = try daemon.stats()
        XCTAssertEqual(stats["requests_total"] as? Int, 60)
        XCTAssertEqual(stats["connections_created"] as? Int, 2)
    }

    func testHTTPSVerifiesCertificates() throws {
        let nginx = try Nginx(files: Fixtures.files)
        // No CA configured: the test CA is unknown, so verification must fail.
        let daemon = try DaemonProcess(config: "{}")
        let before = nginx.log().count
        let r = try daemon.recker(["-sS", nginx.url("/hello.txt", https: true)])
        XCTAssertEqual(r.status, 60, r.stderr)
        XCTAssertTrue(r.stderr.contains("TLS_FAILED"), r.stderr)
        usleep(200_000)
        XCTAssertEqual(nginx.log().count, before, "no request reached nginx")
    }
}
