import Foundation

/// `h2_fault.py` as a process: an HTTP/2 upstream over TLS (nginx's test certificates) that
/// misbehaves on purpose on the paths its docstring lists, and logs every request it read.
public final class H2FaultServer {
    public let port: UInt16
    private let process = Process()
    private let logPath: String

    public init(certificatesOf nginx: Nginx) throws {
        port = TestEnvironment.freePort()
        logPath = nginx.dir.appendingPathComponent("h2-\(port).log").path
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = [TestEnvironment.packageRoot.appendingPathComponent("Tests/ReckerTestSupport/h2_fault.py").path, String(port),
                             nginx.dir.appendingPathComponent("server.pem").path, nginx.dir.appendingPathComponent("server.key").path, logPath]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        guard TestEnvironment.eventually(10, { Nginx.canConnect(port: port) }) else {
            stop()
            throw NSError(domain: "H2FaultServer", code: 1, userInfo: [NSLocalizedDescriptionKey: "h2_fault.py did not listen on \(port)"])
        }
    }

    deinit { stop() }

    public func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// The lines of its log ("METHOD PATH BODYLEN", "REFUSED METHOD PATH").
    public func log() -> [String] {
        ((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    /// How many times it logged exactly `line`.
    public func received(_ line: String) -> Int { log().filter { $0 == line }.count }
}
