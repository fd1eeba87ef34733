import Foundation
import ReckerProtocol

/// A real `reckerd` started for a test, on its own socket, with its own config.
public final class DaemonProcess: @unchecked Sendable {
    public let dir: URL
    public let socketPath: String
    public let configPath: String
    public let process: Process
    private let stderrPipe = Pipe()
    private var collected: OutputCollector?

    /// Starts reckerd with `config` (JSON text) and waits until its socket answers.
    /// `wrapper` runs reckerd through another program that execs it, e.g.
    /// `["/usr/bin/prlimit", "--nofile=64:64"]`.
    /// `environment` replaces the daemon's environment when given.
    public init(config: String = "{}", socketPath: String? = nil, extraArgs: [String] = [], wrapper: [String] = [],
                environment: [String: String]? = nil) throws {
        dir = try TestEnvironment.makeTempDir("reckerd")
        self.socketPath = socketPath ?? dir.appendingPathComponent("reckerd.sock").path
        configPath = dir.appendingPathComponent("reckerd.json").path
        try config.write(toFile: configPath, atomically: true, encoding: .utf8)
        process = Process()
        let reckerd = TestEnvironment.binDir.appendingPathComponent("reckerd")
        let args = ["--config", configPath, "--socket", self.socketPath] + extraArgs
        if let program = wrapper.first {
            process.executableURL = URL(fileURLWithPath: program)
            process.arguments = Array(wrapper.dropFirst()) + [reckerd.path] + args
        } else {
            process.executableURL = reckerd
            process.arguments = args
        }
        if let environment { process.environment = environment }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = stderrPipe
        collected = OutputCollector(out: nil, err: stderrPipe)
        try process.run()
        let path = self.socketPath
        let proc = process
        guard TestEnvironment.eventually(20, { !proc.isRunning || (try? UnixSocket(connectingTo: path)) != nil }), process.isRunning else {
            process.waitUntilExit()
            throw NSError(domain: "DaemonProcess", code: 1, userInfo: [NSLocalizedDescriptionKey: "reckerd did not start: \(stderr)"])
        }
    }

    /// Stopped with SIGTERM; a daemon that has not exited 10 s later is killed and said to
    /// have hung (a test must not wait for it for ever: one spinning daemon held a whole run).
    /// A daemon whose libcurl stormed (CurlEngine's `setCurlTimer`) is said to have spun,
    /// with its own words: scripts/run-tests.py fails the class for either.
    deinit {
        if process.isRunning {
            process.terminate()
            if !TestEnvironment.eventually(10, { !process.isRunning }) {
                FileHandle.standardError.write(Data("error: reckerd (pid \(process.processIdentifier)) did not exit within 10 s of SIGTERM: killed\n".utf8))
                kill(process.processIdentifier, SIGKILL)
            }
            process.waitUntilExit()
        }
        for line in stderr.split(separator: "\n") where line.contains(Self.storm) {
            FileHandle.standardError.write(Data("error: reckerd (pid \(process.processIdentifier)) spun: \(line)\n".utf8))
        }
    }

    /// The daemon's warning of a libcurl timer storm.
    public static let storm = "libcurl asked to be called again at once"

    public var pid: Int32 { process.processIdentifier }

    /// Everything the daemon wrote to stderr (complete once it has exited).
    public var stderr: String {
        String(decoding: collected?.finish().1 ?? Data(), as: UTF8.self)
    }

    /// Sends SIGHUP and waits (up to 10 s) until the daemon has said that it reloaded or
    /// refused to (it logs either at info and above); false if it said neither.
    @discardableResult
    public func reload() -> Bool {
        func said() -> Int {
            let text = String(decoding: collected?.soFar().1 ?? Data(), as: UTF8.self)
            return text.components(separatedBy: "config reloaded").count + text.components(separatedBy: "reload refused").count
        }
        let before = said()
        kill(process.processIdentifier, SIGHUP)
        return TestEnvironment.eventually(10) { said() > before }
    }

    /// Sends a signal and waits (bounded) for the exit; returns the exit status.
    @discardableResult
    public func stop(signal: Int32 = SIGTERM, seconds: Double = 30) -> Int32? {
        kill(process.processIdentifier, signal)
        let proc = process
        guard TestEnvironment.eventually(seconds, { !proc.isRunning }) else { return nil }
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// Runs the `recker` CLI against this daemon.
    public func recker(_ args: [String], stdin: Data? = nil, directory: URL? = nil) throws -> TestEnvironment.Result {
        try TestEnvironment.run(TestEnvironment.binDir.appendingPathComponent("recker").path,
                                ["--socket", socketPath] + args, stdin: stdin, directory: directory)
    }

    /// The daemon's stats document.
    public func stats() throws -> [String: Any] {
        let r = try recker(["stats", "--json"])
        return (try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any]) ?? [:]
    }
}
