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
        // recker-direct's engine stops before the process exits: none of 25 runs may die at
        // exit (a race between its engine thread's last pass and the process's end killed
        // one in a few hundred with SIGABRT).
        for run in 0 ..< 25 {
            let r = try daemon.recker(["-s", "-k", "-o", "/dev/null", https])
            XCTAssertEqual(r.status, 0, "run \(run): \(r.stderr.prefix(300))")
        }
        let pooled = try daemon.recker(["-s", "-k", "-o", "/dev/null", "-w", "%{pooled}", https])
        XCTAssertEqual(pooled.text, "0")
        let stats = try daemon.stats()
        XCTAssertNil((stats["domains"] as? [String: Any])?["127.0.0.1:\(port)"], "nothing of it went through the pool: \(stats)")
        XCTAssertEqual(daemon.stop(), 0)
    }
}
