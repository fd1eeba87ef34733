import Foundation
import ReckerProtocol
import ReckerTestSupport
import XCTest

/// Finding the daemon's socket, and errors that say what to do when it cannot be used.
final class CLISocketTests: XCTestCase {
    /// A uid no other test uses, for a user outside the daemon's group.
    static let stranger: UInt32 = 4391

    /// A socket that exists but refuses this user (EACCES) says permission denied and how
    /// to get access, not that no daemon listens.
    func testPermissionDeniedSaysHowToGetAccess() throws {
        let daemon = try DaemonProcess()
        let recker = TestEnvironment.binDir.appendingPathComponent("recker").path
        let r = try TestEnvironment.run("/usr/bin/setpriv", ["--reuid=\(Self.stranger)", "--regid=\(Self.stranger)", "--clear-groups",
                                                             recker, "--socket", daemon.socketPath, "http://127.0.0.1:1/"])
        XCTAssertEqual(r.status, 70, r.stderr)
        XCTAssertTrue(r.stderr.contains("permission denied on \(daemon.socketPath)"), r.stderr)
        XCTAssertTrue(r.stderr.contains("`reckerd` group") && r.stderr.contains("log in again"), r.stderr)
        XCTAssertFalse(r.stderr.contains("no reckerd listening") || r.stderr.contains("start the daemon"), r.stderr)
    }

    /// --socket naming the HTTP front's socket (which answers HELLO as a bad HTTP request)
    /// says that socket speaks HTTP and what to use, not that a frame was too large.
    func testTheHTTPSocketIsNamedForWhatItIs() throws {
        let daemon = try DaemonProcess(config: #"{ "http": { "enabled": true } }"#)
        let http = daemon.dir.appendingPathComponent("http.sock").path
        let r = try TestEnvironment.run(TestEnvironment.binDir.appendingPathComponent("recker").path,
                                        ["--socket", http, "http://127.0.0.1:1/"])
        XCTAssertEqual(r.status, 71, r.stderr)
        XCTAssertTrue(r.stderr.contains("speaks HTTP") && r.stderr.contains("curl --unix-socket \(http)"), r.stderr)
        XCTAssertFalse(r.stderr.contains("frame length"), r.stderr)
        XCTAssertEqual(daemon.stop(), 0)
    }

    /// Discovery skips a candidate socket nothing listens on ($XDG_RUNTIME_DIR's, left
    /// behind) and takes the next one it can connect to (/tmp/reckerd-UID).
    func testDiscoveryTakesTheFirstSocketThatAnswers() throws {
        guard !FileManager.default.fileExists(atPath: SocketPaths.system) else {
            throw XCTSkip("\(SocketPaths.system) exists on this machine and comes first")
        }
        let uid = Self.stranger
        let tmp = "/tmp/reckerd-\(uid)"
        if FileManager.default.fileExists(atPath: tmp) {
            throw XCTSkip("\(tmp) exists already: not ours to use")
        }
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: false,
                                                attributes: [.posixPermissions: 0o755])
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let nginx = try Nginx(files: Fixtures.files)
        let daemon = try DaemonProcess(config: Fixtures.config(nginx), socketPath: tmp + "/reckerd.sock")
        chmod(daemon.socketPath, 0o666)

        // A stale socket: bound, then its listener gone.
        let xdg = try TestEnvironment.makeTempDir("xdg")
        let stale = xdg.appendingPathComponent("reckerd.sock").path
        let fd = TestEnvironment.bindUnixSocket(stale)
        XCTAssertGreaterThanOrEqual(fd, 0)
        close(fd)
        chmod(stale, 0o666)

        let recker = TestEnvironment.binDir.appendingPathComponent("recker").path
        let r = try TestEnvironment.run("/usr/bin/env", ["-i", "XDG_RUNTIME_DIR=\(xdg.path)", "/usr/bin/setpriv", "--reuid=\(uid)",
                                                         "--regid=\(uid)", "--clear-groups", recker, "-sS", nginx.url("/hello.txt")])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.text, "hello from nginx\n")
    }
}
