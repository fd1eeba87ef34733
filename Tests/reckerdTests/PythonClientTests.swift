import Foundation
import ReckerProtocol
import ReckerTestSupport
import XCTest

/// clients/python/recker.py, run by Debian's python3 against a real daemon and real
/// upstreams: as a script (`recker.py URL` prints the body) and as a module.
final class PythonClientTests: XCTestCase {
    static let python = "/usr/bin/python3"
    static let clientDir = TestEnvironment.packageRoot.appendingPathComponent("clients/python").path
    static let script = clientDir + "/recker.py"

    override func setUpWithError() throws {
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: Self.python), "no \(Self.python)")
    }

    /// Runs `recker.py` with `args` against `daemon`.
    func script(_ daemon: DaemonProcess, _ args: [String]) throws -> TestEnvironment.Result {
        try TestEnvironment.run(Self.python, [Self.script, "--socket", daemon.socketPath] + args, timeout: 60)
    }

    /// Runs Python `code` with the module imported as `recker` and a `Client` on `daemon`
    /// as `c`; returns what it printed.
    func module(_ daemon: DaemonProcess, _ code: String) throws -> TestEnvironment.Result {
        let program = """
            import sys, json
            sys.path.insert(0, \(String(reflecting: Self.clientDir)))
            import recker
            c = recker.Client(\(String(reflecting: daemon.socketPath)))

            """ + code
        return try TestEnvironment.run(Self.python, ["-c", program], timeout: 60)
    }

    func testTheScriptPrintsBodiesByteForByte() throws {
        let nginx = try Nginx(files: Fixtures.files)
        let daemon = try DaemonProcess(config: Fixtures.config(nginx))
        for name in ["hello.txt", "size/0", "size/1", "size/65536", "size/8388608"] {
            for https in [false, true] {
                let r = try script(daemon, [nginx.url("/" + name, https: https)])
                XCTAssertEqual(r.status, 0, "\(name): \(r.stderr)")
                XCTAssertEqual(r.stdout, Fixtures.files[name], "\(name) over \(https ? "https" : "http"): the body, byte for byte")
            }
        }
    }

    /// Both clients send a User-Agent of their own when the request names none (many APIs
    /// refuse requests without one), and a caller's own, even empty, instead.
    func testTheClientsSendAUserAgent() async throws {
        let server = try FaultServer()
        let daemon = try DaemonProcess()
        let r = try module(daemon, """
            print(c.send(\(String(reflecting: server.url("/headers")))).body.decode())
            print(c.send(\(String(reflecting: server.url("/headers"))), headers={"User-Agent": "mine/1"}).body.decode())
            """)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.text.contains("User-Agent: recker-python/\(ReckerVersion.release)\n"), r.text)
        XCTAssertTrue(r.text.contains("User-Agent: mine/1"), r.text)
        XCTAssertEqual(r.text.components(separatedBy: "User-Agent:").count, 3, r.text)
        let client = ReckerClient(socketPath: daemon.socketPath)
        defer { client.close() }
        let swift = try await client.send(ReckerRequest(url: server.url("/headers")))
        XCTAssertTrue(String(decoding: swift.body, as: UTF8.self).contains("User-Agent: ReckerProtocol/\(ReckerVersion.release)"))
        let own = try await client.send(ReckerRequest(url: server.url("/headers"), headers: [("User-Agent", "")]))
        XCTAssertFalse(String(decoding: own.body, as: UTF8.self).contains("ReckerProtocol/"))
        XCTAssertEqual(daemon.stop(), 0)
    }

    func testTheSocketIsFoundFromTheEnvironment() throws {
        let nginx = try Nginx(files: Fixtures.files)
        let daemon = try DaemonProcess(config: Fixtures.config(nginx))
        var env = ProcessInfo.processInfo.environment
        env["RECKER_SOCKET"] = daemon.socketPath
        let r = try TestEnvironment.run(Self.python, [Self.script, nginx.url("/hello.txt")], environment: env)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.text, "hello from nginx\n")
    }

    func testStreamingALargeBodyUnderFlowControl() throws {
        let nginx = try Nginx(files: Fixtures.files)
        let daemon = try DaemonProcess(config: Fixtures.config(nginx))
        let expected = try XCTUnwrap(Fixtures.files["size/8388608"])
        let r = try module(daemon, """
            import hashlib
            h, chunks, total = hashlib.sha256(), 0, 0
            with c.stream(\(String(reflecting: nginx.url("/size/8388608")))) as s:
                status = s.status
                for chunk in s:
                    h.update(chunk); chunks += 1; total += len(chunk)
            print(status, total, chunks, h.hexdigest())
            """)
        XCTAssertEqual(r.status, 0, r.stderr)
        let fields = r.text.split(separator: " ").map(String.init)
        XCTAssertEqual(fields.count, 4, r.text)
        XCTAssertEqual(fields.first, "200")
        XCTAssertEqual(fields.dropFirst().first, String(expected.count))
        XCTAssertGreaterThan(Int(fields[2]) ?? 0, 1, "the body came in many chunks")
        let digest = try TestEnvironment.run(Self.python, ["-c", "import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())"],
                                             stdin: expected)
        XCTAssertEqual(fields.last?.trimmingCharacters(in: .whitespacesAndNewlines), digest.text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    func testABatchKeepsInputOrderAndPerItemErrors() throws {
        let nginx = try Nginx(files: Fixtures.files)
        let daemon = try DaemonProcess(config: Fixtures.config(nginx))
        let urls = (0 ..< 20).map { nginx.url("/n/\($0).txt") } + ["http://127.0.0.1:1/"]
        let r = try module(daemon, """
            out = []
            for item in c.batch(\(String(reflecting: urls)), concurrency=5):
                out.append(["error", item.name] if isinstance(item, recker.ReckerError) else [item.status, item.body.decode()])
            print(json.dumps(out))
            """)
        XCTAssertEqual(r.status, 0, r.stderr)
        let items = try XCTUnwrap(try JSONSerialization.jsonObject(with: r.stdout) as? [[Any]])
        XCTAssertEqual(items.count, 21)
        for i in 0 ..< 20 {
            XCTAssertEqual(items[i].first as? Int, 200)
            XCTAssertEqual(items[i].last as? String, "item \(i)\n", "item \(i) in input order")
        }
        XCTAssertEqual(items[20].last as? String, "CONNECT_FAILED", "a failing item carries its own error")
    }

    func testStatsInEveryFormat() throws {
        let server = try FaultServer()
        let daemon = try DaemonProcess()
        let r = try module(daemon, """
            for _ in range(3):
                c.send(\(String(reflecting: server.url("/delay/1"))))
            s = c.stats()
            print(s["requests_total"], s["clients"], "(all)" in c.stats("table"), "reckerd_requests_total" in c.stats("prometheus"))
            """)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.text, "3 1 True True\n")
        let table = try script(daemon, ["stats"])
        XCTAssertEqual(table.status, 0, table.stderr)
        XCTAssertTrue(table.text.contains("127.0.0.1:\(server.port)"), table.text)
    }

    func testCancelAndTimeoutFreeTheConnection() throws {
        let nginx = try Nginx(files: Fixtures.files)
        let server = try FaultServer()
        let daemon = try DaemonProcess(config: #"{ "agent": { "connections": 1, "queueTimeout": 20000 }, "http2": { "enabled": false } }"#)
        let r = try module(daemon, """
            s = c.stream(\(String(reflecting: nginx.url("/slow/big"))))
            first = next(s)
            c.cancel(s.stream_id)
            try:
                next(s)
                print("read after cancel")
            except recker.ReckerError as e:
                print("stream", e.name)
            # 16 MiB at 256 KiB/s would hold the only connection for a minute.
            print(c.send(\(String(reflecting: nginx.url("/hello.txt"))), timeout=10).body.decode(), end="")
            try:
                c.send(\(String(reflecting: server.url("/hang"))), timeout=0.5)
            except recker.ReckerError as e:
                print("hang", e.name, e.may_have_reached_upstream)
            print(c.send(\(String(reflecting: server.url("/delay/1"))), timeout=10).body.decode())
            print(c.stats()["requests_in_flight"])
            """)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.text, "stream CANCELLED\nhello from nginx\nhang TIMEOUT True\nok\n0\n")
        XCTAssertEqual(server.received("GET", "/hang"), 1)
        XCTAssertTrue(TestEnvironment.eventually(10) { server.closedConnections == 1 }, "the daemon closed the hung upstream connection")
    }

    func testDaemonErrorsArePythonExceptionsWithTheCodeName() throws {
        let daemon = try DaemonProcess()
        let refused = try script(daemon, ["http://127.0.0.1:1/"])
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.stderr.hasPrefix("recker.py: CONNECT_FAILED (201): "), refused.stderr)
        XCTAssertEqual(refused.stdout, Data())
        let r = try module(daemon, """
            for kwargs in [dict(url="http://127.0.0.1:1/", headers={"Content-Length": "1"}),
                           dict(url="ftp://127.0.0.1/"), dict(url="http://127.0.0.1:1/", method="GET /")]:
                try:
                    c.send(**kwargs)
                except recker.ReckerError as e:
                    print(e.name, e.code, e.retry_safe)
            """)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.text, "FORBIDDEN_HEADER 104 True\nINVALID_URL 101 True\nINVALID_METHOD 100 True\n")
        let missing = try TestEnvironment.run(Self.python, [Self.script, "--socket", daemon.dir.appendingPathComponent("none.sock").path,
                                                            "http://127.0.0.1:1/"])
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.stderr.contains("DAEMON_UNAVAILABLE"), missing.stderr)
    }
}
