import Foundation
import ReckerProtocol
import ReckerTestSupport
import XCTest

/// reckerd as a systemd service: notify, socket activation, watchdog, reload, access
/// control, hardening, logging.
final class ServiceTests: XCTestCase {
    /// A datagram socket standing in for systemd's NOTIFY_SOCKET.
    final class NotifyListener {
        let path: String
        let fd: Int32

        init(dir: URL) throws {
            path = dir.appendingPathComponent("notify.sock").path
            fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
            var addr = sockaddr_un()
            addr.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &addr.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
            let rc = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            guard rc == 0 else { throw NSError(domain: "NotifyListener", code: Int(errno)) }
            var tv = timeval(tv_sec: 0, tv_usec: 200_000)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        }

        deinit { close(fd) }

        /// Every datagram received within `seconds`, until `until` holds for what has come.
        func collect(seconds: Double, until: ([String]) -> Bool) -> [String] {
            var got: [String] = []
            let deadline = Date().addingTimeInterval(seconds)
            var buf = [UInt8](repeating: 0, count: 4096)
            while Date() < deadline && !until(got) {
                let n = recv(fd, &buf, buf.count, 0)
                if n > 0 { got.append(String(decoding: buf[0 ..< n], as: UTF8.self)) }
            }
            return got
        }
    }

    /// The body of the one response `c` waits for (at most 10 frames).
    static func body(from c: ReckerConnection) throws -> [UInt8] {
        var body: [UInt8] = []
        for _ in 0 ..< 10 {
            switch try c.receive() {
            case .responseBody(_, let data): body += data
            case .responseEnd, .error: return body
            default: continue
            }
        }
        return body
    }

    func testSocketActivationNotifyAndWatchdog() throws {
        let dir = try TestEnvironment.makeTempDir("activate")
        let nginx = try Nginx(files: Fixtures.files)
        let notify = try NotifyListener(dir: dir)
        let sock = dir.appendingPathComponent("activated.sock").path
        let config = dir.appendingPathComponent("c.json").path
        try Fixtures.config(nginx).write(toFile: config, atomically: true, encoding: .utf8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/systemd-socket-activate")
        p.arguments = ["-l", sock, "-E", "NOTIFY_SOCKET=\(notify.path)", "-E", "WATCHDOG_USEC=2000000",
                       TestEnvironment.binDir.appendingPathComponent("reckerd").path,
                       "--config", config, "--socket", dir.appendingPathComponent("ignored.sock").path]
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        defer { if p.isRunning { p.terminate(); p.waitUntilExit() } }
        XCTAssertTrue(TestEnvironment.eventually(5) { FileManager.default.fileExists(atPath: sock) })

        // The first connection starts the daemon in place, on the passed socket. (In-process
        // client: Foundation's Process does not reap a second child while this one runs.)
        let c = try ReckerConnection(socketPath: sock)
        try c.send(.requestHead(stream: 1, RequestHead(url: nginx.url("/hello.txt")), endRequest: true))
        let body = try Self.body(from: c)
        c.close()
        XCTAssertEqual(String(decoding: body, as: UTF8.self), "hello from nginx\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("ignored.sock").path))

        let messages = notify.collect(seconds: 6) { got in
            got.contains { $0.contains("READY=1") } && got.contains { $0.contains("WATCHDOG=1") }
                && got.contains { $0.contains("STATUS=") && $0.contains("upstream connections open") }
        }
        let all = messages.joined(separator: "|")
        XCTAssertTrue(all.contains("READY=1"), all)
        XCTAssertTrue(all.contains("WATCHDOG=1"), all)
        XCTAssertTrue(all.contains("STATUS="), all)

        kill(p.processIdentifier, SIGTERM)
        XCTAssertTrue(TestEnvironment.eventually(10) { !p.isRunning })
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0)
        let stopping = notify.collect(seconds: 1) { $0.contains { $0.contains("STOPPING=1") } }
        XCTAssertTrue(stopping.joined().contains("STOPPING=1"))
        let log = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertTrue(log.contains("ignored"), "says that the configured socket is ignored: \(log)")
    }

    /// systemd's WatchdogSec=1 (WATCHDOG_USEC 1,000,000) kills a service whose pings are a
    /// second apart: they come every half interval, however short the interval (they came
    /// once a second at best, the loop's longest sleep).
    func testWatchdogPingsComeAtHalfTheIntervalEvenBelowASecond() throws {
        let dir = try TestEnvironment.makeTempDir("watchdog")
        let notify = try NotifyListener(dir: dir)
        let daemon = try DaemonProcess(environment: ["NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "500000", "PATH": "/usr/bin:/bin"])
        let messages = notify.collect(seconds: 3) { _ in false }
        let pings = messages.filter { $0.contains("WATCHDOG=1") }.count
        print("WATCHDOG_USEC 500000: \(pings) pings in 3 s")
        // Every 0.25 s is 12 in 3 s; once a second was 3.
        XCTAssertGreaterThanOrEqual(pings, 6, messages.joined(separator: "|"))
        XCTAssertEqual(daemon.stop(), 0)
    }

    /// A SIGHUP while the daemon drains to stop is not a reload: no RELOADING=1 or READY=1
    /// after STOPPING=1 (systemd would take the stopping service for ready again).
    func testAReloadAskedWhileStoppingIsIgnored() throws {
        let server = try FaultServer()
        let dir = try TestEnvironment.makeTempDir("stop-reload")
        let notify = try NotifyListener(dir: dir)
        let daemon = try DaemonProcess(environment: ["NOTIFY_SOCKET": notify.path, "PATH": "/usr/bin:/bin"])
        XCTAssertFalse(notify.collect(seconds: 5) { $0.contains { $0.contains("READY=1") } }.isEmpty)
        // A request in flight keeps the drain going while the SIGHUP arrives.
        let c = try ReckerConnection(socketPath: daemon.socketPath)
        try c.send(.requestHead(stream: 1, RequestHead(url: server.url("/delay/1500")), endRequest: true))
        XCTAssertTrue(TestEnvironment.eventually(5) { server.connections == 1 })
        kill(daemon.pid, SIGTERM)
        let stopping = notify.collect(seconds: 5) { $0.contains { $0.contains("STOPPING=1") } }
        XCTAssertTrue(stopping.joined().contains("STOPPING=1"), stopping.joined(separator: "|"))
        kill(daemon.pid, SIGHUP)
        let body = try Self.body(from: c)
        XCTAssertEqual(String(decoding: body, as: UTF8.self), "ok", "the request in flight finished")
        XCTAssertNotNil(daemon.stop(signal: SIGTERM, seconds: 10))
        let after = stopping.drop { !$0.contains("STOPPING=1") } + notify.collect(seconds: 0.5) { _ in false }
        XCTAssertFalse(after.contains { $0.contains("READY=1") || $0.contains("RELOADING=1") }, after.joined(separator: "|"))
        XCTAssertTrue(daemon.stderr.contains("reload ignored: the daemon is stopping"), daemon.stderr)
        XCTAssertFalse(daemon.stderr.contains("config reloaded"), daemon.stderr)
    }

    func testReloadKeepsUnchangedDomainsWarmAndRefusesBrokenConfigs() throws {
        let nginx = try Nginx(files: Fixtures.files)
        let daemon = try DaemonProcess(config: Fixtures.config(nginx))
        func fetch() throws -> Int {
            let before = nginx.log().count
            XCTAssertEqual(try daemon.recker(["-sS", nginx.url("/hello.txt", https: true)]).text, "hello from nginx\n")
            return nginx.waitForLog(count: before + 1).last!.connection
        }
        let first = try fetch()

        // Another domain changes: this one keeps its connection.
        try Fixtures.config(nginx, extra: #""domains": { "other.test": { "connections": 3 } }"#)
            .write(toFile: daemon.configPath, atomically: true, encoding: .utf8)
        XCTAssertTrue(daemon.reload())
        XCTAssertEqual(try fetch(), first, "unchanged domain: nginx saw the same connection")

        // A broken config is refused; the daemon keeps serving on the old one.
        try #"{ "agent": { "connections": "many" } }"#.write(toFile: daemon.configPath, atomically: true, encoding: .utf8)
        XCTAssertTrue(daemon.reload())
        XCTAssertEqual(try fetch(), first)
        XCTAssertTrue(daemon.process.isRunning)

        // This domain changes: its connection drains and a new one opens.
        try Fixtures.config(nginx, extra: #""domains": { "localhost": { "connections": 3 } }"#)
            .write(toFile: daemon.configPath, atomically: true, encoding: .utf8)
        XCTAssertTrue(daemon.reload())
        XCTAssertNotEqual(try fetch(), first, "changed domain: a new connection")
        XCTAssertEqual(daemon.stop(), 0)
        XCTAssertTrue(daemon.stderr.contains("reload refused"), daemon.stderr)
        XCTAssertTrue(daemon.stderr.contains("agent.connections"), daemon.stderr)
    }

    func testAllowUsersRefusesOtherUids() throws {
        let server = try FaultServer()
        let onlyNobody = try DaemonProcess(config: #"{ "allowUsers": ["nobody"] }"#)
        let refused = try onlyNobody.recker(["-sS", server.url("/delay/1")])
        XCTAssertEqual(refused.status, 72)
        XCTAssertTrue(refused.stderr.contains("ACCESS_DENIED"), refused.stderr)
        XCTAssertEqual(server.requests, 0)

        let onlyRoot = try DaemonProcess(config: #"{ "allowUsers": [0], "allowGroups": [] }"#)
        XCTAssertEqual(try onlyRoot.recker(["-sS", server.url("/delay/1")]).text, "ok")
        // Another uid, allowed through the socket's file mode but not by the daemon.
        chmod(onlyRoot.socketPath, 0o666)
        let other = try TestEnvironment.run("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups",
                                                                  TestEnvironment.binDir.appendingPathComponent("recker").path,
                                                                  "--socket", onlyRoot.socketPath, "-sS", server.url("/delay/1")])
        XCTAssertEqual(other.status, 72, other.stderr)
        XCTAssertTrue(other.stderr.contains("uid 65534"), other.stderr)

        let byGroup = try DaemonProcess(config: #"{ "allowGroups": ["root"] }"#)
        XCTAssertEqual(try byGroup.recker(["-sS", server.url("/delay/1")]).text, "ok")
        let users = try byGroup.stats()["users"] as? [String: [String: Int]]
        XCTAssertEqual(users?["0"]?["requests_total"], 1, "stats per uid")
    }

    func testShippedUnitIsHardened() throws {
        let unit = TestEnvironment.packageRoot.appendingPathComponent("deploy/systemd/reckerd.service").path
        let r = try TestEnvironment.run("/usr/bin/systemd-analyze", ["security", "--offline=yes", "--no-pager", unit])
        let line = r.text.split(separator: "\n").first { $0.contains("Overall exposure level") }
        let score = line.flatMap { l in l.split(separator: " ").compactMap { Double($0) }.first }
        XCTAssertNotNil(score, r.text + r.stderr)
        XCTAssertLessThanOrEqual(score ?? 99, 1.5)
        print("systemd-analyze security --offline=yes reckerd.service: \(score ?? -1)")
    }

    func testSecretsNeverReachTheLog() throws {
        let server = try FaultServer()
        let daemon = try DaemonProcess(config: #"{ "logLevel": "trace" }"#)
        _ = try daemon.recker(["-sS", "-H", "Authorization: Bearer SECRET-1", "-H", "Cookie: s=SECRET-2",
                               "-H", "X-Api-Key: SECRET-3", server.url("/headers?token=SECRET-4")])
        _ = try daemon.recker(["-sS", "http://user:SECRET-5@127.0.0.1:\(TestEnvironment.freePort())/x?key=SECRET-6"])
        XCTAssertEqual(daemon.stop(), 0)
        let log = daemon.stderr
        XCTAssertTrue(log.contains("/headers"), "requests are logged: \(log)")
        XCTAssertFalse(log.contains("SECRET"), log)
    }

    func testFallbackFetchesDirectlyWithoutADaemon() throws {
        let nginx = try Nginx(files: Fixtures.files)
        let recker = TestEnvironment.binDir.appendingPathComponent("recker").path
        let nowhere = ["--socket", "/tmp/reckerd-test-no-daemon-\(getpid()).sock"]
        let direct = try TestEnvironment.run(recker, nowhere + ["--fallback", "-w", "\n%{http_code} %{pooled}", nginx.url("/hello.txt", https: true)],
                                             environment: ["CURL_CA_BUNDLE": nginx.caFile, "PATH": "/usr/bin:/bin"])
        XCTAssertEqual(direct.status, 0, direct.stderr)
        XCTAssertEqual(direct.text, "hello from nginx\n\n200 0", "fetched, and says it was not pooled")
        XCTAssertTrue(direct.stderr.contains("not pooled"), direct.stderr)
        let byEnv = try TestEnvironment.run(recker, nowhere + ["-s", nginx.url("/n/7.txt")],
                                            environment: ["RECKER_FALLBACK": "1", "PATH": "/usr/bin:/bin"])
        XCTAssertEqual(byEnv.text, "item 7\n", byEnv.stderr)
        XCTAssertEqual(nginx.waitForLog(count: 2).count, 2, "both reached nginx")
    }
}
