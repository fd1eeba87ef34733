import Foundation
import ReckerProtocol
import ReckerTestSupport
import XCTest

/// A HEAD sent with a body is answered as soon as its head arrives (RFC 9110 §9.3.2: no
/// body follows a HEAD's answer), through both fronts; ten of them hold no connection, so
/// another client's GET to the same domain is served at once.
final class HeadWithBodyTests: XCTestCase {
    func testAHeadWithABodyIsAnsweredAtOnceAndHoldsNoConnection() async throws {
        let nginx = try Nginx(files: Fixtures.files)
        let daemon = try DaemonProcess(config: Fixtures.config(nginx, extra: #""agent": { "connections": 2 }, "http": { "enabled": true }"#))
        let client = ReckerClient(socketPath: daemon.socketPath)
        defer { client.close() }
        let start = Date()
        for i in 0 ..< 10 {
            let r = try await client.send(ReckerRequest(method: "HEAD", url: nginx.url("/hello.txt"), body: Array("hello".utf8)), timeout: .seconds(10))
            XCTAssertEqual(r.status, 200, "HEAD \(i)")
            XCTAssertEqual(r.body, [], "HEAD \(i): no body")
        }
        let sock = daemon.dir.appendingPathComponent("http.sock").path
        let host = "127.0.0.1:\(nginx.httpPort)"
        for i in 0 ..< 10 {
            let c = try HTTPFrontClient(unix: sock)
            c.send("HEAD http://\(host)/hello.txt HTTP/1.1\r\nHost: \(host)\r\nContent-Length: 5\r\n\r\nhello")
            let (data, _) = c.read(seconds: 10) { $0.count > 12 && String(decoding: $0, as: UTF8.self).contains("\r\n\r\n") }
            XCTAssertEqual(HTTPFrontClient.statuses(data), [200], "front HEAD \(i): \(String(decoding: data, as: UTF8.self))")
        }
        let get = try await client.send(ReckerRequest(url: nginx.url("/hello.txt")), timeout: .seconds(10))
        XCTAssertEqual(get.status, 200)
        XCTAssertLessThan(Date().timeIntervalSince(start), 10, "nothing waited out an upstream timeout")
        XCTAssertEqual(try daemon.stats()["requests_in_flight"] as? Int, 0)
    }
}
