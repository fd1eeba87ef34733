import Foundation
import ReckerProtocol
import ReckerTestSupport
import XCTest

/// The config as an operator meets it: syntax errors with line and column, hints for keys
/// at the wrong level, CA files checked at start and on reload, CAs added to the system's,
/// and log lines with their time.
final class ConfigTests: XCTestCase {
    func reckerd(_ args: [String], environment: [String: String]? = nil) throws -> TestEnvironment.Result {
        try TestEnvironment.run(TestEnvironment.binDir.appendingPathComponent("reckerd").path, args,
                                environment: environment, timeout: 20)
    }

    /// Writes `bytes` as a config and returns `reckerd --check-config`'s result.
    func check(_ bytes: Data, in dir: URL, name: String, environment: [String: String]? = nil) throws -> TestEnvironment.Result {
        let path = dir.appendingPathComponent(name).path
        try bytes.write(to: URL(fileURLWithPath: path))
        return try reckerd(["--config", path, "--check-config"], environment: environment)
    }

    func assertRefused(_ r: TestEnvironment.Result, mentioning expected: [String], _ what: String,
                       file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertNotEqual(r.status, 0, what, file: file, line: line)
        XCTAssertEqual(r.stdout.count, 0, "nothing on stdout for a refused config: \(what)", file: file, line: line)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, "one clear line: \(r.stderr)", file: file, line: line)
        for e in expected {
            XCTAssertTrue(r.stderr.contains(e), "\(what): expected «\(e)» in «\(r.stderr)»", file: file, line: line)
        }
    }

    /// The HTTP front and /metrics listen on loopback only, written in one canonical form:
    /// any 127.x.y.z or ::1 (however spelt) with a port 1-65535; never a wildcard, another
    /// address, a host name or a mapped address.
    func testListenAddressesAreLoopbackOnly() throws {
        let dir = try TestEnvironment.makeTempDir("listen")
        func listen(_ address: String) throws -> TestEnvironment.Result {
            try check(Data(#"{ "metrics": { "listen": "\#(address)" } }"#.utf8), in: dir, name: "listen.json")
        }
        for (given, canonical) in [("127.0.0.1:8118", "127.0.0.1:8118"), ("127.1.2.3:1", "127.1.2.3:1"), ("[::1]:9464", "[::1]:9464"),
                                   ("[0:0:0:0:0:0:0:1]:9464", "[::1]:9464")] {
            let r = try listen(given)
            XCTAssertEqual(r.status, 0, "\(given): \(r.stderr)")
            XCTAssertTrue(r.text.contains(#""listen" : "\#(canonical)""#), "\(given) -> \(r.text)")
        }
        for bad in ["0.0.0.0:80", "[::]:80", "10.0.0.1:80", "localhost:80", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", "[::1]",
                    "[::ffff:127.0.0.1]:80", "127.0.0.1:+80", ""] {
            assertRefused(try listen(bad), mentioning: ["metrics.listen"], bad)
        }
    }

    func testSyntaxErrorsNameLineAndColumn() throws {
        let dir = try TestEnvironment.makeTempDir("config-syntax")
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        let cases: [(String, [String])] = [
            ("{\n  \"agent\": {\n    \"connections\": 5,\n  }\n}\n", [":4:3:", "trailing comma"]),
            ("{ \"warm\": [\n  { \"url\": \"http://127.0.0.1:9/\" },\n] }", [":3:1:", "trailing comma"]),
            ("{\n  \"logLevel\": \"info\",\n  \"agent\": {},\n    \"logLevel\": \"debug\"\n}", [":4:5:", "duplicate key \"logLevel\"", "line 2, column 3"]),
            ("{ \"agent\": { \"keepAlive\": true, \"keepAlive\": false } }", [":1:33:", "duplicate key \"keepAlive\"", "column 14"]),
            ("{\n  // the pool\n  \"agent\": {}\n}", [":2:3:", "comments are not JSON"]),
            ("{ 'agent': {} }", [":1:3:", "double quotes"]),
            ("{ \"logLevel\": \"info }", [":1:22:", "unterminated string", "starts at line 1, column 15"]),
            ("{ \"drainTimeout\": 0100 }", [":1:19:", "leading zeros"]),
            ("{ \"agent\": { \"connections\": 5 } ", [":1:33:", "'}' is missing"]),
            ("{ not json", [":1:3:", "not valid JSON"]),
            ("{ \"a\": 1 } {", [":1:12:", "after the end"]),
            ("{\"ü\": 1,}", [":1:9:", "trailing comma"]),
            ("", [":1:1:", "a value is missing"]),
            ("[1, 2]", [":1:1:", "the top level must be an object"]),
            (deep, [":1:65:", "nested deeper than 64"]),
            ("{ \"drainTimeout\": 1e400 }", [":1:19:", "drainTimeout must be a whole number"]),
            ("{ \"drainTimeout\": 99999999999999999999999 }", [":1:19:", "drainTimeout must be a whole number"]),
            ("{\n\"agent\":\n  { \"connections\": \"many\" } }", [":3:20:", "agent.connections must be a whole number"]),
            ("{ \"logLevel\": \"\\q\" }", [":1:17:", "unknown escape"]),
            ("{ \"limits\": { \"spillDirectory\": \"/nonexistent-reckerd-spill\" } }", [":1:33:", "limits.spillDirectory must be a directory"]),
            ("{ \"limits\": { \"spillDirectory\": \"/etc/hostname\" } }", [":1:33:", "/etc/hostname is not"]),
        ]
        for (i, (json, expected)) in cases.enumerated() {
            assertRefused(try check(Data(json.utf8), in: dir, name: "bad\(i).json"), mentioning: ["bad\(i).json"] + expected, json.prefix(60).description)
        }
        let invalidUTF8 = Data("{ \"socket\": \"/tmp/".utf8) + Data([0xC3, 0x28]) + Data("\" }".utf8)
        assertRefused(try check(invalidUTF8, in: dir, name: "utf8.json"), mentioning: [":1:13:", "not valid UTF-8"], "invalid UTF-8")
        let nul = Data("{ \"logLevel\": \"in".utf8) + Data([0]) + Data("fo\" }".utf8)
        assertRefused(try check(nul, in: dir, name: "nul.json"), mentioning: [":1:18:", "control character"], "NUL in a string")

        // What is valid JSON still loads: escapes, a byte-order mark, 5.0 as a whole number.
        let fine = Data([0xEF, 0xBB, 0xBF]) + Data(#"{ "socket": "/tmp/a\u00e9\ud83d\ude00\"b", "drainTimeout": 5.0e3, "policy": null }"#.utf8)
        let ok = try check(fine, in: dir, name: "fine.json")
        XCTAssertEqual(ok.status, 0, ok.stderr)
        let doc = try XCTUnwrap(JSONSerialization.jsonObject(with: ok.stdout) as? [String: Any])
        XCTAssertEqual(doc["socket"] as? String, "/tmp/aé😀\"b")
        XCTAssertEqual(doc["drainTimeout"] as? Int, 5000)
    }

    func testAConfigThatIsNoRegularFileIsRefusedAtOnce() throws {
        let dir = try TestEnvironment.makeTempDir("config-files")
        let fifo = dir.appendingPathComponent("fifo.json").path
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        let big = dir.appendingPathComponent("big.json")
        try Data(("{ \"socket\": \"" + String(repeating: "a", count: 1 << 20) + "\" }").utf8).write(to: big)
        let cases: [(String, String)] = [
            ("/dev/zero", "is not a regular file"), (fifo, "is not a regular file"), (dir.path, "is a directory"),
            (big.path, "is larger than 1048576 bytes"), (dir.appendingPathComponent("none.json").path, "No such file or directory"),
        ]
        for (path, why) in cases {
            assertRefused(try reckerd(["--config", path, "--check-config"]), mentioning: ["cannot read config \(path): \(why)"], path)
        }
    }

    func testKeysAtTheWrongLevelOrMisspeltGetAHint() throws {
        let dir = try TestEnvironment.makeTempDir("config-keys")
        let cases: [(String, [String])] = [
            (#"{ "keepAlive": true }"#, [":1:3:", "keepAlive is not a top-level setting; did you mean agent.keepAlive?"]),
            (#"{ "caFile": "/x.pem" }"#, ["did you mean tls.caFile?"]),
            (#"{ "agent": { "maxFrame": 65536 } }"#, [":1:14:", "agent.maxFrame is not a setting of agent; did you mean limits.maxFrame?"]),
            (#"{ "agent": { "conections": 5 } }"#, ["agent.conections is not a known setting; did you mean agent.connections?"]),
            (#"{ "agent": { "keepalive": true } }"#, ["did you mean agent.keepAlive?", "case-sensitive"]),
            (#"{ "limits": { "maxFrames": 65536 } }"#, ["did you mean limits.maxFrame?"]),
            (#"{ "domains": { "a.test": { "perDomainPooling": false } } }"#, ["domains.a.test.perDomainPooling", "did you mean agent.perDomainPooling?"]),
            (#"{ "tls": { "extraCAFile": "/x.pem" } }"#, ["did you mean tls.extraCaFile?"]),
            (#"{ "xyzzy": 1 }"#, ["xyzzy is not a known setting", "known here: agent,"]),
            (#"{ "agent": { "connections": 5 }, "keepAliveTimeot": 100 }"#, [":1:34:", "did you mean agent.keepAliveTimeout?"]),
        ]
        for (i, (json, expected)) in cases.enumerated() {
            assertRefused(try check(Data(json.utf8), in: dir, name: "key\(i).json"), mentioning: expected, json)
        }
    }

    func testCheckConfigPrintsTheEffectiveConfigThatLoadsBackTheSame() throws {
        let dir = try TestEnvironment.makeTempDir("config-effective")
        let ca = dir.appendingPathComponent("ca.pem").path
        try TestEnvironment.shell("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout \(dir.path)/ca.key -out \(ca) -days 2 -subj /CN=config-test 2>/dev/null")
        let config = #"""
            { "socket": "/tmp/we\"ird\\path\u0001", "allowUsers": [0, "root"], "allowGroups": ["0"],
              "domains": { "API.test:8443": { "connections": 3 } },
              "warm": [{ "url": "http://127.0.0.1:9/", "minIdle": 2 }],
              "tls": { "caFile": "\#(ca)", "extraCaFile": "\#(ca)" },
              "upstreamProxy": "http://127.0.0.1:3128", "noProxy": "localhost" }
            """#
        let first = try check(Data(config.utf8), in: dir, name: "a.json")
        XCTAssertEqual(first.status, 0, first.stderr)
        let doc = try XCTUnwrap(JSONSerialization.jsonObject(with: first.stdout) as? [String: Any], first.text)
        XCTAssertEqual(doc["socket"] as? String, "/tmp/we\"ird\\path\u{1}")
        XCTAssertEqual(doc["allowUsers"] as? [Int], [0, 0])
        XCTAssertEqual((doc["domains"] as? [String: [String: Any]])?["api.test:8443"]?["connections"] as? Int, 3)
        XCTAssertEqual((doc["tls"] as? [String: Any])?["extraCaFile"] as? [String], [ca])
        XCTAssertEqual((doc["agent"] as? [String: Any])?["connections"] as? Int, 10)
        let again = try check(first.stdout, in: dir, name: "b.json")
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertEqual(again.text, first.text, "the effective config loads back to itself")
    }

    func testCaFilesAreCheckedAtStartAndOnReload() throws {
        let nginx = try Nginx(files: Fixtures.files)
        let dir = try TestEnvironment.makeTempDir("config-ca")
        let key = nginx.dir.appendingPathComponent("server.key").path
        let der = dir.appendingPathComponent("ca.der").path
        try TestEnvironment.shell("openssl x509 -in \(nginx.caFile) -outform der -out \(der)")
        let broken = dir.appendingPathComponent("broken.pem").path
        let pem = try String(contentsOfFile: nginx.caFile, encoding: .utf8)
        try pem.replacingOccurrences(of: "-----END CERTIFICATE-----", with: "").write(toFile: broken, atomically: true, encoding: .utf8)
        let cases: [(String, [String])] = [
            (#"{ "tls": { "caFile": "/nonexistent/ca.pem" } }"#, [":1:22:", "tls.caFile", "/nonexistent/ca.pem: No such file or directory"]),
            (#"{ "tls": { "caFile": "\#(key)" } }"#, ["tls.caFile", "PRIVATE KEY, not a certificate"]),
            (#"{ "tls": { "caFile": "\#(der)" } }"#, ["tls.caFile", "DER", "openssl x509 -inform der"]),
            (#"{ "tls": { "caFile": "\#(broken)" } }"#, ["tls.caFile", "has no END line"]),
            (#"{ "tls": { "caFile": "\#(dir.path)" } }"#, ["tls.caFile", "is a directory"]),
            (#"{ "tls": { "extraCaFile": ["\#(nginx.caFile)", "/nonexistent/extra.pem"] } }"#, ["tls.extraCaFile[1]", "/nonexistent/extra.pem"]),
            (#"{ "tls": { "extraCaFile": 7 } }"#, ["tls.extraCaFile must be a path or a list of paths"]),
        ]
        for (i, (json, expected)) in cases.enumerated() {
            let path = dir.appendingPathComponent("bad\(i).json").path
            try json.write(toFile: path, atomically: true, encoding: .utf8)
            let r = try reckerd(["--config", path, "--socket", dir.appendingPathComponent("s\(i).sock").path])
            assertRefused(r, mentioning: expected, json)
        }

        // A daemon running on a good CA refuses a reload whose CA file has a typo, and keeps
        // trusting the old one.
        let (daemon, log) = try daemonLogging(config: Fixtures.config(nginx))
        XCTAssertEqual(try daemon.recker(["-sS", nginx.url("/hello.txt", https: true)]).text, "hello from nginx\n")
        try #"{ "tls": { "caFile": "\#(nginx.caFile).typo" } }"#.write(toFile: daemon.configPath, atomically: true, encoding: .utf8)
        kill(daemon.pid, SIGHUP)
        XCTAssertTrue(TestEnvironment.eventually(10) { logText(log).contains("reload refused") }, logText(log))
        XCTAssertTrue(logText(log).contains("tls.caFile cannot be used: \(nginx.caFile).typo: No such file or directory"), logText(log))
        let after = try daemon.recker(["-sS", nginx.url("/n/1.txt", https: true)])
        XCTAssertEqual(after.text, "item 1\n", after.stderr)
        XCTAssertEqual(daemon.stop(), 0)
    }

    func testAnUntrustedCertificateSaysHowToTrustTheCA() throws {
        let nginx = try Nginx(files: Fixtures.files)
        let daemon = try DaemonProcess(config: "{}")
        let r = try daemon.recker(["-sS", nginx.url("/hello.txt", https: true)])
        XCTAssertEqual(r.status, 60, "curl's code for an unverified certificate: \(r.stderr)")
        XCTAssertTrue(r.stderr.contains("tls.caFile"), r.stderr)
        XCTAssertTrue(r.stderr.contains("tls.extraCaFile"), r.stderr)
        XCTAssertEqual(daemon.stop(), 0)
    }

    /// A daemon whose stderr goes to a file, so a test can wait for a line while it runs.
    func daemonLogging(config: String) throws -> (DaemonProcess, URL) {
        let log = try TestEnvironment.makeTempDir("config-log").appendingPathComponent("stderr.log")
        let daemon = try DaemonProcess(config: config, wrapper: ["/bin/sh", "-c", "exec \"$0\" \"$@\" 2>>'\(log.path)'"])
        return (daemon, log)
    }

    func logText(_ log: URL) -> String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    /// The number of certificates in a PEM file, counted here independently of the daemon.
    func certificates(in path: String) throws -> Int {
        try String(contentsOfFile: path, encoding: .utf8).components(separatedBy: "-----BEGIN CERTIFICATE-----").count - 1
    }

    func testExtraCaFileAddsToTheSystemBundle() throws {
        let system = "/etc/ssl/certs/ca-certificates.crt"
        try XCTSkipUnless(FileManager.default.fileExists(atPath: system), "no Debian system bundle here")
        let systemCount = try certificates(in: system)
        XCTAssertGreaterThan(systemCount, 50, "a real system bundle")
        let a = try Nginx(files: Fixtures.files)
        let b = try Nginx(files: Fixtures.files)
        let env = ["PATH": "/usr/bin:/bin"]

        // The system's bundle stands in for itself, with nginx A's CA as its very last
        // certificate: trusting A shows the whole system bundle made it into the one the
        // daemon built, and trusting B shows the extra CA was added to it.
        let dir = try TestEnvironment.makeTempDir("config-extra")
        let fakeSystem = dir.appendingPathComponent("system.pem").path
        try (try String(contentsOfFile: system, encoding: .utf8) + (try String(contentsOfFile: a.caFile, encoding: .utf8)))
            .write(toFile: fakeSystem, atomically: true, encoding: .utf8)
        XCTAssertEqual(try certificates(in: fakeSystem), systemCount + 1)

        let added = try DaemonProcess(config: #"{ "tls": { "extraCaFile": "\#(b.caFile)" } }"#,
                                      environment: env.merging(["SSL_CERT_FILE": fakeSystem]) { $1 })
        for nginx in [a, b] {
            let r = try added.recker(["-sS", nginx.url("/hello.txt", https: true)])
            XCTAssertEqual(r.text, "hello from nginx\n", "\(nginx.httpsPort): \(r.stderr)")
        }
        XCTAssertEqual(added.stop(), 0)

        // Without the extra CA, B is untrusted and the message says what to set.
        let plain = try DaemonProcess(config: "{}", environment: env.merging(["SSL_CERT_FILE": fakeSystem]) { $1 })
        let refused = try plain.recker(["-sS", b.url("/hello.txt", https: true)])
        XCTAssertEqual(refused.status, 60, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("tls.extraCaFile"), refused.stderr)
        XCTAssertEqual(plain.stop(), 0)

        // The real system bundle, with a list of extras, and with tls.caFile as the base.
        let real = try DaemonProcess(config: #"{ "tls": { "extraCaFile": ["\#(b.caFile)"] } }"#, environment: env)
        XCTAssertEqual(try real.recker(["-sS", b.url("/n/2.txt", https: true)]).text, "item 2\n")
        XCTAssertEqual(real.stop(), 0)
        let onCaFile = try DaemonProcess(config: #"{ "tls": { "caFile": "\#(a.caFile)", "extraCaFile": "\#(b.caFile)" } }"#, environment: env)
        for nginx in [a, b] {
            XCTAssertEqual(try onCaFile.recker(["-sS", nginx.url("/n/3.txt", https: true)]).text, "item 3\n")
        }
        XCTAssertEqual(onCaFile.stop(), 0)
    }

    func testAReloadKeepsWarmConnectionsUnlessTheTrustedCAsChange() throws {
        let nginx = try Nginx(files: Fixtures.files)
        let other = try Nginx(files: Fixtures.files)
        let (daemon, log) = try daemonLogging(config: #"{ "tls": { "extraCaFile": "\#(nginx.caFile)" } }"#)
        func fetch() throws -> Int {
            let before = nginx.log().count
            let r = try daemon.recker(["-sS", nginx.url("/hello.txt", https: true)])
            XCTAssertEqual(r.text, "hello from nginx\n", r.stderr)
            return nginx.waitForLog(count: before + 1).last!.connection
        }
        func reload(_ config: String, _ count: Int) throws {
            try config.write(toFile: daemon.configPath, atomically: true, encoding: .utf8)
            kill(daemon.pid, SIGHUP)
            XCTAssertTrue(TestEnvironment.eventually(10) { logText(log).components(separatedBy: "config reloaded").count - 1 == count }, logText(log))
        }
        let first = try fetch()
        try reload(#"{ "tls": { "extraCaFile": ["\#(nginx.caFile)"] }, "domains": { "other.test": { "connections": 2 } } }"#, 1)
        XCTAssertEqual(try fetch(), first, "the same CAs: the warm connection is reused")
        try reload(#"{ "tls": { "extraCaFile": ["\#(nginx.caFile)", "\#(other.caFile)"] } }"#, 2)
        XCTAssertNotEqual(try fetch(), first, "other CAs: a new connection, verified against them")
        XCTAssertEqual(daemon.stop(), 0)
    }

    func testStderrLogLinesCarryAnRFC3339TimeAndTheirLevel() throws {
        let before = Date()
        let (daemon, log) = try daemonLogging(config: "{}")
        try #"{ "socket": "/tmp/reckerd-config-test-elsewhere.sock" }"#.write(toFile: daemon.configPath, atomically: true, encoding: .utf8)
        kill(daemon.pid, SIGHUP)
        XCTAssertTrue(TestEnvironment.eventually(10) { logText(log).contains("config reloaded") }, logText(log))
        XCTAssertEqual(daemon.stop(), 0)
        let lines = logText(log).split(separator: "\n").map(String.init)
        let shape = try NSRegularExpression(pattern: #"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) reckerd: (info|notice|warning|error|debug) "#)
        let format = DateFormatter()
        format.locale = Locale(identifier: "en_US_POSIX")
        format.timeZone = TimeZone(identifier: "UTC")
        format.dateFormat = "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'"
        XCTAssertGreaterThanOrEqual(lines.count, 3, logText(log))
        for line in lines {
            let m = try XCTUnwrap(shape.firstMatch(in: line, range: NSRange(line.startIndex..., in: line)), line)
            let stamp = String(line[Range(m.range(at: 1), in: line)!])
            let when = try XCTUnwrap(format.date(from: stamp), stamp)
            XCTAssertTrue(when >= before.addingTimeInterval(-1) && when <= Date().addingTimeInterval(1), "\(stamp) is now, in UTC")
        }
        XCTAssertTrue(lines.contains { $0.contains(" reckerd: warning the socket path changes only on restart") }, logText(log))
    }
}
