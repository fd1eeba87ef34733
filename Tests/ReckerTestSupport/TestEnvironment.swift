import Foundation

/// Paths and small process helpers shared by the integration tests.
public enum TestEnvironment {
    /// The package's root folder.
    public static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Where the built `reckerd` and `recker` live: `$RECKER_BIN_DIR`, else `.build/debug`.
    public static var binDir: URL {
        if let dir = ProcessInfo.processInfo.environment["RECKER_BIN_DIR"], !dir.isEmpty {
            return URL(fileURLWithPath: dir)
        }
        return packageRoot.appendingPathComponent(".build/debug")
    }

    /// A test writes to pipes and sockets whose reader may be gone (a child that exited, a
    /// daemon that closed): that is EPIPE for the test to see, not SIGPIPE ending the test
    /// process. `swift test` ignores the signal for its children; the bundle run on its own
    /// (scripts/run-tests.py) does not, so every helper here makes sure.
    static let ignoringSIGPIPE: Void = { _ = signal(SIGPIPE, SIG_IGN) }()

    /// A Unix stream socket bound to `path` (listening when `backlog` is given); the caller
    /// closes it. -1 when socket() or bind() fails.
    public static func bindUnixSocket(_ path: String, listen backlog: Int32? = nil) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: Array(path.utf8))
            raw[path.utf8.count] = 0
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard fd >= 0, bound == 0, backlog.map({ listen(fd, $0) == 0 }) ?? true else {
            if fd >= 0 { close(fd) }
            return -1
        }
        return fd
    }

    /// A fresh temporary directory, world-readable (nginx workers run unprivileged).
    public static func makeTempDir(_ name: String) throws -> URL {
        ignoringSIGPIPE
        let dir = URL(fileURLWithPath: NSTemporaryDirectory())
            .appendingPathComponent("reckerd-test-\(name)-\(getpid())-\(UInt32.random(in: 0 ... .max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o755])
        return dir
    }

    /// A TCP port on 127.0.0.1 that was free a moment ago.
    public static func freePort() -> UInt16 {
        ignoringSIGPIPE
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return UInt16(bigEndian: addr.sin_port)
    }

    /// The result of a finished process.
    public struct Result {
        public var status: Int32
        public var stdout: Data
        public var stderr: String
        public var text: String { String(decoding: stdout, as: UTF8.self) }

        public init(status: Int32, stdout: Data, stderr: String) {
            self.status = status
            self.stdout = stdout
            self.stderr = stderr
        }
    }

    /// Runs a program to its end (bounded by `timeout` seconds) and collects its output.
    @discardableResult
    public static func run(_ path: String, _ args: [String], stdin: Data? = nil,
                           environment: [String: String]? = nil, directory: URL? = nil, timeout: TimeInterval = 60) throws -> Result {
        ignoringSIGPIPE
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        if let directory { p.currentDirectoryURL = directory }
        if let environment { p.environment = environment }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        let input = Pipe()
        p.standardInput = input
        try p.run()
        if let stdin { try? input.fileHandleForWriting.write(contentsOf: stdin) }
        try? input.fileHandleForWriting.close()
        let collected = OutputCollector(out: out, err: err)
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(2000) }
        if p.isRunning {
            // Where it hangs, before it is gone: every thread's stack (gdb, bounded), and
            // what it wrote so far.
            let stacks = (try? run("/usr/bin/timeout", ["30", "/usr/bin/gdb", "-p", "\(p.processIdentifier)", "-batch", "-ex", "thread apply all bt"],
                                   timeout: 40).text) ?? "(no stacks: gdb failed)"
            let soFar = String(decoding: collected.soFar().1, as: UTF8.self)
            p.terminate()
            p.waitUntilExit()
            throw NSError(domain: "TestEnvironment", code: 1, userInfo: [NSLocalizedDescriptionKey:
                "\(path) \(args) ran over \(timeout) s; its stderr so far: \(soFar)\nits threads:\n\(stacks)"])
        }
        p.waitUntilExit()
        let (o, e) = collected.finish()
        return Result(status: p.terminationStatus, stdout: o, stderr: String(decoding: e, as: UTF8.self))
    }

    /// Runs a shell command line; fails the caller on a non-zero exit.
    public static func shell(_ command: String) throws {
        let r = try run("/bin/sh", ["-c", command])
        guard r.status == 0 else {
            throw NSError(domain: "TestEnvironment", code: Int(r.status),
                          userInfo: [NSLocalizedDescriptionKey: "`\(command)` failed: \(r.stderr)"])
        }
    }

    /// Open file descriptors of a process.
    public static func fdCount(pid: Int32) -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1
    }

    /// TCP sockets a process holds open now, as `ss` lists them (any state): for reckerd,
    /// its upstream connections, seen from outside.
    public static func tcpSockets(pid: Int32) throws -> Int {
        let r = try run("/usr/bin/ss", ["-tanpH"])
        return r.text.split(separator: "\n").filter { $0.contains("pid=\(pid),") }.count
    }

    /// Polls `condition` every 20 ms for up to `seconds`; returns its last value.
    public static func eventually(_ seconds: Double = 5, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        repeat {
            if try condition() { return true }
            usleep(20_000)
        } while Date() < deadline
        return try condition()
    }
}

/// Reads a process's stdout and stderr on background threads so a full pipe never blocks it.
final class OutputCollector: @unchecked Sendable {
    private var out = Data(), err = Data()
    private let group = DispatchGroup()
    private let lock = NSLock()

    init(out: Pipe?, err: Pipe) {
        for (pipe, isOut) in [(out, true), (err, false)] {
            guard let pipe else { continue }
            group.enter()
            DispatchQueue.global().async {
                // In pieces as they come, so what was written so far can be read (`soFar`).
                while true {
                    let data = pipe.fileHandleForReading.availableData
                    if data.isEmpty { break }
                    self.lock.lock()
                    if isOut { self.out += data } else { self.err += data }
                    self.lock.unlock()
                }
                self.group.leave()
            }
        }
    }

    /// What the process has written so far.
    func soFar() -> (Data, Data) {
        lock.lock()
        defer { lock.unlock() }
        return (out, err)
    }

    func finish() -> (Data, Data) {
        _ = group.wait(timeout: .now() + 10)
        lock.lock()
        defer { lock.unlock() }
        return (out, err)
    }
}
