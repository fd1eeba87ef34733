import Foundation
import ReckerProtocol
import ReckerTestSupport
import XCTest

/// Clients share connections, never state, and one client cannot take more than its share.
final class IsolationTests: XCTestCase {
    /// Another user's clients that never read hold both connections of a domain with 8 MB
    /// answers; their spill budget (limits.spillUserMax, 1 MB here) fills. A request of this
    /// user to the same domain is served within seconds (it waited for queueTimeout, 30 s,
    /// when one user could fill the shared spill budget), and the stalled responses fail
    /// with TIMEOUT saying why.
    func testAClientThatNeverReadsSlowsOnlyItsOwnUser() throws {
        let nginx = try Nginx(files: Fixtures.files)
        let daemon = try DaemonProcess(config: Fixtures.config(nginx, extra: #""agent": { "connections": 2 }, "limits": { "spillUserMax": 1048576 }"#))
        chmod(daemon.socketPath, 0o666)
        let recker = TestEnvironment.binDir.appendingPathComponent("recker").path
        let big = nginx.url("/size/8388608")
        var stalled: [Process] = []
        defer { for p in stalled where p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() } }
        for _ in 0 ..< 2 {
            // Its output goes to a pipe this test never reads: recker stops reading its socket.
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
            p.arguments = ["--reuid=4391", "--regid=4391", "--clear-groups", recker, "--socket", daemon.socketPath, "-s", big]
            p.standardOutput = Pipe()
            p.standardError = FileHandle.nullDevice
            try p.run()
            stalled.append(p)
        }
        XCTAssertTrue(try TestEnvironment.eventually(10) { (try daemon.stats()["requests_in_flight"] as? Int ?? 0) >= 2 }, "both big answers started")
        let started = Date()
        let mine = try daemon.recker(["-sS", "-m", "25", nginx.url("/hello.txt")])
        let waited = Date().timeIntervalSince(started)
        XCTAssertEqual(mine.text, "hello from nginx\n", mine.stderr)
        XCTAssertLessThan(waited, 10, "another user's stalled clients held the domain")
        print("served after \(waited) s beside two stalled clients of another user")
        for p in stalled { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
        XCTAssertEqual(daemon.stop(), 0)
    }

    /// A client that reads slowly but steadily (192 KiB a second) while another
    /// request waits for the only connection is not a stalled one: its response arrives
    /// whole (it lost it with TIMEOUT when the 2 s counted from the first pause).
    func testASlowReaderThatReadsIsNotTakenForAStalledOne() throws {
        let nginx = try Nginx(files: Fixtures.files)
        let daemon = try DaemonProcess(config: Fixtures.config(nginx, extra: #""agent": { "connections": 1 }, "limits": { "spillUserMax": 0, "spillMax": 0, "streamWindow": 262144 }"#))
        let client = TestEnvironment.packageRoot.appendingPathComponent("clients/python").path
        let program = """
            import sys, time
            sys.path.insert(0, \(String(reflecting: client)))
            import recker
            c = recker.Client(\(String(reflecting: daemon.socketPath)))
            n = 0
            for chunk in c.stream(\(String(reflecting: nginx.url("/size/8388608")))):
                n += len(chunk)
                if n >= 2 << 20: break
                if n % (192 << 10) < len(chunk): time.sleep(1.0)
            print(n)
            """
        let reader = Process()
        reader.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        reader.arguments = ["-c", program]
        let out = Pipe()
        reader.standardOutput = out
        try reader.run()
        usleep(1_500_000)
        let other = try daemon.recker(["-sS", "-m", "60", nginx.url("/hello.txt")])
        XCTAssertEqual(other.text, "hello from nginx\n", other.stderr)
        reader.waitUntilExit()
        let read = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertEqual(reader.terminationStatus, 0, read)
        XCTAssertGreaterThanOrEqual(Int(read.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0, 2 << 20, "the slow reader got its bytes: \(read)")
        XCTAssertEqual(daemon.stop(), 0)
    }

    func testNoCookieCarriesFromOneRequestToAnother() throws {
        let server = try FaultServer()
        let daemon = try DaemonProcess()
        let set = try daemon.recker(["-sS", "-i", server.url("/set-cookie")])
        XCTAssertTrue(set.text.contains("Set-Cookie: session=secret"), set.text)
        let echo = try daemon.recker(["-sS", server.url("/headers")])
        XCTAssertEqual(echo.status, 0, echo.stderr)
        XCTAssertFalse(echo.text.lowercased().contains("cookie"), "a later request carried state: \(echo.text)")
        XCTAssertEqual(server.connections, 1, "yet both went over the same connection")
    }

    /// Easy handles are reused, reset: nothing of one request (custom method, headers,
    /// credentials, body, cookies) reaches the next, seen at the upstream.
    func testNothingOfOneRequestReachesTheNext() throws {
        let server = try FaultServer()
        let daemon = try DaemonProcess(config: #"{ "agent": { "connections": 1 } }"#)
        _ = try daemon.recker(["-sS", server.url("/set-cookie")])
        let loud = try daemon.recker(["-sS", "-X", "PURGE", "-H", "X-Secret: 1", "-u", "me:pw", "-H", "Cookie: a=b", "-d", "body",
                                      server.url("/digest")])
        XCTAssertTrue(loud.text.hasPrefix("PURGE 4 "), loud.text + loud.stderr)
        for _ in 0 ..< 3 {
            let echo = try daemon.recker(["-sS", server.url("/headers")]).text.lowercased()
            for leak in ["x-secret", "authorization", "cookie", "content-length", "content-type"] {
                XCTAssertFalse(echo.contains(leak), "\(leak) reached a later request: \(echo)")
            }
            let digest = try daemon.recker(["-sS", server.url("/digest")]).text
            XCTAssertEqual(digest, "GET 0 cbf29ce484222325", "a later request went out as sent: \(digest)")
        }
        XCTAssertEqual(server.connections, 1, "all on one connection, so one handle after another")
    }

    func testRequestsInFlightPerClientAreCapped() throws {
        let server = try FaultServer()
        let daemon = try DaemonProcess(config: #"{ "limits": { "maxInFlightPerClient": 2 } }"#)
        let c = try ReckerConnection(socketPath: daemon.socketPath)
        XCTAssertEqual(c.welcome.maxInFlight, 2)
        for id in UInt32(1) ... 3 {
            try c.send(.requestHead(stream: id, RequestHead(url: server.url("/delay/300")), endRequest: true))
        }
        var refused: [UInt32] = []
        var answered: [UInt32] = []
        for _ in 0 ..< 20 where refused.count + answered.count < 3 {
            switch try c.receive() {
            case .error(let s, let e):
                XCTAssertEqual(e.code, .tooManyInFlight)
                refused.append(s)
            case .responseEnd(let s, _): answered.append(s)
            default: continue
            }
        }
        XCTAssertEqual(refused, [3])
        XCTAssertEqual(answered.sorted(), [1, 2])
    }

    func testCancelStopsTheUpstreamTransfer() throws {
        let server = try FaultServer()
        let daemon = try DaemonProcess()
        let c = try ReckerConnection(socketPath: daemon.socketPath)
        try c.send(.requestHead(stream: 7, RequestHead(url: server.url("/delay/5000")), endRequest: true))
        usleep(200_000)
        try c.send(.cancel(stream: 7))
        guard case .error(7, let e) = try c.receive() else { return XCTFail("no answer to CANCEL") }
        XCTAssertEqual(e.code, .cancelled)
        XCTAssertTrue(TestEnvironment.eventually(5) { ((try? daemon.stats())?["requests_in_flight"] as? Int) == 0 })
    }

    func testUnwritableSocketDirectoryIsRefused() throws {
        let r = try TestEnvironment.run(TestEnvironment.binDir.appendingPathComponent("reckerd").path,
                                        ["--socket", "/nonexistent-reckerd-dir/reckerd.sock"], timeout: 20)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("/nonexistent-reckerd-dir"), r.stderr)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
    }
}
