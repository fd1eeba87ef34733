import Foundation
import ReckerProtocol
import ReckerTestSupport
import XCTest

/// Bad input gets a clear error and harms no one else; a vanishing client leaks nothing.
final class RobustnessTests: XCTestCase {
    /// Reads frames until the daemon closes; returns them (bounded by count and time).
    func framesUntilClose(_ socket: UnixSocket, seconds: Double = 5) throws -> [Message] {
        var reader = FrameReader()
        var out: [Message] = []
        var tv = timeval(tv_sec: Int(seconds), tv_usec: 0)
        setsockopt(socket.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var buffer: [UInt8] = []
        for _ in 0 ..< 1000 {
            buffer.removeAll()
            guard try socket.read(into: &buffer) > 0 else { return out }
            reader.append(buffer)
            while let f = try reader.next() { out.append(try Message(frame: f)) }
        }
        XCTFail("daemon did not close the connection")
        return out
    }

    func hello() -> [UInt8] { Message.hello(.init()).encoded }

    func testMalformedFramesCloseOnlyThatClient() throws {
        let nginx = try Nginx(files: Fixtures.files)
        let daemon = try DaemonProcess(config: Fixtures.config(nginx))
        let bystander = try ReckerConnection(socketPath: daemon.socketPath)

        let cases: [(String, [UInt8], ReckerError.Code, Bool)] = [
            ("truncated WINDOW_UPDATE", [0, 0, 0, 8, 0x30, 0, 0, 0, 0, 1, 0, 1], .malformedFrame, true),
            ("length 0xFFFFFFFF", [0xFF, 0xFF, 0xFF, 0xFF, 0x10], .frameTooLarge, true),
            ("length below the header", [0, 0, 0, 2, 0x40, 0], .malformedFrame, true),
            ("unknown type", [0, 0, 0, 6, 0x7E, 0, 0, 0, 0, 0], .unknownFrameType, true),
            ("PING before HELLO", Message.ping([1, 2, 3, 4, 5, 6, 7, 8]).encoded, .badHandshake, false),
            ("wrong magic", [0, 0, 0, 18, 1, 0, 0, 0, 0, 0] + Array("HTTP".utf8) + [0, 1, 0, 1, 0, 0, 0, 0], .badHandshake, false),
            ("version 2 only", Message.hello(.init(minVersion: 2, maxVersion: 3)).encoded, .unsupportedVersion, false),
            ("stream 0 request", Message.requestHead(stream: 0, RequestHead(url: nginx.url("/hello.txt")), endRequest: true).encoded, .invalidStream, true),
        ]
        for (name, bytes, code, handshakeFirst) in cases {
            let s = try UnixSocket(connectingTo: daemon.socketPath)
            try s.write((handshakeFirst ? hello() : []) + bytes)
            let frames = try framesUntilClose(s)
            guard case .error(0, let e)? = frames.last else {
                XCTFail("\(name): expected a connection ERROR, got \(frames)")
                continue
            }
            XCTAssertEqual(e.code, code, "\(name): \(e)")
            // The client connected before keeps being served.
            try bystander.send(.requestHead(stream: 1, RequestHead(url: nginx.url("/hello.txt")), endRequest: true))
            var status: UInt16 = 0
            loop: for _ in 0 ..< 10 {
                switch try bystander.receive() {
                case .responseHead(_, let h): status = h.status
                case .responseEnd: break loop
                case .error(_, let e): XCTFail("\(name): bystander got \(e)"); break loop
                default: continue
                }
            }
            XCTAssertEqual(status, 200, name)
        }
        XCTAssertEqual(daemon.process.isRunning, true)
    }

    func testDoorChecksSendNothingUpstream() throws {
        let nginx = try Nginx(files: Fixtures.files)
        let daemon = try DaemonProcess(config: Fixtures.config(nginx))
        let c = try ReckerConnection(socketPath: daemon.socketPath)
        let url = nginx.url("/hello.txt")
        let cases: [(RequestHead, ReckerError.Code)] = [
            (RequestHead(method: "GE T", url: url), .invalidMethod),
            (RequestHead(method: "GET\r\n", url: url), .invalidMethod),
            (RequestHead(url: "ftp://127.0.0.1/x"), .invalidURL),
            (RequestHead(url: "http:///nohost"), .invalidURL),
            (RequestHead(url: "/just/a/path"), .invalidURL),
            (RequestHead(url: url, headers: [("Bad Header", "1")]), .invalidHeaderName),
            (RequestHead(url: url, headers: [("X-A", "1\r\nX-Injected: 1")]), .invalidHeaderValue),
            (RequestHead(url: url, headers: [("X-A", "1\u{0}")]), .invalidHeaderValue),
            (RequestHead(url: url, headers: [("Content-Length", "0")]), .forbiddenHeader),
            (RequestHead(url: url, headers: [("Transfer-Encoding", "chunked")]), .forbiddenHeader),
            (RequestHead(url: url, headers: [("connection", "close")]), .forbiddenHeader),
            (RequestHead(url: url, headers: [("Upgrade", "h2c")]), .forbiddenHeader),
            (RequestHead(url: url, headers: [("Expect", "100-continue")]), .forbiddenHeader),
            (RequestHead(url: url, headers: [("TE", "trailers")]), .forbiddenHeader),
            (RequestHead(url: url, headers: [("Keep-Alive", "5")]), .forbiddenHeader),
            (RequestHead(url: url, headers: [("Trailer", "X")]), .forbiddenHeader),
            (RequestHead(url: url, headers: [("Proxy-Authorization", "x")]), .forbiddenHeader),
        ]
        for (i, (head, code)) in cases.enumerated() {
            try c.send(.requestHead(stream: UInt32(i + 1), head, endRequest: true))
            guard case .error(let stream, let e) = try c.receive() else { XCTFail("case \(i): no error"); continue }
            XCTAssertEqual(stream, UInt32(i + 1))
            XCTAssertEqual(e.code, code, "case \(i): \(e)")
            XCTAssertFalse(e.mayHaveReachedUpstream)
        }
        // The same connection still works, and nothing but this one request reached nginx.
        try c.send(.requestHead(stream: 99, RequestHead(url: url), endRequest: true))
        guard case .responseHead(99, let h) = try c.receive() else { return XCTFail("no response") }
        XCTAssertEqual(h.status, 200)
        let log = nginx.waitForLog(count: 1)
        usleep(200_000)
        XCTAssertEqual(nginx.log().count, 1, "only the valid request reached nginx: \(log)")
    }

    func testClientVanishingMidResponseLeaksNothing() throws {
        let nginx = try Nginx(files: Fixtures.files)
        let daemon = try DaemonProcess(config: Fixtures.config(nginx))
        XCTAssertEqual(try daemon.recker(["-sS", nginx.url("/hello.txt")]).status, 0)
        usleep(100_000)
        let baseline = TestEnvironment.fdCount(pid: daemon.pid)

        for _ in 0 ..< 3 {
            let c = try ReckerConnection(socketPath: daemon.socketPath)
            try c.send(.requestHead(stream: 1, RequestHead(url: nginx.url("/slow/big")), endRequest: true))
            var gotBody = false
            for _ in 0 ..< 100 {
                if case .responseBody = try c.receive() { gotBody = true; break }
            }
            XCTAssertTrue(gotBody)
            c.close()
        }
        XCTAssertTrue(TestEnvironment.eventually(10) {
            let s = try? daemon.stats()
            return (s?["requests_in_flight"] as? Int) == 0 && TestEnvironment.fdCount(pid: daemon.pid) <= baseline
        }, "fds \(TestEnvironment.fdCount(pid: daemon.pid)) vs baseline \(baseline)")
        let r = try daemon.recker(["-sS", nginx.url("/hello.txt")])
        XCTAssertEqual(r.text, "hello from nginx\n")
    }

    /// A reader that takes nothing must not hold up another request on the same upstream
    /// HTTP/2 connection.
    func testSlowAndFastReaderShareOneConnection() async throws {
        let nginx = try Nginx(files: Fixtures.files)
        let daemon = try DaemonProcess(config: Fixtures.config(nginx))
        let client = ReckerClient(socketPath: daemon.socketPath)
        defer { client.close() }
        _ = try await client.send(ReckerRequest(url: nginx.url("/hello.txt", https: true)))

        let slow = try await client.stream(ReckerRequest(url: nginx.url("/size/8388608", https: true)))
        var fastBytes = 0
        let fast = try await client.stream(ReckerRequest(url: nginx.url("/size/8388608", https: true)))
        for try await chunk in fast { fastBytes += chunk.count }
        XCTAssertEqual(fastBytes, 8 << 20, "the fast reader got its whole body while the slow one read nothing")
        XCTAssertEqual(slow.head.connectionID, fast.head.connectionID, "both streams shared one upstream connection")

        var slowBytes = 0
        for try await chunk in slow { slowBytes += chunk.count }
        XCTAssertEqual(slowBytes, 8 << 20)
        let log = nginx.waitForLog(count: 3)
        XCTAssertEqual(Set(log.map(\.connection)).count, 1, "nginx saw one connection")
    }
}
