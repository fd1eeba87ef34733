import Foundation
import ReckerProtocol
import ReckerTestSupport
import XCTest

/// -L as curl follows: every hop's head with -i, --max-redirs, credentials kept to the
/// first origin, only http and https; and --retry.
final class CLIRedirectTests: XCTestCase {
    /// The real curl on this machine, for side-by-side comparisons.
    static let curl = "/usr/bin/curl"

    /// Status lines of a -i output, in order.
    private func statusLines(_ text: String) -> [String] {
        text.split(separator: "\r\n").filter { $0.hasPrefix("HTTP/") }.map(String.init)
    }

    /// `-L -i` prints each hop's head and the final body, as curl does; -I -L the heads.
    func testIncludeShowsEveryHopAsCurlDoes() throws {
        let nginx = try Nginx(files: Fixtures.files)
        let server = try FaultServer()
        let daemon = try DaemonProcess(config: Fixtures.config(nginx))
        let url = server.url("/moved/301/" + server.url("/moved/303/" + nginx.url("/hello.txt")))
        for args in [["-sS", "-L", "-i"], ["-sS", "-L", "-I"]] {
            let r = try daemon.recker(args + [url])
            let c = try TestEnvironment.run(Self.curl, args + [url])
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertEqual(statusLines(r.text), statusLines(c.text), "\(args)")
            XCTAssertEqual(statusLines(r.text), ["HTTP/1.1 301 Moved Permanently", "HTTP/1.1 303 See Other", "HTTP/1.1 200 OK"])
            XCTAssertEqual(r.text.hasSuffix("\r\n\r\nhello from nginx\n"), c.text.hasSuffix("\r\n\r\nhello from nginx\n"), "\(args)")
        }
        let plain = try daemon.recker(["-sS", "-i", nginx.url("/missing")])
        XCTAssertTrue(plain.text.hasPrefix("HTTP/1.1 404 Not Found\r\n"), "the reason phrase is kept: \(plain.text)")
    }

    /// --max-redirs N allows N hops; one more is exit 47 with curl's words. Without -L the
    /// Location is %{redirect_url}; with it, %{num_redirects} and %{url_effective}.
    func testMaxRedirectsAndTheirWriteOut() throws {
        let server = try FaultServer()
        let daemon = try DaemonProcess()
        let final = server.url("/digest")
        let url = server.url("/moved/302/" + server.url("/moved/307/" + final))
        let format = "%{http_code} %{num_redirects} %{url_effective} %{redirect_url}"
        let two = try daemon.recker(["-sS", "-L", "--max-redirs", "2", "-o", "/dev/null", "-w", format, url])
        XCTAssertEqual(two.status, 0, two.stderr)
        XCTAssertEqual(two.text, "200 2 \(final) ")
        let one = try daemon.recker(["-sS", "-L", "--max-redirs", "1", "-o", "/dev/null", "-w", format, url])
        XCTAssertEqual(one.status, 47)
        XCTAssertTrue(one.stderr.contains("Maximum (1) redirects followed"), one.stderr)
        let zero = try daemon.recker(["-sS", "-L", "--max-redirs", "0", "-o", "/dev/null", url])
        XCTAssertEqual(zero.status, 47)
        let none = try daemon.recker(["-sS", "-o", "/dev/null", "-w", format, url])
        XCTAssertEqual(none.text, "302 0 \(url) \(server.url("/moved/307/" + final))")
        let curl = try TestEnvironment.run(Self.curl, ["-sS", "-o", "/dev/null", "-w", format, url])
        XCTAssertEqual(none.text, curl.text, "as curl")
    }

    /// A path-absolute and a scheme-relative Location resolve against the URL they came from.
    func testRelativeLocations() throws {
        let server = try FaultServer()
        let daemon = try DaemonProcess()
        for location in ["/digest", "//127.0.0.1:\(server.port)/digest"] {
            let r = try daemon.recker(["-sS", "-L", "-w", " %{url_effective}", server.url("/moved/302/\(location)")])
            XCTAssertEqual(r.status, 0, "\(location): \(r.stderr)")
            XCTAssertTrue(r.text.hasSuffix(" \(server.url("/digest"))"), "\(location): \(r.text)")
        }
    }

    /// Credentials and cookies named on the command line go to the first origin only (as
    /// curl since 7.83); a redirect to anything but http/https, or with credentials in the
    /// URL, is refused.
    func testCredentialsStayWithTheFirstOrigin() throws {
        let server = try FaultServer()
        let daemon = try DaemonProcess()
        let same = try daemon.recker(["-sS", "-L", "-u", "a:b", "-b", "k=v", server.url("/moved/302/" + server.url("/headers"))]).text
        XCTAssertTrue(same.contains("Authorization: Basic YTpi") && same.contains("Cookie: k=v"), same)
        let other = try daemon.recker(["-sS", "-L", "-u", "a:b", "-b", "k=v", "-H", "X-Keep: 1",
                                       server.url("/moved/302/http://localhost:\(server.port)/headers")]).text
        XCTAssertFalse(other.contains("Authorization") || other.contains("Cookie"), other)
        XCTAssertTrue(other.contains("X-Keep: 1"), other)
        // Credentials in the URL: Basic authorization, as curl sends them, never in the URL.
        let inURL = try daemon.recker(["-sS", "http://a:b@127.0.0.1:\(server.port)/headers"]).text
        XCTAssertTrue(inURL.contains("Authorization: Basic YTpi"), inURL)
        let ftp = try daemon.recker(["-sS", "-L", server.url("/moved/302/ftp://127.0.0.1:\(server.port)/x")])
        XCTAssertEqual(ftp.status, 1, "curl's code for a scheme it does not follow")
        XCTAssertTrue(ftp.stderr.contains("only http and https"), ftp.stderr)
        let creds = try daemon.recker(["-sS", "-L", server.url("/moved/302/http://u:p@127.0.0.1:\(server.port)/digest")])
        XCTAssertEqual(creds.status, 8)
        XCTAssertTrue(creds.stderr.contains("credentials"), creds.stderr)
    }

    /// --retry N tries again after a 503 to a GET (waiting 1 s, then 2, as curl) and says so as
    /// curl does (not under -s); a POST is not repeated; a refused connection only with --retry-connrefused.
    func testRetry() throws {
        let echo = try CLIEchoUpstream()
        let daemon = try DaemonProcess()
        let ok = try daemon.recker(["--retry", "2", echo.url("/flaky/2/a")])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertEqual(ok.text, "ok", "the 503 bodies are not printed")
        XCTAssertTrue(ok.stderr.contains("Warning: Problem : HTTP error. Will retry in 1 seconds. 2 retries left.\n"
                                         + "Warning: Problem : HTTP error. Will retry in 2 seconds. 1 retries left.\n"), ok.stderr)
        XCTAssertEqual(try daemon.recker(["-s", echo.url("/count/a")]).text, "3")
        let short = try daemon.recker(["-sS", "-f", "--retry", "1", echo.url("/flaky/5/b")])
        XCTAssertEqual(short.status, 22, "out of tries: the last answer stands")
        XCTAssertEqual(try daemon.recker(["-s", echo.url("/count/b")]).text, "2")
        let post = try daemon.recker(["-sS", "--retry", "3", "-d", "x", echo.url("/flaky/1/c")])
        XCTAssertEqual(post.text, "busy", "a POST is not sent twice")
        XCTAssertEqual(try daemon.recker(["-s", echo.url("/count/c")]).text, "1")
        let refused = try daemon.recker(["--retry", "1", "http://127.0.0.1:9/"])
        XCTAssertEqual(refused.status, 7)
        XCTAssertFalse(refused.stderr.contains("Will retry"), refused.stderr)
        let connrefused = try daemon.recker(["--retry", "1", "--retry-delay", "1", "--retry-connrefused", "http://127.0.0.1:9/"])
        let quiet = try daemon.recker(["-sS", "--retry", "1", "--retry-connrefused", "http://127.0.0.1:9/"])
        XCTAssertFalse(quiet.stderr.contains("Warning"), "-s hides the warnings, as in curl: \(quiet.stderr)")
        XCTAssertEqual(connrefused.status, 7)
        XCTAssertTrue(connrefused.stderr.contains("Warning: Problem : connection refused. Will retry in 1 seconds. 1 retries left."),
                      connrefused.stderr)
    }
}
