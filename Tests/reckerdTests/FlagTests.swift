import Foundation
import ReckerProtocol
import ReckerTestSupport
import XCTest

/// The flags a client decides on are true (PROTOCOL.md §5): MAY_HAVE_REACHED_UPSTREAM is
/// set whenever the request may have left reckerd, and only then; RETRY_SAFE says whether
/// sending it again could repeat an effect. Each case is checked against the upstream's
/// own count of what it received.
final class FlagTests: XCTestCase {
    /// The daemon killed while a POST and a GET wait for their answers: both may have
    /// reached the upstream (it logged them), only the GET is safe to retry. Seen by the
    /// Swift client, by `recker` and by the Python client.
    func testRequestsInFlightWhenTheDaemonDiesMayHaveReachedTheUpstream() async throws {
        let server = try FaultServer()

        // The Swift client library.
        var daemon = try DaemonProcess()
        let client = ReckerClient(socketPath: daemon.socketPath)
        defer { client.close() }
        let post = Task { try await client.send(ReckerRequest(method: "POST", url: server.url("/delay/3001"), body: Array("x".utf8))) }
        let get = Task { try await client.send(ReckerRequest(url: server.url("/delay/3001"))) }
        XCTAssertTrue(TestEnvironment.eventually(5) { server.received("POST", "/delay/3001") == 1 && server.received("GET", "/delay/3001") == 1 })
        kill(daemon.pid, SIGKILL)
        for (name, task, safe) in [("POST", post, false), ("GET", get, true)] {
            do {
                let r = try await task.value
                XCTFail("\(name) answered \(r.status)")
            } catch let e as ReckerError {
                XCTAssertEqual(e.code, .connectionLost, "\(name): \(e)")
                XCTAssertTrue(e.mayHaveReachedUpstream, "\(name): it reached the upstream")
                XCTAssertEqual(e.retrySafe, safe, name)
            }
        }

        // recker.
        daemon = try DaemonProcess()
        let killer = daemon.pid
        DispatchQueue.global().asyncAfter(deadline: .now() + 1) { kill(killer, SIGKILL) }
        let r = try daemon.recker(["-s", "-X", "POST", "-d", "x", "-w", "%{may_have_reached_upstream}", server.url("/delay/3002")])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertEqual(r.text, "1", "recker: the POST may have reached the upstream")
        XCTAssertEqual(server.received("POST", "/delay/3002"), 1)

        // The Python client.
        daemon = try DaemonProcess()
        let python = """
            import sys, threading, os, signal
            sys.path.insert(0, \(String(reflecting: PythonClientTests.clientDir)))
            import recker
            c = recker.Client(\(String(reflecting: daemon.socketPath)))
            threading.Timer(1.0, lambda: os.kill(\(daemon.pid), signal.SIGKILL)).start()
            for method in ("POST", "GET"):
                try:
                    c.send(\(String(reflecting: server.url("/delay/3003"))), method=method, body=b"x" if method == "POST" else None)
                    print(method, "answered")
                except recker.ReckerError as e:
                    print(method, e.name, e.may_have_reached_upstream, e.retry_safe)
            """
        let py = try TestEnvironment.run(PythonClientTests.python, ["-c", python], timeout: 30)
        XCTAssertEqual(py.text, "POST CONNECTION_LOST True False\nGET DAEMON_UNAVAILABLE False True\n", py.stderr)
    }

    /// `recker batch` whose daemon dies: every item still gets its line (those in flight
    /// saying they may have reached the upstream), then the summary.
    func testABatchWhoseDaemonDiesStillAccountsForEveryItem() throws {
        let server = try FaultServer()
        let daemon = try DaemonProcess()
        let list = daemon.dir.appendingPathComponent("urls.txt")
        try (0 ..< 4).map { _ in server.url("/delay/3004") + "\n" }.joined().write(to: list, atomically: true, encoding: .utf8)
        let killer = daemon.pid
        DispatchQueue.global().asyncAfter(deadline: .now() + 1) { kill(killer, SIGKILL) }
        let r = try daemon.recker(["batch", "-c", "2", list.path])
        let lines = r.text.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 5, r.text)
        XCTAssertEqual(lines.filter { $0.contains("may have reached the upstream") }.count, 2, r.text)
        XCTAssertEqual(lines.filter { $0.contains("was not sent") }.count, 2, r.text)
        XCTAssertTrue(lines.last?.contains(#""failed":4"#) == true, r.text)
        XCTAssertNotEqual(r.status, 0)
    }

    /// The Python client's own call timeout on a request still in the daemon's queue: the
    /// TIMEOUT carries the daemon's word that it never left (it said may-have-reached).
    func testAPythonTimeoutOfAQueuedRequestSaysItNeverLeft() throws {
        let server = try FaultServer()
        let daemon = try DaemonProcess(config: #"{ "agent": { "connections": 1 }, "http2": { "enabled": false } }"#)
        let python = """
            import sys, threading, time
            sys.path.insert(0, \(String(reflecting: PythonClientTests.clientDir)))
            import recker
            busy = recker.Client(\(String(reflecting: daemon.socketPath)))
            threading.Thread(target=lambda: busy.send(\(String(reflecting: server.url("/delay/2000")))), daemon=True).start()
            time.sleep(0.3)
            c = recker.Client(\(String(reflecting: daemon.socketPath)))
            try:
                c.send(\(String(reflecting: server.url("/delay/5"))), timeout=0.5)
                print("answered")
            except recker.ReckerError as e:
                print(e.name, e.may_have_reached_upstream, e.retry_safe)
            """
        let py = try TestEnvironment.run(PythonClientTests.python, ["-c", python], timeout: 30)
        XCTAssertEqual(py.text, "TIMEOUT False True\n", py.stderr)
        XCTAssertEqual(server.received("GET", "/delay/5"), 0)
    }

    /// CANCEL of a request still waiting for a connection: it never left reckerd.
    func testCancellingAQueuedRequestSaysItNeverLeft() throws {
        let server = try FaultServer()
        let daemon = try DaemonProcess(config: #"{ "agent": { "connections": 1 }, "http2": { "enabled": false } }"#)
        let c = try ReckerConnection(socketPath: daemon.socketPath)
        c.socket.setReceiveTimeout(milliseconds: 10_000)
        defer { c.close() }
        try c.send(.requestHead(stream: 1, RequestHead(method: "POST", url: server.url("/delay/1500"), bodyLength: 0), endRequest: true))
        XCTAssertTrue(TestEnvironment.eventually(5) { server.received("POST", "/delay/1500") == 1 })
        try c.send(.requestHead(stream: 3, RequestHead(method: "POST", url: server.url("/delay/1"), bodyLength: 0), endRequest: true))
        usleep(100_000)
        try c.send(.cancel(stream: 3))
        var cancelled: ReckerError?
        for _ in 0 ..< 20 {
            if case .error(3, let e) = try c.receive() {
                cancelled = e
                break
            }
        }
        let e = try XCTUnwrap(cancelled)
        XCTAssertEqual(e.code, .cancelled)
        XCTAssertFalse(e.mayHaveReachedUpstream, "\(e)")
        XCTAssertTrue(e.retrySafe)
        XCTAssertEqual(server.received("POST", "/delay/1"), 0)
        XCTAssertEqual(try daemon.stats()["errors_total"] as? Int, 0, "a cancel is not the upstream's error")
    }

    /// A stop whose drain runs out: a running GET may be retried, a running POST not, a
    /// queued one never left.
    func testAStopThatRunsOutOfDrainTimeSaysWhatMayBeRetried() throws {
        let server = try FaultServer()
        let daemon = try DaemonProcess(config: #"{ "drainTimeout": 300, "agent": { "connections": 2 }, "http2": { "enabled": false } }"#)
        let c = try ReckerConnection(socketPath: daemon.socketPath)
        c.socket.setReceiveTimeout(milliseconds: 10_000)
        defer { c.close() }
        try c.send(.requestHead(stream: 1, RequestHead(url: server.url("/delay/5001")), endRequest: true))
        try c.send(.requestHead(stream: 3, RequestHead(method: "POST", url: server.url("/delay/5002"), bodyLength: 0), endRequest: true))
        try c.send(.requestHead(stream: 5, RequestHead(url: server.url("/delay/5003")), endRequest: true))
        XCTAssertTrue(TestEnvironment.eventually(5) { server.received("POST", "/delay/5002") == 1 && server.received("GET", "/delay/5001") == 1 })
        kill(daemon.pid, SIGTERM)
        var errors: [UInt32: ReckerError] = [:]
        for _ in 0 ..< 20 where errors.count < 3 {
            guard let m = try? c.receive() else { break }
            if case .error(let s, let e) = m, s != 0 { errors[s] = e }
        }
        XCTAssertEqual(errors[1]?.code, .shuttingDown)
        XCTAssertEqual(errors[1]?.mayHaveReachedUpstream, true)
        XCTAssertEqual(errors[1]?.retrySafe, true, "a GET may be retried")
        XCTAssertEqual(errors[3]?.mayHaveReachedUpstream, true)
        XCTAssertEqual(errors[3]?.retrySafe, false, "a POST may not")
        XCTAssertEqual(errors[5]?.mayHaveReachedUpstream, false, "the queued GET never left: \(String(describing: errors[5]))")
        XCTAssertEqual(server.received("GET", "/delay/5003"), 0)
    }
}
