import Foundation
import ReckerTestSupport
import XCTest

/// Who may reach the HTTP front: on its Unix socket, `allowUsers` holds as on the main
/// socket; the TCP listeners take loopback addresses only, refused otherwise at load.
final class HTTPFrontAccessTests: XCTestCase {
    let reckerd = TestEnvironment.binDir.appendingPathComponent("reckerd").path

    /// Another local user who can open the socket but is not in `allowUsers` is answered
    /// 403 saying why; an allowed user is served.
    func testAnotherUserIsRefusedOnTheUnixSocketWhenNotAllowed() throws {
        let nginx = try Nginx(files: Fixtures.files)
        let daemon = try DaemonProcess(config: Fixtures.config(nginx, extra: #""http": { "enabled": true }, "allowUsers": [0]"#))
        let sock = daemon.dir.appendingPathComponent("http.sock").path
        chmod(sock, 0o666)
        let stranger = try TestEnvironment.run("/usr/bin/setpriv", ["--reuid=4242", "--regid=4242", "--clear-groups",
                                                                    "/usr/bin/curl", "-sS", "--max-time", "10", "-D", "-", "--unix-socket", sock,
                                                                    nginx.url("/hello.txt")],
                                               environment: ["PATH": "/usr/bin:/bin"], timeout: 20)
        XCTAssertTrue(stranger.text.hasPrefix("HTTP/1.1 403"), stranger.text + stranger.stderr)
        XCTAssertTrue(stranger.text.contains("uid 4242 is not in allowUsers"), stranger.text)
        XCTAssertFalse(stranger.text.contains("hello from nginx"))
        let me = try TestEnvironment.run("/usr/bin/curl", ["-sS", "--max-time", "10", "--unix-socket", sock, nginx.url("/hello.txt")])
        XCTAssertEqual(me.text, "hello from nginx\n", me.stderr)
        XCTAssertEqual(nginx.waitForLog(count: 1).count, 1, "only the allowed user's request went upstream")
        XCTAssertEqual(daemon.stop(), 0)
    }

    /// `http.listen` and `metrics.listen` take 127.x.y.z or [::1] with a port; anything
    /// else is refused when the config loads, with line and column, and so is a TCP
    /// listener beside `allowUsers`.
    func testNonLoopbackListenAddressesAreRefusedAtLoad() throws {
        let dir = try TestEnvironment.makeTempDir("http-listen")
        let cases: [(String, String)] = [
            (#"{ "http": { "enabled": true, "listen": "0.0.0.0:8118" } }"#, "http.listen must be a loopback address"),
            (#"{ "http": { "enabled": true, "listen": "192.168.1.10:8118" } }"#, "http.listen must be a loopback address"),
            (#"{ "http": { "enabled": true, "listen": "[::]:8118" } }"#, "http.listen must be a loopback address"),
            (#"{ "http": { "enabled": true, "listen": "localhost:8118" } }"#, "http.listen must be an IP address"),
            (#"{ "http": { "enabled": true, "listen": "127.0.0.1" } }"#, "http.listen must be HOST:PORT"),
            (#"{ "http": { "enabled": true, "listen": "127.0.0.1:70000" } }"#, "http.listen has no valid port"),
            (#"{ "metrics": { "listen": "0.0.0.0:9464" } }"#, "metrics.listen must be a loopback address"),
            (#"{ "allowUsers": [0], "http": { "enabled": true, "listen": "127.0.0.1:8118" } }"#, "http.listen cannot be used with allowUsers"),
            (#"{ "http": { "enabled": true, "anotate": true } }"#, "did you mean http.annotate?"),
            (#"{ "domains": { "a.example": { "originate": "http" } } }"#, "domains.a.example.originate must be \"https\""),
        ]
        for (i, (config, message)) in cases.enumerated() {
            let path = dir.appendingPathComponent("c\(i).json").path
            try config.write(toFile: path, atomically: true, encoding: .utf8)
            let r = try TestEnvironment.run(reckerd, ["--config", path, "--check-config"])
            XCTAssertEqual(r.status, 1, config)
            XCTAssertTrue(r.stderr.contains("\(path):1:"), "line and column: \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(message), "\(config): \(r.stderr)")
        }
        let good = dir.appendingPathComponent("good.json").path
        try #"{ "http": { "enabled": true, "listen": "[::1]:8118", "annotate": true }, "metrics": { "listen": "127.0.0.2:9464" }, "domains": { "a.example": { "originate": "https" } } }"#
            .write(toFile: good, atomically: true, encoding: .utf8)
        let r = try TestEnvironment.run(reckerd, ["--config", good, "--check-config"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.text.contains(#""listen" : "[::1]:8118""#), r.text)
        XCTAssertTrue(r.text.contains(#""originate" : "https""#), r.text)
        XCTAssertTrue(r.text.contains(#""listen" : "127.0.0.2:9464""#), r.text)

        let shipped = try TestEnvironment.run(reckerd, ["--config", TestEnvironment.packageRoot.appendingPathComponent("config/reckerd.json").path, "--check-config"])
        XCTAssertEqual(shipped.status, 0, shipped.stderr)
        XCTAssertTrue(shipped.text.contains("\"http\" : {\n    \"annotate\" : false,\n    \"enabled\" : false"), "the front is off by default: \(shipped.text)")
    }
}
