import Foundation
import ReckerProtocol
import ReckerTestSupport
import XCTest

/// What a script relies on from `recker`'s output, as from curl's.
final class CLIOutputTests: XCTestCase {
    /// `-o FILE` replaces FILE only when the transfer succeeds: a refused request, `-f` on a
    /// 404 or a failed connect leave an existing FILE as it was, and no temporary file.
    func testOutputFileIsReplacedOnlyOnSuccess() throws {
        let nginx = try Nginx(files: Fixtures.files)
        let daemon = try DaemonProcess(config: Fixtures.config(nginx))
        let dir = try TestEnvironment.makeTempDir("output")
        let file = dir.appendingPathComponent("kept.txt").path
        try "precious".write(toFile: file, atomically: true, encoding: .utf8)
        let failures: [([String], Int32)] = [
            (["-f", nginx.url("/missing")], 22),
            (["-H", "X-Bad: a\u{1}b", nginx.url("/hello.txt")], 3),
            (["http://127.0.0.1:9/"], 7),
        ]
        // Credentials in the URL become Basic authorization, as curl's (not a refusal).
        let auth = try daemon.recker(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "http://u:p@127.0.0.1:\(nginx.httpPort)/hello.txt"])
        XCTAssertEqual(auth.text, "200", auth.stderr)
        for (args, code) in failures {
            let r = try daemon.recker(["-sS", "-o", file] + args)
            XCTAssertEqual(r.status, code, "\(args): \(r.stderr)")
            XCTAssertEqual(try String(contentsOfFile: file, encoding: .utf8), "precious", "\(args) left the file as it was")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["kept.txt"], "no temporary file left")
        let ok = try daemon.recker(["-sS", "-o", file, nginx.url("/hello.txt")])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertEqual(try String(contentsOfFile: file, encoding: .utf8), "hello from nginx\n")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["kept.txt"])
    }

    /// `-o` onto what is not a regular file writes into it, as curl does: a device stays a
    /// device (`-o /dev/null` as root used to replace the machine's /dev/null with a regular
    /// file), a symbolic link stays a link and its target gets the body; a FIFO is written.
    /// An interrupted transfer leaves no temporary file beside FILE.
    func testOutputOntoDevicesLinksAndFIFOsWritesThrough() throws {
        let nginx = try Nginx(files: Fixtures.files)
        let server = try FaultServer()
        let daemon = try DaemonProcess(config: Fixtures.config(nginx))
        let dir = try TestEnvironment.makeTempDir("output-special")
        let null = dir.appendingPathComponent("null").path
        XCTAssertEqual(mknod(null, S_IFCHR | 0o666, dev_t(1 << 8 | 3)), 0, "mknod: \(errno)")  // major 1, minor 3: the null device
        var r = try daemon.recker(["-sS", "-o", null, nginx.url("/hello.txt")])
        XCTAssertEqual(r.status, 0, r.stderr)
        var st = stat()
        XCTAssertEqual(lstat(null, &st), 0)
        XCTAssertEqual(st.st_mode & S_IFMT, S_IFCHR, "still the null device")
        r = try daemon.recker(["-sS", "--retry", "1", "--retry-delay", "0", "-o", null, "-w", "%{http_code}", nginx.url("/hello.txt")])
        XCTAssertEqual(r.text, "200", r.stderr)

        let target = dir.appendingPathComponent("target.txt").path
        let link = dir.appendingPathComponent("link").path
        XCTAssertEqual(symlink("target.txt", link), 0)
        r = try daemon.recker(["-sS", "-o", link, nginx.url("/hello.txt")])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(lstat(link, &st), 0)
        XCTAssertEqual(st.st_mode & S_IFMT, S_IFLNK, "the link is still a link")
        XCTAssertEqual(try String(contentsOfFile: target, encoding: .utf8), "hello from nginx\n")

        let fifo = dir.appendingPathComponent("fifo").path
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        let reader = Process()
        reader.executableURL = URL(fileURLWithPath: "/bin/cat")
        reader.arguments = [fifo]
        let pipe = Pipe()
        reader.standardOutput = pipe
        try reader.run()
        r = try daemon.recker(["-sS", "-o", fifo, nginx.url("/hello.txt")])
        XCTAssertEqual(r.status, 0, r.stderr)
        reader.waitUntilExit()
        XCTAssertEqual(String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self), "hello from nginx\n")

        // Interrupted while the answer is on its way: no FILE.recker-XXXXXX is left.
        let file = dir.appendingPathComponent("slow.txt").path
        let slow = Process()
        slow.executableURL = TestEnvironment.binDir.appendingPathComponent("recker")
        slow.arguments = ["--socket", daemon.socketPath, "-sS", "-o", file, server.url("/delay/3000")]
        try slow.run()
        XCTAssertTrue(TestEnvironment.eventually(3) {
            ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).contains { $0.hasPrefix("slow.txt.recker-") }
        }, "the transfer is staged")
        kill(slow.processIdentifier, SIGINT)
        slow.waitUntilExit()
        let left = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.contains(".recker-") }
        XCTAssertEqual(left, [], "no temporary file left after SIGINT")
    }

    /// A reader that leaves early (`| head -c 10`) makes recker exit 23, as curl does, not
    /// die of SIGPIPE.
    func testAClosedPipeIsExit23() throws {
        let nginx = try Nginx(files: Fixtures.files)
        let daemon = try DaemonProcess(config: Fixtures.config(nginx))
        let recker = TestEnvironment.binDir.appendingPathComponent("recker").path
        let r = try TestEnvironment.run("/bin/bash", ["-c", "\(recker) --socket \(daemon.socketPath) -s \(nginx.url("/size/8388608")) | head -c 10 >/dev/null; echo ${PIPESTATUS[0]}"])
        XCTAssertEqual(r.text.trimmingCharacters(in: .whitespacesAndNewlines), "23")
    }

    /// `-L -d`: on 301, 302 and 303 the POST becomes a GET without its body, as curl does;
    /// 307 keeps it; `-X POST` keeps the method's name but, on a 302, not the body (curl
    /// 7.88 sends a body-less POST, checked here against curl itself). Seen by the upstream.
    func testRedirectsTurnAPostIntoAGetAsCurlDoes() throws {
        let server = try FaultServer()
        let daemon = try DaemonProcess()
        let target = server.url("/digest")
        let hello = "\(String(FaultServer.fnv1a(Array("hello".utf8)), radix: 16))"
        let empty = "\(String(FaultServer.fnv1a([UInt8]()), radix: 16))"
        for code in [301, 302, 303] {
            let r = try daemon.recker(["-sS", "-L", "-d", "hello", server.url("/moved/\(code)/\(target)")])
            XCTAssertEqual(r.text, "GET 0 \(empty)", "\(code): \(r.stderr)")
        }
        XCTAssertEqual(try daemon.recker(["-sS", "-L", "-d", "hello", server.url("/moved/307/\(target)")]).text, "POST 5 \(hello)")
        let args = ["-sS", "-L", "-X", "POST", "-d", "hello", server.url("/moved/302/\(target)")]
        let curl = try TestEnvironment.run(CLIRedirectTests.curl, args)
        XCTAssertEqual(curl.text, "POST 0 \(empty)")
        XCTAssertEqual(try daemon.recker(args).text, curl.text, "-X POST keeps the method, not the body")
        XCTAssertEqual(server.received("POST", "/digest"), 3, "307's, recker's and curl's")
        XCTAssertEqual(server.received("GET", "/digest"), 3)
    }

    /// A User-Agent as curl sends one (recker/VERSION, or -A's), and --version.
    func testUserAgentAndVersion() throws {
        let server = try FaultServer()
        let daemon = try DaemonProcess()
        let plain = try daemon.recker(["-sS", server.url("/headers")]).text
        XCTAssertTrue(plain.contains("User-Agent: recker/\(Message.release)"), plain)
        let named = try daemon.recker(["-sS", "-A", "probe/2", server.url("/headers")]).text
        XCTAssertTrue(named.contains("User-Agent: probe/2") && !named.contains("recker/"), named)
        let version = try daemon.recker(["--version"])
        XCTAssertEqual(version.status, 0)
        XCTAssertEqual(version.text, "recker \(Message.release) (reckerd protocol 1)\n")
    }
}
