import Foundation
import ReckerProtocol
import ReckerTestSupport
import XCTest

/// `recker` sends HELLO and its request before WELCOME arrives (PROTOCOL.md 2.2): a call
/// costs one round trip to the daemon, not two. The test stands in for the daemon and
/// withholds WELCOME until it has seen what the CLI sent.
final class CLIHandshakeTests: XCTestCase {
    func testTheRequestFollowsHelloBeforeWelcome() throws {
        let dir = try TestEnvironment.makeTempDir("handshake")
        chmod(dir.path, 0o700)
        let path = dir.appendingPathComponent("d.sock").path
        let listener = TestEnvironment.bindUnixSocket(path, listen: 4)
        XCTAssertGreaterThanOrEqual(listener, 0)
        defer { close(listener) }

        let process = Process()
        process.executableURL = TestEnvironment.binDir.appendingPathComponent("recker")
        process.arguments = ["-sS", "http://127.0.0.1:9/answer"]
        process.environment = ["RECKER_SOCKET": path, "PATH": "/usr/bin:/bin"]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        defer { if process.isRunning { process.terminate() } }

        let client = accept(listener, nil, nil)
        XCTAssertGreaterThanOrEqual(client, 0)
        defer { close(client) }
        var tv = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var reader = FrameReader()
        var frames: [Frame] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        for _ in 0 ..< 20 where frames.count < 2 {
            let n = buffer.withUnsafeMutableBytes { read(client, $0.baseAddress, $0.count) }
            guard n > 0 else { break }
            reader.append(Array(buffer[0 ..< n]))
            while let f = try reader.next() { frames.append(f) }
        }
        XCTAssertEqual(frames.map(\.type), [FrameType.hello, FrameType.requestHead], "the request came before any WELCOME")

        var answer: [UInt8] = []
        answer += try Message.welcome(.init(maxFrame: 1 << 20, maxInFlight: 8, initialWindow: 65536)).encoded
        answer += try Message.responseHead(stream: frames.last?.stream ?? 1, ResponseHead(status: 200, httpVersion: 11, connectionID: 1, reused: true)).encoded
        answer += try Message.responseBody(stream: frames.last?.stream ?? 1, Array("pipelined\n".utf8)).encoded
        answer += try Message.responseEnd(stream: frames.last?.stream ?? 1, ResponseEnd(totalMicros: 1, bodyBytes: 10)).encoded
        XCTAssertEqual(answer.withUnsafeBytes { write(client, $0.baseAddress, $0.count) }, answer.count)
        let body = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)
        XCTAssertEqual(String(decoding: body, as: UTF8.self), "pipelined\n")
    }
}
