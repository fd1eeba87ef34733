import Foundation
import ReckerProtocol
import ReckerTestSupport
import XCTest

/// `recker batch` with the command line's -H and -f, its output directory, binary bodies
/// and its progress line.
final class CLIBatchTests: XCTestCase {
    private func lines(_ r: TestEnvironment.Result) throws -> [[String: Any]] {
        try r.text.split(separator: "\n").map { try XCTUnwrap(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
    }

    /// -H goes with every item (an item's own header of the same name wins); -f makes a
    /// status >= 400 a failed item and the exit 73.
    func testHeadersAndFail() throws {
        let server = try FaultServer()
        let daemon = try DaemonProcess()
        let input = server.url("/headers") + "\n" + #"{"url":"\#(server.url("/headers"))","headers":{"X-Team":"own"}}"# + "\n"
        let r = try daemon.recker(["batch", "-H", "X-Team: cli", "-H", "X-Other: 1"], stdin: Data(input.utf8))
        XCTAssertEqual(r.status, 0, r.stderr)
        let out = try lines(r)
        let bodies = out.compactMap { $0["body"] as? String }.sorted { $0.count < $1.count }
        XCTAssertEqual(bodies.count, 2)
        XCTAssertTrue(bodies.contains { $0.contains("X-Team: cli") && $0.contains("X-Other: 1") }, "\(bodies)")
        XCTAssertTrue(bodies.contains { $0.contains("X-Team: own") && !$0.contains("X-Team: cli") && $0.contains("X-Other: 1") }, "\(bodies)")
        let failing = server.url("/nothing-here") + "\n" + server.url("/digest") + "\n"
        let plain = try daemon.recker(["batch"], stdin: Data(failing.utf8))
        XCTAssertEqual(plain.status, 0, "without -f a 404 is a result")
        let f = try daemon.recker(["batch", "-f"], stdin: Data(failing.utf8))
        XCTAssertEqual(f.status, 73)
        let items = try lines(f)
        XCTAssertEqual(items.first { $0["url"] as? String == server.url("/nothing-here") }?["error"] as? String, "HTTP_ERROR")
        XCTAssertEqual(items.first { $0["url"] as? String == server.url("/nothing-here") }?["status"] as? Int, 404)
        XCTAssertEqual((items.last?["summary"] as? [String: Any])?["failed"] as? Int, 1)
    }

    /// A body that is not UTF-8 comes whole as body_base64; a text body as body; a missing
    /// --output-dir is refused before anything is sent.
    func testBinaryBodiesAndOutputDir() throws {
        let nginx = try Nginx(files: Fixtures.files)
        let daemon = try DaemonProcess(config: Fixtures.config(nginx))
        let input = nginx.url("/size/65536") + "\n" + nginx.url("/hello.txt") + "\n"
        let r = try daemon.recker(["batch"], stdin: Data(input.utf8))
        XCTAssertEqual(r.status, 0, r.stderr)
        let out = try lines(r)
        let binary = try XCTUnwrap(out.first { $0["url"] as? String == nginx.url("/size/65536") })
        XCTAssertNil(binary["body"])
        XCTAssertEqual(Data(base64Encoded: try XCTUnwrap(binary["body_base64"] as? String)), Fixtures.files["size/65536"])
        XCTAssertEqual(out.first { $0["url"] as? String == nginx.url("/hello.txt") }?["body"] as? String, "hello from nginx\n")
        let missing = try daemon.recker(["batch", "--output-dir", "/nonexistent/dir"], stdin: Data(input.utf8))
        XCTAssertEqual(missing.status, 2)
        XCTAssertTrue(missing.stderr.contains("--output-dir /nonexistent/dir: no such directory"), missing.stderr)
        XCTAssertTrue(missing.text.isEmpty)
        let up = #"{"url":"\#(nginx.url("/hello.txt"))","method":"POST","body_base64":"AAEC/w=="}"# + "\n"
        let bad = try daemon.recker(["batch"], stdin: Data(#"{"url":"x","body_base64":"***"}"#.utf8))
        XCTAssertEqual(bad.status, 2)
        XCTAssertTrue(bad.stderr.contains("not base64"), bad.stderr)
        XCTAssertEqual(try daemon.recker(["batch"], stdin: Data(up.utf8)).status, 0)
    }

    /// On a terminal, stderr shows a progress line; in a pipe, nothing.
    func testProgressOnlyOnATerminal() throws {
        let nginx = try Nginx(files: Fixtures.files)
        let daemon = try DaemonProcess(config: Fixtures.config(nginx))
        let dir = try TestEnvironment.makeTempDir("progress")
        let input = dir.appendingPathComponent("urls").path
        try (0 ..< 20).map { nginx.url("/n/\($0).txt") }.joined(separator: "\n").write(toFile: input, atomically: true, encoding: .utf8)
        let recker = TestEnvironment.binDir.appendingPathComponent("recker").path
        let piped = try daemon.recker(["batch", input])
        XCTAssertEqual(piped.status, 0)
        XCTAssertEqual(piped.stderr, "")
        // script(1) gives the command a terminal; its stdout goes to a file, stderr stays on it.
        let out = dir.appendingPathComponent("out").path
        let tty = try TestEnvironment.run("/usr/bin/script", ["-qec", "\(recker) --socket \(daemon.socketPath) batch \(input) >\(out)", "/dev/null"])
        XCTAssertEqual(tty.status, 0, tty.text)
        XCTAssertTrue(tty.text.contains("recker batch: "), tty.text)
        XCTAssertTrue(tty.text.contains("/20 done"), tty.text)
        XCTAssertEqual(try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n").count, 21, "the results are untouched")
    }
}
