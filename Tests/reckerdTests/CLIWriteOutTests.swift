import Foundation
import ReckerProtocol
import ReckerTestSupport
import XCTest

/// -w as scripts use it: curl's variables (compared with the real curl where both know the
/// value), reckerd's own, unknown ones warned about, and nothing trusted from a response
/// that broke.
final class CLIWriteOutTests: XCTestCase {
    /// Variables whose values recker and curl must print alike for the same request.
    static let shared = "%{http_code} %{response_code} %{content_type} %{num_redirects} %{url_effective} %{url} "
        + "%{redirect_url} %{method} %{scheme} %{size_download} %{size_upload} %{exitcode} %{num_headers} "
        + "%{http_version} %{filename_effective} %header{content-length} %header{x-none} [%{errormsg}] %{ssl_verify_result} "
        + "%{remote_ip} %{remote_port} %%"

    /// A long format with "%{" and no "}" (100 KB of them) prints as curl prints it, in
    /// time linear in its length (it spun a core for minutes).
    func testAnUnclosedFormatOfAnyLengthEnds() throws {
        let nginx = try Nginx(files: Fixtures.files)
        let daemon = try DaemonProcess(config: Fixtures.config(nginx))
        let format = String(repeating: "%{", count: 50_000) + "%{http_code}"
        let file = daemon.dir.appendingPathComponent("format.txt")
        try format.write(to: file, atomically: true, encoding: .utf8)
        let args = ["-s", "-o", "/dev/null", "-w", "@" + file.path, nginx.url("/hello.txt")]
        let r = try TestEnvironment.run(TestEnvironment.binDir.appendingPathComponent("recker").path,
                                        ["--socket", daemon.socketPath] + args, timeout: 30)
        let c = try TestEnvironment.run(CLIRedirectTests.curl, args, timeout: 30)
        XCTAssertEqual(r.status, c.status)
        XCTAssertEqual(r.text, c.text)
        XCTAssertEqual(daemon.stop(), 0)
    }

    func testTheSameValuesAsCurl() throws {
        let nginx = try Nginx(files: Fixtures.files)
        let server = try FaultServer()
        let daemon = try DaemonProcess(config: Fixtures.config(nginx))
        let cases: [[String]] = [
            [nginx.url("/hello.txt")],
            [nginx.url("/size/0")],
            ["-d", "abc", server.url("/digest")],
            ["-I", nginx.url("/hello.txt")],
            ["-L", server.url("/moved/302/" + nginx.url("/hello.txt"))],
            [server.url("/moved/301/" + nginx.url("/hello.txt"))],
            ["-f", nginx.url("/missing")],
            [nginx.url("/missing")],
            ["127.0.0.1:\(nginx.httpPort)/hello.txt"],
        ]
        for args in cases {
            let common = ["-s", "-o", "/dev/null", "-w", Self.shared] + args
            let r = try daemon.recker(common)
            let c = try TestEnvironment.run(CLIRedirectTests.curl, common)
            XCTAssertEqual(r.text, c.text, "\(args)")
            XCTAssertEqual(r.status, c.status, "\(args)")
        }
    }

    /// The connection's facts (PROTOCOL.md §2.5): the addresses and ports as the kernel saw
    /// them, the name lookup's time, and the upstream's own reason phrase under -i.
    func testConnectionFactsAndTheReasonPhrase() throws {
        let echo = try CLIEchoUpstream()
        let daemon = try DaemonProcess()
        let first = try daemon.recker(["-s", "-o", "/dev/null", "-w", "%{remote_ip} %{remote_port} %{local_ip} %{local_port} %{num_connects}",
                                       echo.url("/any")]).text.split(separator: " ").map(String.init)
        XCTAssertEqual(first[0], "127.0.0.1")
        XCTAssertEqual(first[1], String(echo.port))
        XCTAssertEqual(first[2], "127.0.0.1")
        let local = try XCTUnwrap(Int(first[3]))
        XCTAssertGreaterThan(local, 0)
        let again = try daemon.recker(["-s", "-o", "/dev/null", "-w", "%{local_port} %{num_connects} %{time_namelookup}", echo.url("/any")])
            .text.split(separator: " ").map(String.init)
        XCTAssertEqual(again[0], String(local), "the reused connection's own port")
        XCTAssertEqual(again[1], "0")
        XCTAssertEqual(Double(again[2]), 0, "no lookup on a reused connection")
        let head = try daemon.recker(["-si", echo.url("/reason")]).text
        XCTAssertTrue(head.hasPrefix("HTTP/1.1 200 Fine By Me\r\n"), head)
    }

    /// A connect that fails: 000, the exit code and the message, as curl prints them.
    func testAFailedTransfer() throws {
        let daemon = try DaemonProcess()
        let r = try daemon.recker(["-s", "-w", "%{http_code} %{exitcode} %{num_connects} %{size_download}", "http://127.0.0.1:9/"])
        let c = try TestEnvironment.run(CLIRedirectTests.curl, ["-s", "-w", "%{http_code} %{exitcode} %{num_connects} %{size_download}", "http://127.0.0.1:9/"])
        XCTAssertEqual(r.status, 7)
        XCTAssertEqual(r.text, c.text)
        let message = try daemon.recker(["-s", "-w", "%{errormsg}", "http://127.0.0.1:9/"])
        XCTAssertTrue(message.text.contains("127.0.0.1 port 9"), message.text)
    }

    /// A response whose head arrived and whose body then broke: -w does not print its
    /// status as if it had been delivered.
    func testAResponseThatBrokeHasNoStatus() throws {
        let echo = try CLIEchoUpstream()
        let daemon = try DaemonProcess()
        let r = try daemon.recker(["-s", "-o", "/dev/null", "-w", "%{http_code} %{content_type}|%header{content-length}|%{exitcode}",
                                   echo.url("/broken")])
        XCTAssertEqual(r.status, 18, "a body cut short is curl's 18 (CURLE_PARTIAL_FILE)")
        XCTAssertEqual(r.text, "000 ||\(r.status)")
    }

    /// reckerd's own variables: reuse and the connection id across two calls, pooled, the
    /// queue time; %{json} is one JSON object with curl's keys and these.
    func testReckerdVariablesAndJSON() throws {
        let nginx = try Nginx(files: Fixtures.files)
        let daemon = try DaemonProcess(config: Fixtures.config(nginx))
        let format = "%{reused} %{connection_id} %{pooled} %{may_have_reached_upstream} %{num_connects}"
        let first = try daemon.recker(["-sS", "-o", "/dev/null", "-w", format, nginx.url("/hello.txt")]).text.split(separator: " ")
        let second = try daemon.recker(["-sS", "-o", "/dev/null", "-w", format, nginx.url("/hello.txt")]).text.split(separator: " ")
        XCTAssertEqual(first[0], "0")
        XCTAssertEqual(second[0], "1")
        XCTAssertEqual(first[1], second[1], "the same upstream connection")
        XCTAssertEqual(first[2], "1")
        XCTAssertEqual(first[3], "1")
        XCTAssertEqual(first[4], "1")
        XCTAssertEqual(second[4], "0")
        let json = try daemon.recker(["-sS", "-o", "/dev/null", "-w", "%{json}", nginx.url("/hello.txt")])
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: json.stdout) as? [String: Any], json.text)
        XCTAssertEqual(object["http_code"] as? Int, 200)
        XCTAssertEqual(object["url_effective"] as? String, nginx.url("/hello.txt"))
        XCTAssertEqual(object["reused"] as? Int, 1)
        XCTAssertEqual(object["size_download"] as? Int, 17)
        XCTAssertTrue(object["errormsg"] is NSNull)
        for key in ["time_total", "time_queue", "time_namelookup", "remote_ip", "local_port", "connection_id", "pooled"] {
            XCTAssertNotNil(object[key], key)
        }
        let headers = try daemon.recker(["-sS", "-o", "/dev/null", "-w", "%{header_json}", nginx.url("/hello.txt")])
        let h = try XCTUnwrap(try JSONSerialization.jsonObject(with: headers.stdout) as? [String: [String]], headers.text)
        XCTAssertEqual(h["content-length"], ["17"])
    }

    /// An unknown variable is warned about on stderr, as curl does, and prints nothing;
    /// %{stderr} and %{stdout} switch the stream; -w @FILE and @- read the format.
    func testUnknownVariablesStreamsAndFormatFiles() throws {
        let nginx = try Nginx(files: Fixtures.files)
        let daemon = try DaemonProcess(config: Fixtures.config(nginx))
        let r = try daemon.recker(["-sS", "-o", "/dev/null", "-w", "a%{nope}b %{stderr}%{http_code}%{stdout} c %{", nginx.url("/hello.txt")])
        XCTAssertEqual(r.text, "ab  c %{")
        XCTAssertEqual(r.stderr, "recker: unknown --write-out variable: 'nope'\n200")
        let dir = try TestEnvironment.makeTempDir("format")
        let file = dir.appendingPathComponent("fmt").path
        try "%{http_code}\\n".write(toFile: file, atomically: true, encoding: .utf8)
        XCTAssertEqual(try daemon.recker(["-sS", "-o", "/dev/null", "-w", "@\(file)", nginx.url("/hello.txt")]).text, "200\n")
        XCTAssertEqual(try daemon.recker(["-sS", "-o", "/dev/null", "-w", "@-", nginx.url("/hello.txt")],
                                         stdin: Data("%{size_download}".utf8)).text, "17")
    }
}
