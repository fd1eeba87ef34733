import Foundation
import ReckerProtocol
import ReckerTestSupport
import XCTest

/// Cookies as curl keeps them for one invocation (-b FILE, -b 'N=V', -c FILE, -c -, -j,
/// across the hops of -L), in the `recker` process: each command run with the real curl
/// and with recker, each in its own directory (a step's jar feeds the next step there);
/// stdout, the exit code and every file written must be the same.
final class CLICookieTests: XCTestCase {
    func files(_ dir: URL) -> [String: String] {
        var out: [String: String] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? [] {
            // Max-Age expiries are "now + 86400": a second may pass between the two runs.
            let text = (try? String(contentsOf: dir.appendingPathComponent(name), encoding: .utf8)) ?? ""
            out[name] = text.split(separator: "\n", omittingEmptySubsequences: false).map { line in
                var f = line.split(separator: "\t", omittingEmptySubsequences: false)
                if f.count == 7, f[5] == "c", let t = Int(f[4]) { f[4] = Substring(String(t / 10)) }
                return f.joined(separator: "\t")
            }.joined(separator: "\n")
        }
        return out
    }

    func testCookieFlowsAsCurl() throws {
        let server = try FaultServer()
        let daemon = try DaemonProcess()
        let ip = "http://127.0.0.1:\(server.port)"
        let name = "http://localhost:\(server.port)"
        let cdir = try TestEnvironment.makeTempDir("curl-cookies")
        let rdir = try TestEnvironment.makeTempDir("recker-cookies")
        for dir in [cdir, rdir] {
            try "Set-Cookie: h=1\nSet-Cookie: i=2; Path=/cookies/sub\n".write(to: dir.appendingPathComponent("headers.txt"), atomically: true, encoding: .utf8)
        }
        // In order: later steps read the jars earlier ones wrote.
        let steps: [[String]] = [
            ["-c", "jar1.txt", "\(ip)/cookies/set"],
            ["-b", "jar1.txt", "\(ip)/cookies/sub/echo"],
            ["-b", "jar1.txt", "-c", "jar2.txt", "-L", "\(ip)/cookies/redirect//cookies/sub/echo"],
            ["-c", "empty.txt", "\(ip)/cookies/none"],
            ["-c", "-", "\(name)/cookies/set"],
            ["-b", "headers.txt", "\(ip)/cookies/sub/x"],
            ["-b", "missing.txt", "\(ip)/cookies/x"],
            ["-b", "jar1.txt", "-b", "x=y", "\(ip)/cookies/sub/echo"],
            ["-b", "jar1.txt", "-c", "jar3.txt", "\(ip)/cookies/del"],
            ["-j", "-b", "jar1.txt", "\(ip)/cookies/echo"],
            ["-b", "jar2.txt", "-c", "jar2.txt", "\(ip)/cookies/set", "\(ip)/cookies/echo"],
            ["-b", "jar1.txt", "\(name)/cookies/echo"],
            ["-c", "jar4.txt", "-L", "\(ip)/cookies/redirect/\(name)/cookies/echo"],
            ["-c", "/dev/null", "\(ip)/cookies/set"],
        ]
        for args in steps {
            let c = try TestEnvironment.run(CLIRedirectTests.curl, ["-s"] + args, directory: cdir)
            let r = try daemon.recker(["-s"] + args, directory: rdir)
            XCTAssertEqual(r.status, c.status, "\(args): \(r.stderr)")
            XCTAssertEqual(files(rdir), files(cdir), "\(args)")
            let strip = { (t: String) in t.split(separator: "\n").map { l -> String in
                var f = l.split(separator: "\t", omittingEmptySubsequences: false)
                if f.count == 7, f[5] == "c", let t = Int(f[4]) { f[4] = Substring(String(t / 10)) }
                return f.joined(separator: "\t")
            }.joined(separator: "\n") }
            XCTAssertEqual(strip(r.text), strip(c.text), "\(args)")
        }
        XCTAssertTrue(try String(contentsOf: rdir.appendingPathComponent("jar2.txt"), encoding: .utf8).contains("\tr\t9"))
        XCTAssertEqual(daemon.stop(), 0)
    }
}
