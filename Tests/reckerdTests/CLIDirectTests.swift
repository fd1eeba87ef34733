import Foundation
import ReckerProtocol
import ReckerTestSupport
import XCTest

/// Options a shared pool cannot serve (another Unix socket, certificate checks off, other
/// CAs, a host mapping, a proxy, an HTTP version) are served by recker-direct in the recker
/// process, as curl serves them: the same stdout and exit code as curl, %{pooled} 0, and
/// nothing of it reaches the daemon's pool.
final class CLIDirectTests: XCTestCase {
    func normal(_ text: String) -> String {
        text.components(separatedBy: "\r\n").filter { !$0.lowercased().hasPrefix("date: ") }.joined(separator: "\r\n")
    }

    /// -k is pooled, on connections of its own: a request that verifies never goes on a
    /// connection opened without verification (nginx's log names the connections), and
    /// `tls.allowInsecure` false refuses -k, sending nothing.
    func testInsecureRequestsHaveConnectionsOfTheirOwn() throws {
        let nginx = try Nginx(files: Fixtures.files)
        let daemon = try DaemonProcess(config: Fixtures.config(nginx))
        let https = nginx.url("/hello.txt", https: true)
        func connection(_ args: [String]) throws -> Int? {
            let before = nginx.log().count
            let r = try daemon.recker(["-sS", "-o", "/dev/null", "-w", "%{pooled}"] + args + [https])
            XCTAssertEqual(r.text, "1", "pooled: \(r.stderr)")
            // nginx logs a request just after its response went out.
            return nginx.waitForLog(count: before + 1).last?.connection
        }
        let insecure = try connection(["-k"])
        let verifying = try connection([])
        let insecureAgain = try connection(["-k"])
        let verifyingAgain = try connection([])
        XCTAssertNotNil(insecure)
        XCTAssertNotEqual(insecure, verifying, "a verifying request opened its own connection")
        XCTAssertEqual(insecure, insecureAgain, "-k reuses its own")
        XCTAssertEqual(verifying, verifyingAgain)
        XCTAssertEqual(daemon.stop(), 0)

        let strict = try DaemonProcess(config: #"{ "tls": { "caFile": "\#(nginx.caFile)", "allowInsecure": false } }"#)
        let before = nginx.log().count
        let refused = try strict.recker(["-sS", "-k", https])
        XCTAssertEqual(refused.status, 72, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("tls.allowInsecure"), refused.stderr)
        XCTAssertEqual(try strict.recker(["-sS", https]).text, "hello from nginx\n", "verifying requests still go")
        XCTAssertEqual(try strict.recker(["-sS", "-k", nginx.url("/hello.txt")]).text, "hello from nginx\n", "on http -k changes nothing")
        XCTAssertEqual(nginx.log().count, before + 2, "nothing of the refused one was sent")
        XCTAssertEqual(strict.stop(), 0)
    }

    func testServedAsCurlServesThem() throws {
        let nginx = try Nginx(files: Fixtures.files)
        let server = try FaultServer()
        // The daemon trusts no test CA: a request that went through its pool to nginx's
        // https would fail certificate checks.
        let daemon = try DaemonProcess(config: #"{ "http": { "enabled": true } }"#)
        let front = daemon.dir.appendingPathComponent("http.sock").path
        let https = nginx.url("/hello.txt", https: true)
        let port = nginx.httpsPort
        let cases: [[String]] = [
            ["--unix-socket", front, nginx.url("/hello.txt")],
            ["-i", "--unix-socket", front, nginx.url("/n/3.txt")],
            ["-k", https],
            ["-k", "-i", https],
            ["-k", nginx.url("/hello.txt")],
            ["--cacert", nginx.caFile, https],
            [https],
            ["--resolve", "reckerd.test:\(port):127.0.0.1", "--cacert", nginx.caFile, "-k", "https://reckerd.test:\(port)/hello.txt"],
            ["--connect-to", "reckerd.test:\(port):127.0.0.1:\(port)", "-k", "https://reckerd.test:\(port)/hello.txt"],
            ["--http1.1", "-k", "-i", https],
            ["--http2", "-i", nginx.url("/hello.txt")],
            ["-x", server.url(""), "http://reckerd.test/digest"],
            ["-4", "-i", "http://localhost:\(nginx.httpPort)/hello.txt"],
            ["-k", "-w", "%{http_version}\\n", "-o", "/dev/null", https],
        ]
        for args in cases {
            let c = try TestEnvironment.run(CLIRedirectTests.curl, ["-s"] + args)
            let r = try daemon.recker(["-s"] + args)
            XCTAssertEqual(r.status, c.status, "\(args): \(r.stderr)")
            XCTAssertEqual(normal(r.text), normal(c.text), "\(args)")
        }
        // recker-direct's engine stops, and its thread ends, before the process exits: none
        // of these runs may die at exit (its engine thread's last pass, then its thread-exit
        // destructors, raced the process's exit handlers: SIGABRT, "double free", about one
        // run in a few thousand with other tests beside it).
        for run in 0 ..< 60 {
            let r = try daemon.recker(["-s", "--cacert", nginx.caFile, "-o", "/dev/null", https])
            XCTAssertEqual(r.status, 0, "run \(run): \(r.stderr.prefix(3000))")
            if r.status != 0 { break }
        }
        let pooled = try daemon.recker(["-s", "--cacert", nginx.caFile, "-o", "/dev/null", "-w", "%{pooled}", https])
        XCTAssertEqual(pooled.text, "0")
        let stats = try daemon.stats()
        XCTAssertNil((stats["domains"] as? [String: Any])?["127.0.0.1:\(port)"], "nothing of it went through the pool: \(stats)")
        XCTAssertEqual(daemon.stop(), 0)
    }
}
