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
            (#"{ "socket": "/tmp/r.sock", "http": { "enabled": true, "socket": "/tmp/r.sock" } }"#, "http.socket must differ from socket"),
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

    /// Socket activation: systemd passes the daemon's socket and the front's (named
    /// `http`, as deploy/systemd/reckerd-http.socket names it); the daemon serves both as
    /// passed. With the front off in the config, the passed socket answers 503 saying so.
    func testSocketActivationServesTheFrontsSocketByName() throws {
        let nginx = try Nginx(files: Fixtures.files)
        for enabled in [true, false] {
            let dir = try TestEnvironment.makeTempDir("http-activate")
            let main = dir.appendingPathComponent("main.sock").path
            let http = dir.appendingPathComponent("front.sock").path
            let config = dir.appendingPathComponent("c.json").path
            try Fixtures.config(nginx, extra: #""http": { "enabled": \#(enabled) }"#).write(toFile: config, atomically: true, encoding: .utf8)
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/systemd-socket-activate")
            p.arguments = ["-l", main, "-l", http, "--fdname=reckerd:http", reckerd, "--config", config,
                           "--socket", dir.appendingPathComponent("ignored.sock").path]
            p.standardError = FileHandle.nullDevice
            p.standardOutput = FileHandle.nullDevice
            try p.run()
            defer { if p.isRunning { p.terminate(); p.waitUntilExit() } }
            XCTAssertTrue(TestEnvironment.eventually(5) { FileManager.default.fileExists(atPath: http) })
            // In-process client: Foundation's Process does not reap a second child while this one runs.
            let c = try HTTPFrontClient(unix: http)
            c.send("GET /hello.txt HTTP/1.1\r\nHost: 127.0.0.1:\(nginx.httpPort)\r\nConnection: close\r\n\r\n")
            let (data, closed) = c.read(seconds: 10)
            let text = String(decoding: data, as: UTF8.self)
            XCTAssertTrue(closed, text)
            if enabled {
                XCTAssertEqual(HTTPFrontClient.statuses(data), [200], text)
                XCTAssertTrue(text.hasSuffix("hello from nginx\n"), text)
            } else {
                XCTAssertEqual(HTTPFrontClient.statuses(data), [503], text)
                XCTAssertTrue(text.contains("http.enabled"), text)
            }
            XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("ignored.sock").path))
            XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("http.sock").path))
            kill(p.processIdentifier, SIGTERM)
            XCTAssertTrue(TestEnvironment.eventually(10) { !p.isRunning })
            p.waitUntilExit()
            XCTAssertEqual(p.terminationStatus, 0)
        }
    }

    /// TCP clients have no known user: together they count as one for
    /// `limits.maxClientsPerUser`, so the port cannot take every descriptor.
    func testTCPClientsTogetherCountAsOneUser() throws {
        let nginx = try Nginx(files: Fixtures.files)
        let port = TestEnvironment.freePort(), metrics = TestEnvironment.freePort()
        let daemon = try DaemonProcess(config: Fixtures.config(nginx, extra: #""http": { "enabled": true, "listen": "127.0.0.1:\#(port)" }, "metrics": { "listen": "127.0.0.1:\#(metrics)" }, "limits": { "maxClientsPerUser": 2 }"#))
        let request = "GET /hello.txt HTTP/1.1\r\nHost: 127.0.0.1:\(nginx.httpPort)\r\n\r\n"
        let first = try HTTPFrontClient(port: port), second = try HTTPFrontClient(port: port)
        for c in [first, second] {
            c.send(request)
            XCTAssertEqual(HTTPFrontClient.statuses(c.read(seconds: 5) { String(decoding: $0, as: UTF8.self).hasSuffix("nginx\n") }.data), [200])
        }
        let third = try HTTPFrontClient(port: port)
        third.send(request)
        let (data, closed) = third.read(seconds: 5)
        XCTAssertEqual(HTTPFrontClient.statuses(data), [503], String(decoding: data, as: UTF8.self))
        XCTAssertTrue(String(decoding: data, as: UTF8.self).contains("TOO_MANY_CLIENTS"))
        XCTAssertTrue(closed)
        // The main socket's user (root here) is counted apart.
        XCTAssertEqual(try daemon.recker(["-sS", nginx.url("/hello.txt")]).text, "hello from nginx\n")
        // So are /metrics scrapers: a full front port does not blind monitoring.
        let scrape = try HTTPFrontClient(port: metrics)
        scrape.send("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        let scraped = scrape.read(seconds: 5) { String(decoding: $0, as: UTF8.self).contains("reckerd_requests_total") }.data
        XCTAssertEqual(HTTPFrontClient.statuses(scraped), [200], String(decoding: scraped.prefix(300), as: UTF8.self))
        XCTAssertEqual(daemon.stop(), 0)
    }
}
