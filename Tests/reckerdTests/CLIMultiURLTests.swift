import Foundation
import ReckerProtocol
import ReckerTestSupport
import XCTest

/// Several URLs in one call, URL globbing, and the -o/-O that go with them: recker and
/// the real curl, each in an empty directory of its own, must print the same, exit the
/// same and leave the same files (names and bytes).
final class CLIMultiURLTests: XCTestCase {
    func files(_ dir: URL) -> [String: Data] {
        var out: [String: Data] = [:]
        let e = FileManager.default.enumerator(at: dir, includingPropertiesForKeys: nil)
        while let u = e?.nextObject() as? URL {
            if let d = try? Data(contentsOf: u) { out[String(u.path.dropFirst(dir.path.count))] = d }
        }
        return out
    }

    /// Date headers left out: they may straddle a second.
    func normal(_ text: String) -> String {
        text.components(separatedBy: "\r\n").filter { !$0.lowercased().hasPrefix("date: ") }.joined(separator: "\r\n")
    }

    func testSeveralURLsAndGlobsAsCurl() throws {
        let nginx = try Nginx(files: Fixtures.files)
        let server = try FaultServer()
        let daemon = try DaemonProcess(config: Fixtures.config(nginx))
        let base = "http://127.0.0.1:\(nginx.httpPort)"
        let format = try TestEnvironment.makeTempDir("format").appendingPathComponent("w.txt")
        try "code=%{http_code}\\n\nsize=%{size_download}\\n\n".write(to: format, atomically: true, encoding: .utf8)
        let cases: [[String]] = [
            ["\(base)/hello.txt", "\(base)/n/9.txt"],
            ["\(base)/n/{1,2,3}.txt"],
            ["\(base)/n/[1-3].txt"],
            ["\(base)/n/[1-9:4].txt"],
            ["\(base)/n/[01-3].txt"],
            ["-w", "%{url}\\n", "\(base)/n/{1\\,2,3}.txt"],
            ["\(base)/n/{}.txt"],
            ["\(base)/n/[1-3:5].txt"],
            ["\(base)/n/[a-c:3].txt"],
            ["\(base)/{n,m}/[1-2].txt", "-w", "%{url} %{http_code}\\n"],
            ["\(base)/n/[1-2].txt", "-o", "out_#1.txt"],
            ["-o", "one.txt", "\(base)/n/1.txt", "-o", "two.txt", "\(base)/n/2.txt"],
            ["-O", "\(base)/n/1.txt", "-O", "\(base)/n/2.txt"],
            ["--remote-name-all", "\(base)/n/1.txt", "\(base)/n/2.txt"],
            ["-O", "\(base)/n/[1-2].txt"],
            ["-f", "\(base)/hello.txt", "\(base)/missing"],
            ["-f", "\(base)/missing", "\(base)/hello.txt"],
            ["http://127.0.0.1:9/", "\(base)/hello.txt"],
            ["\(base)/hello.txt", "http://127.0.0.1:9/"],
            ["-g", "\(base)/n/[1-2].txt"],
            ["-I", "\(base)/n/[1-2].txt"],
            ["-i", "\(base)/hello.txt", server.url("/digest")],
            ["-d", "x=1", server.url("/digest"), server.url("/digest?b")],
            ["-w", "@\(format.path)", "\(base)/hello.txt"],
        ]
        for args in cases {
            let cdir = try TestEnvironment.makeTempDir("curl")
            let rdir = try TestEnvironment.makeTempDir("recker")
            let c = try TestEnvironment.run(CLIRedirectTests.curl, ["-s"] + args, directory: cdir)
            let r = try daemon.recker(["-s"] + args, directory: rdir)
            XCTAssertEqual(r.status, c.status, "\(args): \(r.stderr)")
            XCTAssertEqual(normal(r.text), normal(c.text), "\(args)")
            XCTAssertEqual(files(rdir), files(cdir), "\(args)")
        }
        // -e ';auto': the hop after a redirect names the URL it came from; the upstream's
        // view of Referer (its echo of the headers; their order differs, so only Referer).
        let hop = server.url("/redirect/" + server.url("/headers"))
        let args = ["-s", "-L", "-e", "http://from.example/;auto", hop]
        func referers(_ text: String) -> [Substring] { text.split(separator: "\n").filter { $0.lowercased().hasPrefix("referer:") } }
        let c = try TestEnvironment.run(CLIRedirectTests.curl, args)
        let r = try daemon.recker(args)
        XCTAssertEqual(referers(r.text), referers(c.text))
        XCTAssertEqual(referers(r.text), ["Referer: \(hop)"], r.text)
        XCTAssertEqual(daemon.stop(), 0)
    }
}
