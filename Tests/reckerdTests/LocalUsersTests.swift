import Foundation
import ReckerProtocol
import ReckerTestSupport
import XCTest

/// Other local users: none can stand in for the daemon, read another's requests, or get
/// past the allow lists; the service's environment cannot redirect everyone's traffic.
final class LocalUsersTests: XCTestCase {
    let reckerd = TestEnvironment.binDir.appendingPathComponent("reckerd").path
    let recker = TestEnvironment.binDir.appendingPathComponent("recker").path
    /// A plain environment: no RECKER_SOCKET, no XDG_RUNTIME_DIR.
    let plain = ["PATH": "/usr/bin:/bin"]

    func asUser(_ uid: UInt32, groups: [UInt32] = [], _ program: String, _ args: [String]) throws -> TestEnvironment.Result {
        let groupArgs = groups.isEmpty ? ["--clear-groups"] : ["--groups=" + groups.map(String.init).joined(separator: ",")]
        return try TestEnvironment.run("/usr/bin/setpriv", ["--reuid=\(uid)", "--regid=\(uid)"] + groupArgs + [program] + args,
                                       environment: plain, timeout: 20)
    }

    /// Another user made `/tmp/reckerd-UID` first (mode 0777) and put a socket in it: the
    /// daemon of UID refuses to serve there and `recker` of UID refuses to connect, each
    /// saying why; nothing reaches the other user's socket. Without it, the daemon makes
    /// the directory 0700 and both work.
    func testASocketDirectoryAnotherUserMadeIsRefusedByBothSides() throws {
        let server = try FaultServer()
        let (me, other): (UInt32, UInt32) = (4242, 4343)
        let dir = "/tmp/reckerd-\(me)"
        try? FileManager.default.removeItem(atPath: dir)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let work = try TestEnvironment.makeTempDir("users")
        let config = work.appendingPathComponent("config.json").path
        try "{}".write(toFile: config, atomically: true, encoding: .utf8)
        chmod(config, 0o644)

        XCTAssertEqual(mkdir(dir, 0o777), 0)
        chown(dir, other, other)
        chmod(dir, 0o777)
        let refused = try asUser(me, reckerd, ["--config", config])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.stderr.contains("refusing to serve") && refused.stderr.contains("uid \(other)"), refused.stderr)

        // The other user's socket, listening where UID's client looks.
        let sock = dir + "/reckerd.sock"
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in sock.utf8.enumerated() { raw[i] = b }
        }
        XCTAssertEqual(withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
        } }, 0)
        XCTAssertEqual(listen(fd, 8), 0)
        chown(sock, other, other)
        chmod(sock, 0o777)
        let client = try asUser(me, recker, ["-sS", server.url("/delay/1")])
        XCTAssertEqual(client.status, 70, client.stderr)
        XCTAssertTrue(client.stderr.contains("refusing the socket") && client.stderr.contains("uid \(other)"), client.stderr)
        XCTAssertEqual(accept(fd, nil, nil), -1, "nothing connected to the other user's socket")
        XCTAssertEqual(server.requests, 0)

        // The same for $XDG_RUNTIME_DIR: one others can write is refused.
        var withXDG = plain
        withXDG["XDG_RUNTIME_DIR"] = dir
        let xdg = try TestEnvironment.run("/usr/bin/setpriv", ["--reuid=\(me)", "--regid=\(me)", "--clear-groups", reckerd, "--config", config],
                                          environment: withXDG, timeout: 20)
        XCTAssertNotEqual(xdg.status, 0)
        XCTAssertTrue(xdg.stderr.contains("refusing to serve"), xdg.stderr)

        // Without the squatter: the daemon makes the directory 0700 and serves.
        try FileManager.default.removeItem(atPath: dir)
        let daemon = Process()
        daemon.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        daemon.arguments = ["--reuid=\(me)", "--regid=\(me)", "--clear-groups", reckerd, "--config", config]
        daemon.environment = plain
        daemon.standardError = FileHandle.nullDevice
        try daemon.run()
        defer { if daemon.isRunning { daemon.terminate(); daemon.waitUntilExit() } }
        XCTAssertTrue(TestEnvironment.eventually(10) { FileManager.default.fileExists(atPath: sock) })
        var st = stat()
        XCTAssertEqual(lstat(dir, &st), 0)
        XCTAssertEqual(st.st_uid, me)
        XCTAssertEqual(st.st_mode & 0o777, 0o700)
        XCTAssertEqual(try asUser(me, recker, ["-sS", server.url("/delay/1")]).text, "ok")
    }

    /// `allowGroups` admits a member of a listed supplementary group while the daemon cannot
    /// read other users' /proc (the shipped unit's ProtectProc=invisible, here hidepid in a
    /// private mount namespace): groups come from the socket (SO_PEERGROUPS).
    func testAllowGroupsSeesSupplementaryGroupsWhereProcIsHidden() throws {
        let server = try FaultServer()
        let work = try TestEnvironment.makeTempDir("groups")
        let config = work.appendingPathComponent("config.json").path
        try #"{ "allowGroups": [5555] }"#.write(toFile: config, atomically: true, encoding: .utf8)
        chmod(config, 0o644)
        let sock = work.appendingPathComponent("r.sock").path
        // One script runs it all: Foundation's Process does not reap a second child while a
        // first runs. The daemon, as uid 4242, starts on the first connection.
        let url = server.url("/delay/1")
        let script = """
            unshare -m --propagation private /bin/sh -c 'mount -t proc -o hidepid=invisible proc /proc && \
              exec /usr/bin/systemd-socket-activate -l \(sock) /usr/bin/setpriv --reuid=4242 --regid=4242 --clear-groups \(reckerd) --config \(config)' \
              >/dev/null 2>&1 &
            pid=$!
            for i in $(seq 1 100); do [ -S \(sock) ] && break; sleep 0.05; done
            chmod 666 \(sock)
            member=$(env -i PATH=/usr/bin:/bin setpriv --reuid=4343 --regid=4343 --groups=5555 \(recker) --socket \(sock) -sS \(url) 2>&1)
            echo "member: $member"
            env -i PATH=/usr/bin:/bin setpriv --reuid=4344 --regid=4344 --clear-groups \(recker) --socket \(sock) -sS \(url) 2>&1
            echo "stranger: $?"
            kill $pid 2>/dev/null; pkill -f "reckerd --config \(config)"; wait
            """
        let r = try TestEnvironment.run("/bin/sh", ["-c", script], timeout: 30)
        XCTAssertTrue(r.text.contains("member: ok"), r.text)
        XCTAssertTrue(r.text.contains("stranger: 72"), r.text)
        XCTAssertTrue(r.text.contains("uid 4344"), r.text)
    }

    /// A proxy in the daemon's environment is ignored; one named in the config is used.
    func testOnlyTheConfigNamesAProxy() throws {
        let server = try FaultServer()
        let dead = TestEnvironment.freePort()
        var env = ProcessInfo.processInfo.environment
        for name in ["http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"] {
            env[name] = "http://127.0.0.1:\(dead)"
        }
        let daemon = try DaemonProcess(environment: env)
        XCTAssertEqual(try daemon.recker(["-sS", server.url("/delay/1")]).text, "ok", "reached directly")

        let proxy = try FaultServer()
        let proxied = try DaemonProcess(config: #"{ "upstreamProxy": "http://127.0.0.1:\#(proxy.port)" }"#)
        _ = try proxied.recker(["-sS", server.url("/digest")])
        XCTAssertEqual(proxy.received("GET", server.url("/digest")), 1, "the configured proxy got the request")
    }

    /// The destination policy holds on the address actually connected, however the URL
    /// spells it or whatever a name resolves to. The daemon runs in a network namespace of
    /// the test's own with only loopback, and a hosts file of its own, so even a broken
    /// policy could not send a packet off the machine.
    func testThePolicyRefusesEverySpellingOfTheMetadataAddress() throws {
        let work = try TestEnvironment.makeTempDir("policy")
        let hosts = work.appendingPathComponent("hosts").path
        try "127.0.0.1 localhost\n169.254.169.254 metadata.test\n10.1.2.3 private.test\n".write(toFile: hosts, atomically: true, encoding: .utf8)
        let inside = ["/usr/bin/unshare", "-n", "-m", "--propagation", "private", "/bin/sh", "-c",
                      "ip link set lo up && mount --bind \(hosts) /etc/hosts && exec \"$0\" \"$@\""]
        let daemon = try DaemonProcess(config: #"{ "policy": { "denyPrivate": true } }"#, wrapper: inside)
        let denied = [
            "http://169.254.169.254/latest/meta-data/", "http://[::ffff:169.254.169.254]/", "http://2852039166/",
            "http://0251.0376.0251.0376/", "http://metadata.test/", "http://[fe80::1]:8080/", "http://10.1.2.3/",
            "http://private.test/", "http://[fd00:ec2::254]/", "http://[64:ff9b::a9fe:a9fe]/", "http://[::ffff:0:a9fe:a9fe]/",
        ]
        for url in denied {
            let r = try daemon.recker(["-sS", url])
            XCTAssertEqual(r.status, 72, "\(url): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("DESTINATION_DENIED"), "\(url): \(r.stderr)")
        }
        let metadata = try daemon.recker(["-sS", "http://2852039166/"]).stderr
        XCTAssertTrue(metadata.contains("169.254.169.254"), "the message names the address: \(metadata)")
        // Loopback is allowed unless denyLoopback: a refused connect, not the policy.
        let local = try daemon.recker(["-sS", "http://127.0.0.1:9/"])
        XCTAssertEqual(local.status, 7, local.stderr)
        // With denyLoopback, every way to this host is refused too.
        let strict = try DaemonProcess(config: #"{ "policy": { "denyLoopback": true } }"#, wrapper: inside)
        for url in ["http://127.0.0.1:9/", "http://0.0.0.0:9/", "http://0:9/", "http://[::]:9/", "http://[::1]:9/",
                    "http://[::ffff:0.0.0.0]:9/", "http://localhost:9/", "http://127.1:9/"] {
            let r = try strict.recker(["-sS", url])
            XCTAssertTrue(r.stderr.contains("DESTINATION_DENIED"), "\(url): \(r.stderr)")
        }
    }

    /// Per-uid counts in stats: each user sees only their own; root sees every uid.
    func testStatsShowOneUserNothingOfAnother() throws {
        let server = try FaultServer()
        let daemon = try DaemonProcess()
        chmod(daemon.socketPath, 0o666)
        for uid: UInt32 in [4711, 4712] {
            let r = try asUser(uid, recker, ["--socket", daemon.socketPath, "-sS", server.url("/delay/1")])
            XCTAssertEqual(r.text, "ok", r.stderr)
        }
        func users(_ text: String) throws -> [String: Any] {
            let doc = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
            return doc?["users"] as? [String: Any] ?? ["unreadable": text]
        }
        let seenBy4711 = try asUser(4711, recker, ["--socket", daemon.socketPath, "stats", "--json"])
        XCTAssertEqual(try users(seenBy4711.text).keys.sorted(), ["4711"], seenBy4711.stderr)
        let prometheus = try asUser(4712, recker, ["--socket", daemon.socketPath, "stats", "--prometheus"]).text
        XCTAssertTrue(prometheus.contains(#"reckerd_user_requests_total{uid="4712"} 1"#), prometheus)
        XCTAssertFalse(prometheus.contains(#"uid="4711""#), "4712 sees nothing of 4711")
        let table = try asUser(4712, recker, ["--socket", daemon.socketPath, "stats"]).text
        XCTAssertFalse(table.contains("4711"), table)
        let seenByRoot = try daemon.recker(["stats", "--json"])
        XCTAssertEqual(try users(seenByRoot.text).keys.sorted(), ["4711", "4712"], "root sees every uid")
        XCTAssertEqual(try daemon.stats()["requests_total"] as? Int, 2, "totals count everyone for everyone")
    }

    /// Waiting requests take turns by user, not by connection: one user's 20 connections
    /// with a request each do not put another user 20 turns back.
    func testManyConnectionsOfOneUserGetNoMoreTurnsThanOne() throws {
        let server = try FaultServer()
        let daemon = try DaemonProcess(config: #"{ "agent": { "connections": 1 } }"#)
        chmod(daemon.socketPath, 0o666)
        let many = try (0 ..< 20).map { _ in try ReckerConnection(socketPath: daemon.socketPath) }
        defer { for c in many { c.close() } }
        for c in many {
            try c.send(.requestHead(stream: 1, RequestHead(url: server.url("/delay/300")), endRequest: true))
        }
        usleep(200_000)
        let started = Date()
        let other = try asUser(4713, recker, ["--socket", daemon.socketPath, "-sS", server.url("/delay/1")])
        let waited = Date().timeIntervalSince(started)
        XCTAssertEqual(other.text, "ok", other.stderr)
        // By connection it would wait for the 19 still queued: 5.7 s at 300 ms each.
        XCTAssertLessThan(waited, 2.5, "the other user waited \(waited) s")
    }
}
