import Foundation
import ReckerTestSupport
import XCTest

/// Installing must not hurt the host: no service started, stopped, enabled or disabled,
/// nothing but the staging tree changed when DESTDIR is given.
final class InstallTests: XCTestCase {
    /// A folder of stand-ins for the commands that could touch the host, each logging its
    /// arguments; first on PATH.
    func stubs(_ dir: URL) throws -> (path: String, log: String) {
        let bin = dir.appendingPathComponent("stubs")
        try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
        let log = dir.appendingPathComponent("calls.log").path
        for name in ["systemctl", "apt-get", "groupadd", "systemd-sysusers", "service", "runuser"] {
            let path = bin.appendingPathComponent(name).path
            try "#!/bin/sh\necho \"\(name) $*\" >> \(log)\nexit 0\n".write(toFile: path, atomically: true, encoding: .utf8)
            chmod(path, 0o755)
        }
        return (bin.path + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"), log)
    }

    func testInstallIntoAStagingTreeTouchesNothingElse() throws {
        let dir = try TestEnvironment.makeTempDir("install")
        let (path, log) = try stubs(dir)
        let stage = dir.appendingPathComponent("stage").path
        var env = ProcessInfo.processInfo.environment
        env["PATH"] = path
        let r = try TestEnvironment.run("/usr/bin/make", ["-C", TestEnvironment.packageRoot.path, "install", "DESTDIR=\(stage)",
                                                         "INSTALL_BIN=\(TestEnvironment.binDir.path)"],
                                        environment: env, timeout: 120)
        XCTAssertEqual(r.status, 0, r.stderr)
        for file in ["usr/local/bin/reckerd", "usr/local/bin/recker", "etc/reckerd/reckerd.json",
                     "etc/systemd/system/reckerd.service", "etc/systemd/system/reckerd.socket",
                     "usr/lib/sysusers.d/reckerd.conf", "usr/local/share/doc/reckerd/PROTOCOL.md"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: stage + "/" + file), file)
        }
        let calls = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        XCTAssertEqual(calls, "", "a staged install calls nothing that touches the host: \(calls)")
    }

    /// The dependency script, made to believe every package is missing, installs and does
    /// nothing else: no service of any package is stopped or disabled.
    func testInstallingDependenciesNeverTouchesAService() throws {
        let dir = try TestEnvironment.makeTempDir("deps")
        let (path, log) = try stubs(dir)
        let bin = path.split(separator: ":")[0]
        let query = "\(bin)/dpkg-query"
        try "#!/bin/sh\nexit 1\n".write(toFile: query, atomically: true, encoding: .utf8)
        chmod(query, 0o755)
        var env = ["PATH": "\(bin):/usr/bin:/bin"]
        env["HOME"] = dir.path
        let build = try TestEnvironment.run(TestEnvironment.packageRoot.appendingPathComponent("scripts/install-deps.sh").path, [],
                                            environment: env, timeout: 60)
        XCTAssertEqual(build.status, 0, build.stderr)
        let buildCalls = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        XCTAssertTrue(buildCalls.contains("apt-get install -y -qq --no-install-recommends libnghttp2-14 "), buildCalls)
        XCTAssertTrue(buildCalls.contains(" libsystemd-dev"), buildCalls)
        XCTAssertFalse(buildCalls.contains("http-parser"), "the HTTP front reads requests itself: \(buildCalls)")
        XCTAssertFalse(buildCalls.contains("libcurl"), "libcurl comes from scripts/fetch-libcurl.sh, never installed: \(buildCalls)")
        XCTAssertFalse(buildCalls.contains("nginx"), "building needs no test packages: \(buildCalls)")
        let test = try TestEnvironment.run(TestEnvironment.packageRoot.appendingPathComponent("scripts/install-deps.sh").path, ["test"],
                                           environment: env, timeout: 60)
        XCTAssertEqual(test.status, 0, test.stderr)
        let calls = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        XCTAssertTrue(calls.contains("python3-prometheus-client"), calls)
        XCTAssertFalse(calls.contains("systemctl") || calls.contains("service "), "no service touched: \(calls)")
    }
}
