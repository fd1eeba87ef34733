import Foundation
import ReckerProtocol
import ReckerTestSupport
import XCTest

/// Start-up refusals, stale sockets and a graceful stop.
final class LifecycleTests: XCTestCase {
    func reckerd(_ args: [String]) throws -> TestEnvironment.Result {
        try TestEnvironment.run(TestEnvironment.binDir.appendingPathComponent("reckerd").path, args, timeout: 20)
    }

    func testBadConfigsAreRefusedWithTheKeyPath() throws {
        let dir = try TestEnvironment.makeTempDir("config")
        let cases: [(String, String)] = [
            (#"{ "agent": { "conections": 5 } }"#, "agent.conections"),
            (#"{ "agent": { "connections": 0 } }"#, "agent.connections"),
            (#"{ "agent": { "keepAliveTimeout": -1 } }"#, "agent.keepAliveTimeout"),
            (#"{ "http2": { "enabled": "yes" } }"#, "http2.enabled"),
            (#"{ "agent": [1] }"#, "agent"),
            (#"{ not json"#, "not valid JSON"),
            (#"{ "warm": [{ "url": "http://127.0.0.1:9/", "minIdle": 11 }] }"#, "warm[0].minIdle"),
            (#"{ "limits": { "maxFrame": 4096 } }"#, "limits.maxHeaderBytes"),
            (#"{ "upstreamProxy": "127.0.0.1:3128" }"#, "upstreamProxy"),
        ]
        for (i, (json, mention)) in cases.enumerated() {
            let path = dir.appendingPathComponent("bad\(i).json").path
            try json.write(toFile: path, atomically: true, encoding: .utf8)
            let r = try reckerd(["--config", path, "--socket", dir.appendingPathComponent("s\(i).sock").path])
            XCTAssertNotEqual(r.status, 0, json)
            XCTAssertTrue(r.stderr.contains(mention), "\(json): \(r.stderr)")
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, "one clear line: \(r.stderr)")
        }
        let missing = try reckerd(["--config", dir.appendingPathComponent("nope.json").path])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.stderr.contains("nope.json"), missing.stderr)
    }

    func testShippedConfigIsValidAndEqualsTheDefaults() throws {
        let shipped = TestEnvironment.packageRoot.appendingPathComponent("config/reckerd.json").path
        try XCTSkipIf(FileManager.default.fileExists(atPath: "/etc/reckerd/reckerd.json"),
                      "a system config exists, so the built-in defaults cannot be observed")
        let fromFile = try reckerd(["--config", shipped, "--check-config"])
        let builtIn = try reckerd(["--check-config"])
        XCTAssertEqual(fromFile.status, 0, fromFile.stderr)
        XCTAssertEqual(fromFile.text, builtIn.text)
        XCTAssertTrue(fromFile.text.contains("\"connections\" : 10"), fromFile.text)
        XCTAssertFalse(try String(contentsOfFile: shipped, encoding: .utf8).contains("://"), "the shipped config names no domain")

        let daemon = try DaemonProcess(config: try String(contentsOfFile: shipped, encoding: .utf8))
        XCTAssertEqual(daemon.stop(), 0, "SIGTERM right after start-up still stops cleanly")
    }

    func testBusySocketIsRefusedAndStaleSocketIsReplaced() throws {
        let first = try DaemonProcess()
        let r = try reckerd(["--socket", first.socketPath])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("already serving"), r.stderr)
        XCTAssertNotNil(try? UnixSocket(connectingTo: first.socketPath), "the first daemon still serves")

        // A socket file nobody listens on, as a crashed daemon leaves it.
        let dir = try TestEnvironment.makeTempDir("stale")
        let stale = dir.appendingPathComponent("stale.sock").path
        let fd = TestEnvironment.bindUnixSocket(stale)
        XCTAssertGreaterThanOrEqual(fd, 0)
        close(fd)
        XCTAssertTrue(FileManager.default.fileExists(atPath: stale))
        let second = try DaemonProcess(socketPath: stale)
        XCTAssertNotNil(try? ReckerConnection(socketPath: stale))
        var st = stat()
        XCTAssertEqual(stat(stale, &st), 0)
        XCTAssertEqual(st.st_mode & 0o777, 0o660, "socket mode 0660")
        XCTAssertEqual(second.stop(), 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: stale), "socket file removed on stop")

        // A path that is not a socket is never replaced.
        let file = dir.appendingPathComponent("file").path
        try "keep me".write(toFile: file, atomically: true, encoding: .utf8)
        let refused = try reckerd(["--socket", file])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertEqual(try String(contentsOfFile: file, encoding: .utf8), "keep me")
    }

    func testSigtermDrainsRequestsInFlight() async throws {
        let server = try FaultServer()
        let daemon = try DaemonProcess()
        let client = ReckerClient(socketPath: daemon.socketPath)
        defer { client.close() }
        let results = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0 ..< 20 {
                group.addTask {
                    let r = try await client.send(ReckerRequest(url: server.url("/delay/700")))
                    return r.status
                }
            }
            group.addTask {
                try await Task.sleep(nanoseconds: 300_000_000)
                kill(daemon.pid, SIGTERM)
                return -1
            }
            var all: [Int] = []
            for try await s in group { all.append(s) }
            return all
        }
        XCTAssertEqual(results.filter { $0 == 200 }.count, 20, "each in-flight request finished: \(results)")
        XCTAssertTrue(TestEnvironment.eventually(10) { !daemon.process.isRunning })
        daemon.process.waitUntilExit()
        XCTAssertEqual(daemon.process.terminationStatus, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: daemon.socketPath))
        XCTAssertNil(try? UnixSocket(connectingTo: daemon.socketPath))
    }

    func testDrainTimeoutAnswersTheRestWithAnError() async throws {
        let server = try FaultServer()
        let daemon = try DaemonProcess(config: #"{ "drainTimeout": 200 }"#)
        let client = ReckerClient(socketPath: daemon.socketPath)
        defer { client.close() }
        async let slow = client.send(ReckerRequest(url: server.url("/delay/5000")))
        try await Task.sleep(nanoseconds: 300_000_000)
        kill(daemon.pid, SIGTERM)
        do {
            _ = try await slow
            XCTFail("a request longer than the drain timeout cannot finish")
        } catch let e as ReckerError {
            XCTAssertEqual(e.code, .shuttingDown, "\(e)")
        }
        XCTAssertTrue(TestEnvironment.eventually(10) { !daemon.process.isRunning })
        daemon.process.waitUntilExit()
        XCTAssertEqual(daemon.process.terminationStatus, 0)
    }

    func testNoDaemonGivesAClearMessage() throws {
        let dir = try TestEnvironment.makeTempDir("nothing")
        let r = try TestEnvironment.run(TestEnvironment.binDir.appendingPathComponent("recker").path,
                                        ["--socket", dir.appendingPathComponent("nothing-here.sock").path, "http://127.0.0.1:1/"])
        XCTAssertEqual(r.status, 70)
        XCTAssertTrue(r.stderr.contains("no reckerd listening"), r.stderr)
        XCTAssertTrue(r.stderr.contains("start the daemon"), r.stderr)
    }
}
