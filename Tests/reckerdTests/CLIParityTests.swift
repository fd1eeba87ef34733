import Foundation
import ReckerProtocol
import ReckerTestSupport
import XCTest

/// recker and the real curl, run with the same arguments against the same loopback
/// upstreams: the same stdout (Date headers left out: they may straddle a second) and the
/// same exit code.
///
/// Differences kept on purpose, so not compared here:
/// - stderr: recker's messages name the reckerd error code and say what to do; curl has a
///   progress meter and its own wording.
/// - Request headers the upstream sees: the User-Agent (recker/VERSION).
/// - An HTTP/1 reason phrase is RFC 9110's, not the upstream's own (the wire does not carry
///   it): nginx's and the fault server's phrases are the standard ones, so they agree here.
final class CLIParityTests: XCTestCase {
    private func withoutDates(_ data: Data) -> String {
        String(decoding: data, as: UTF8.self).components(separatedBy: "\r\n").filter { !$0.lowercased().hasPrefix("date: ") }
            .joined(separator: "\r\n")
    }

    func testSameOutputAndExitCodeAsCurl() throws {
        let nginx = try Nginx(files: Fixtures.files)
        let server = try FaultServer()
        let daemon = try DaemonProcess(config: Fixtures.config(nginx))
        let dir = try TestEnvironment.makeTempDir("parity")
        let upload = dir.appendingPathComponent("upload.bin").path
        try Fixtures.bytes(3000, seed: 9).write(to: URL(fileURLWithPath: upload))
        let hello = nginx.url("/hello.txt")
        let digest = server.url("/digest")
        let chain = server.url("/moved/302/" + server.url("/moved/308/" + hello))
        let cases: [[String]] = [
            [hello],
            ["-i", hello],
            ["-I", hello],
            ["-i", nginx.url("/missing")],
            ["-f", nginx.url("/missing")],
            ["--fail-with-body", nginx.url("/missing")],
            ["-L", chain],
            ["-L", "-i", chain],
            ["-L", "-I", chain],
            ["-i", chain],
            ["-L", "--max-redirs", "1", chain],
            ["-d", "a=1", "-d", "b=2", digest],
            ["--data-urlencode", "q=a b&c", "--data-raw", "@x", digest],
            ["-G", "-d", "x=1", digest],
            ["--json", #"{"a":1}"#, digest],
            ["-T", upload, digest],
            ["--data-binary", "@\(upload)", digest],
            ["-XDELETE", digest],
            ["-L", "-d", "hello", server.url("/moved/303/" + digest)],
            ["-L", "-d", "hello", server.url("/moved/307/" + digest)],
            ["-o", "-", hello],
            ["-sSfo", "/dev/null", "-w", "%{http_code} %{size_download}\\n", hello],
            ["127.0.0.1:\(nginx.httpPort)/hello.txt"],
            ["--compressed", nginx.url("/size/65536")],
            ["-m", "1", server.url("/delay/3000")],
            ["http://127.0.0.1:9/"],
            ["-D", "-", "-o", "/dev/null", hello],
        ]
        for args in cases {
            let r = try daemon.recker(["-s"] + args)
            let c = try TestEnvironment.run(CLIRedirectTests.curl, ["-s"] + args)
            XCTAssertEqual(r.status, c.status, "\(args): \(r.stderr)")
            XCTAssertEqual(withoutDates(r.stdout), withoutDates(c.stdout), "\(args)")
        }
        // HTTP/2 over TLS: curl's status line "HTTP/2 200 " (a space, no phrase).
        let https = nginx.url("/hello.txt", https: true)
        let r = try daemon.recker(["-s", "-i", https])
        let c = try TestEnvironment.run(CLIRedirectTests.curl, ["-s", "-i", "--cacert", nginx.caFile, https])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(withoutDates(r.stdout), withoutDates(c.stdout))
    }
}
