import Foundation
import ReckerProtocol
import ReckerTestSupport
import XCTest

/// curl's command-line grammar, as scripts write it: the real `recker` against a real
/// daemon and loopback upstreams, with the careless and hostile cases.
final class CLIGrammarTests: XCTestCase {
    /// Runs `recker` with no daemon at all: for mistakes refused before any connection.
    private func recker(_ args: [String]) throws -> TestEnvironment.Result {
        try TestEnvironment.run(TestEnvironment.binDir.appendingPathComponent("recker").path,
                                ["--socket", "/nonexistent/reckerd.sock"] + args)
    }

    /// -XPUT, -HX-A:1, -sm5, -dhello: values attached to their letters, letters bundled.
    func testAttachedValuesAndBundledLetters() throws {
        let echo = try CLIEchoUpstream()
        let daemon = try DaemonProcess()
        let r = try daemon.recker(["-XPUT", "-HX-A:1", "-sSm5", "-dhello", echo.url("/a")])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.text.hasPrefix("PUT /a\n"), r.text)
        XCTAssertTrue(r.text.contains("X-A: 1\n"), r.text)
        XCTAssertTrue(r.text.hasSuffix("\n\nhello"), r.text)
        let o = try daemon.recker(["-sSfLo-", echo.url("/b")])
        XCTAssertEqual(o.status, 0, o.stderr)
        XCTAssertTrue(o.text.hasPrefix("GET /b\n"), "-o- is stdout: \(o.text)")
    }

    /// A URL without a scheme is http (as curl guesses), after `--` and with --url too.
    func testSchemeLessURLsDoubleDashAndURLFlag() throws {
        let echo = try CLIEchoUpstream()
        let daemon = try DaemonProcess()
        for args in [["127.0.0.1:\(echo.port)/plain"], ["-s", "--", "127.0.0.1:\(echo.port)/plain"],
                     ["--url", "127.0.0.1:\(echo.port)/plain"]] {
            let r = try daemon.recker(["-w", "%{url_effective}"] + args)
            XCTAssertEqual(r.status, 0, "\(args): \(r.stderr)")
            XCTAssertTrue(r.text.hasPrefix("GET /plain\n"), r.text)
            XCTAssertTrue(r.text.hasSuffix("http://127.0.0.1:\(echo.port)/plain"), r.text)
        }
    }

    /// Unknown flags, flags that cannot mean the same on a shared pool, bad numbers,
    /// missing and unreadable files: each a clear message and curl's exit code, never a
    /// crash, never silently ignored.
    func testMistakesAreRefusedWithAReason() throws {
        let dir = try TestEnvironment.makeTempDir("mistakes")
        let cases: [([String], Int32, String)] = [
            (["--bogus", "http://127.0.0.1/"], 2, "option --bogus: is unknown"),
            (["-sY", "http://127.0.0.1/"], 2, "option -Y: is unknown"),
            (["--max-time=5", "http://127.0.0.1/"], 2, "is unknown"),
            (["--http3", "http://127.0.0.1/"], 2, "HTTP/3"),
            (["--proxy-insecure", "http://127.0.0.1/"], 2, "certificate checks"),
            (["batch", "-b", "jar.txt"], 2, "keeps no cookies"),
            (["--json"], 2, "requires parameter"),
            (["-m"], 2, "requires parameter"),
            (["-m", "-1", "http://127.0.0.1/"], 2, "expected seconds"),
            (["-m", "nan", "http://127.0.0.1/"], 2, "expected seconds"),
            (["-m", "4000000", "http://127.0.0.1/"], 2, "expected seconds"),
            (["--max-redirs", "1001", "http://127.0.0.1/"], 2, "from 0 to 1000"),
            (["--max-redirs", "-2", "http://127.0.0.1/"], 2, "from 0 to 1000"),
            (["--retry", "1001", "http://127.0.0.1/"], 2, "from 0 to 1000"),
            (["--retry", "x", "http://127.0.0.1/"], 2, "from 0 to 1000"),
            (["-d", "@\(dir.path)/missing", "http://127.0.0.1/"], 26, "cannot read"),
            (["-d", "@\(dir.path)", "http://127.0.0.1/"], 26, "cannot read"),
            (["-T", "\(dir.path)/missing", "http://127.0.0.1/"], 26, "cannot read"),
            (["-F", "f=@\(dir.path)/missing", "http://127.0.0.1/"], 26, "cannot read"),
            (["-w", "@\(dir.path)/missing", "http://127.0.0.1/"], 26, "cannot read"),
            (["-F", "novalue", "http://127.0.0.1/"], 2, "NAME=VALUE"),
            (["-d", "x", "-F", "a=b", "http://127.0.0.1/"], 2, "only select one"),
            (["-I", "-d", "x", "http://127.0.0.1/"], 2, "only select one"),
            (["-u", "user", "http://127.0.0.1/"], 2, "USER:PASSWORD"),
            (["-H", "NoColon", "http://127.0.0.1/"], 2, "has no colon"),
            (["-H", "Host:", "http://127.0.0.1/"], 2, "always sends Host"),
            (["-O", "http://127.0.0.1/"], 23, "no file name"),
            (["http://127.0.0.1/a[1-2"], 3, "unmatched ["),
            (["http://127.0.0.1/a{1,2"], 3, "unmatched {"),
            (["http://127.0.0.1/a]"], 3, "unmatched ]"),
            (["http://127.0.0.1/[2-1]"], 3, "bad range"),
            (["http://127.0.0.1/[a-9]"], 3, "bad range"),
            (["http://127.0.0.1/[1-9:0]"], 3, "bad range"),
            (["http://127.0.0.1/[1-1000]/[1-1000]"], 3, "more than 100000 URLs"),
            ([], 2, "no URL given"),
            (["stats", "-L"], 2, "does not apply to 'stats'"),
            (["batch", "-o", "x"], 2, "does not apply to 'batch'"),
            (["batch", "-c", "0"], 2, "from 1 to 100000"),
        ]
        for (args, code, text) in cases {
            let r = try recker(args)
            XCTAssertEqual(r.status, code, "\(args): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(text), "\(args): \(r.stderr)")
            XCTAssertTrue(r.text.isEmpty, "\(args) printed \(r.text)")
        }
    }

    /// -G with --data-urlencode builds the query; --json sends JSON with its headers; -u
    /// sends Basic credentials; -e and -b their headers; 'Name;' an empty header and
    /// 'User-Agent:' none at all.
    func testDataFormsAndHeaders() throws {
        let echo = try CLIEchoUpstream()
        let daemon = try DaemonProcess()
        let g = try daemon.recker(["-sS", "-G", "--data-urlencode", "q=a b&c/é", "--data-urlencode", "=x y", "-d", "p=1",
                                   echo.url("/g?z=0")])
        XCTAssertTrue(g.text.hasPrefix("GET /g?z=0&q=a+b%26c%2f%c3%a9&x+y&p=1\n"), g.text)
        // A multipart Content-Type given with -H gets the body's boundary, as curl appends it.
        let f = try daemon.recker(["-sS", "-F", "a=1", "-H", "Content-Type: multipart/form-data", echo.url("/f")])
        XCTAssertTrue(f.text.contains("Content-Type: multipart/form-data; boundary=------------------------"), f.text)
        let j = try daemon.recker(["-sS", "--json", #"{"a":1"#, "--json", "}", echo.url("/j")])
        XCTAssertTrue(j.text.hasPrefix("POST /j\n"), j.text)
        XCTAssertTrue(j.text.contains("Content-Type: application/json\n") && j.text.contains("Accept: application/json\n"), j.text)
        XCTAssertTrue(j.text.hasSuffix("\n\n{\"a\":1}"), "--json pieces are joined as they are: \(j.text)")
        let u = try daemon.recker(["-sS", "-u", "alice:s3cr:t", "-e", "http://from/", "-b", "a=1", "-b", "b=2", "-H", "X-Empty;",
                                   "-H", "User-Agent:", echo.url("/u")])
        XCTAssertTrue(u.text.contains("Authorization: Basic \(Data("alice:s3cr:t".utf8).base64EncodedString())\n"), u.text)
        XCTAssertTrue(u.text.contains("Referer: http://from/\n") && u.text.contains("Cookie: a=1; b=2\n"), u.text)
        XCTAssertEqual(u.text.components(separatedBy: "Cookie:").count, 2, "one Cookie header for two -b, as curl: \(u.text)")
        XCTAssertTrue(u.text.contains("X-Empty: \n"), u.text)
        XCTAssertFalse(u.text.contains("User-Agent"), u.text)
    }

    /// -F builds multipart/form-data as curl does: text fields, a file with its name and
    /// a guessed type, <FILE as a value, ;type= and ;filename=, binary bytes intact.
    func testMultipartForm() throws {
        let echo = try CLIEchoUpstream()
        let daemon = try DaemonProcess()
        let dir = try TestEnvironment.makeTempDir("form")
        let binary = Data((0 ... 255).map { UInt8($0) })
        try binary.write(to: dir.appendingPathComponent("blob.bin"))
        try "note text".write(to: dir.appendingPathComponent("up.txt"), atomically: true, encoding: .utf8)
        let r = try daemon.recker(["-sS", "-F", "name=value", "-F", "file=@\(dir.path)/up.txt",
                                   "-F", "raw=@\(dir.path)/blob.bin;type=application/x-test;filename=b.dat",
                                   "-F", "inline=<\(dir.path)/up.txt", "--form-string", "lit=@not-a-file", echo.url("/f")])
        XCTAssertEqual(r.status, 0, r.stderr)
        let text = String(decoding: r.stdout, as: UTF8.self)
        let boundaryLine = try XCTUnwrap(text.split(separator: "\n").first { $0.hasPrefix("Content-Type: multipart/form-data; boundary=") })
        let boundary = String(boundaryLine.dropFirst("Content-Type: multipart/form-data; boundary=".count))
        XCTAssertEqual(boundary.count, 40, boundary)
        var expected = Data()
        func add(_ s: String) { expected += Data(s.utf8) }
        add("--\(boundary)\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nvalue\r\n")
        add("--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"up.txt\"\r\nContent-Type: text/plain\r\n\r\nnote text\r\n")
        add("--\(boundary)\r\nContent-Disposition: form-data; name=\"raw\"; filename=\"b.dat\"\r\nContent-Type: application/x-test\r\n\r\n")
        expected += binary
        add("\r\n--\(boundary)\r\nContent-Disposition: form-data; name=\"inline\"\r\n\r\nnote text\r\n")
        add("--\(boundary)\r\nContent-Disposition: form-data; name=\"lit\"\r\n\r\n@not-a-file\r\n--\(boundary)--\r\n")
        XCTAssertTrue(r.stdout.suffix(expected.count) == expected, "the body as curl lays it out")
        XCTAssertTrue(text.contains("Content-Length: \(expected.count)\n"), text)
    }

    /// -T FILE is a PUT of the file (its name appended to a URL ending in /), -T - reads
    /// stdin; -O saves under the URL's name, in --output-dir.
    func testUploadAndRemoteName() throws {
        let echo = try CLIEchoUpstream()
        let daemon = try DaemonProcess()
        let dir = try TestEnvironment.makeTempDir("upload")
        try "file body".write(to: dir.appendingPathComponent("up load.txt"), atomically: true, encoding: .utf8)
        let t = try daemon.recker(["-sS", "-T", "\(dir.path)/up load.txt", echo.url("/dir/")])
        XCTAssertTrue(t.text.hasPrefix("PUT /dir/up%20load.txt\n"), t.text)
        XCTAssertTrue(t.text.hasSuffix("\n\nfile body"), t.text)
        let s = try daemon.recker(["-sS", "-T", "-", echo.url("/in")], stdin: Data("from stdin".utf8))
        XCTAssertTrue(s.text.hasPrefix("PUT /in\n") && s.text.hasSuffix("\n\nfrom stdin"), s.text)
        let o = try daemon.recker(["-sS", "-O", "--output-dir", dir.path, echo.url("/x/saved.txt?v=1")])
        XCTAssertEqual(o.status, 0, o.stderr)
        XCTAssertTrue(o.text.isEmpty)
        let saved = try String(contentsOfFile: dir.appendingPathComponent("saved.txt").path, encoding: .utf8)
        XCTAssertTrue(saved.hasPrefix("GET /x/saved.txt?v=1\n"), saved)
    }

    /// -D writes every head, -f prints no body, --fail-with-body prints it; both exit 22.
    func testDumpHeaderAndFailures() throws {
        let nginx = try Nginx(files: Fixtures.files)
        let daemon = try DaemonProcess(config: Fixtures.config(nginx))
        let dir = try TestEnvironment.makeTempDir("dump")
        let heads = dir.appendingPathComponent("heads").path
        let f = try daemon.recker(["-sS", "-f", "-D", heads, nginx.url("/missing")])
        XCTAssertEqual(f.status, 22)
        XCTAssertTrue(f.text.isEmpty)
        XCTAssertTrue(f.stderr.contains("The requested URL returned error: 404"), f.stderr)
        XCTAssertTrue(try String(contentsOfFile: heads, encoding: .utf8).hasPrefix("HTTP/1.1 404 Not Found\r\n"))
        let b = try daemon.recker(["-sS", "--fail-with-body", nginx.url("/missing")])
        XCTAssertEqual(b.status, 22)
        XCTAssertTrue(b.text.contains("404 Not Found"), "the body is printed: \(b.text)")
        let d = try daemon.recker(["-sS", "-D", "-", nginx.url("/hello.txt")])
        XCTAssertTrue(d.text.hasPrefix("HTTP/1.1 200 OK\r\n") && d.text.hasSuffix("\r\n\r\nhello from nginx\n"), d.text)
    }

    /// -v: the request head as sent and the response head on stderr, with the reckerd
    /// connection and whether it was reused; stdout holds the body alone.
    func testVerbose() throws {
        let nginx = try Nginx(files: Fixtures.files)
        let daemon = try DaemonProcess(config: Fixtures.config(nginx))
        let first = try daemon.recker(["-v", nginx.url("/hello.txt")])
        XCTAssertEqual(first.text, "hello from nginx\n")
        for line in ["> GET /hello.txt HTTP/1.1\r\n", "> Host: 127.0.0.1:\(nginx.httpPort)\r\n", "> User-Agent: recker/\(Message.release)\r\n",
                     "< HTTP/1.1 200 OK\r\n", "< Content-Length: 17\r\n", "(new)"] {
            XCTAssertTrue(first.stderr.contains(line), "\(line) in \(first.stderr)")
        }
        let second = try daemon.recker(["-v", nginx.url("/hello.txt")])
        XCTAssertTrue(second.stderr.contains("(reused)"), second.stderr)
    }
}
