import Foundation

/// A test server written in python3 (`script`, run with `-c`), which prints the port it
/// listens on as its first line. Stopped with SIGKILL: a child of Foundation's Process may
/// have SIGTERM blocked.
final class PythonServer {
    let port: UInt16
    private let process: Process

    init(_ script: String, arguments: [String] = [], name: String) throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-c", script] + arguments
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        var line = Data()
        let deadline = Date().addingTimeInterval(10)
        while !line.contains(0x0A) && Date() < deadline {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            line += chunk
        }
        guard let p = UInt16(String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) else {
            kill(process.processIdentifier, SIGKILL)
            throw NSError(domain: name, code: 1, userInfo: [NSLocalizedDescriptionKey: "python3 \(name) did not start"])
        }
        port = p
    }

    deinit {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}
