import Foundation
import ReckerProtocol
import ReckerTestSupport
import XCTest

/// What a client of the binary protocol sees of the daemon's socket handling when it reads
/// late, fast or not at all: its input is still read while a response streams, its last
/// output reaches it before a close, and a frame the daemon is not reading is not late.
final class ClientSocketTests: XCTestCase {
    /// Reads messages until `stop` says so, the daemon closes, or `seconds` pass; returns
    /// them and whether the daemon closed.
    /// What was read and not yet returned as messages (one test, one connection).
    private var reader = FrameReader(maxLength: 1 << 21)

    func read(_ socket: UnixSocket, seconds: Double, until stop: (Message) -> Bool = { _ in false }) throws -> ([Message], closed: Bool) {
        socket.setReceiveTimeout(milliseconds: 500)
        var out: [Message] = []
        var buffer: [UInt8] = []
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            while let f = try reader.next() {
                let m = try Message(frame: f)
                out.append(m)
                if stop(m) { return (out, false) }
            }
            buffer.removeAll(keepingCapacity: true)
            let n: Int
            do { n = try socket.read(into: &buffer) } catch { continue }
            if n == 0 { return (out, true) }
            reader.append(buffer)
        }
        return (out, false)
    }

    func pings(_ n: Int) throws -> [UInt8] {
        let one = try Message.ping([0, 0, 0, 0, 0, 0, 0, 1]).encoded
        return Array([[UInt8]](repeating: one, count: n).joined())
    }

    /// A client that granted a large window and reads an 8 MiB response as fast as it comes
    /// sends a PING after 1 MiB: the PONG comes while the response still streams, not after
    /// it (the daemon read nothing from such a client until its download ended).
    func testAClientDownloadingFastIsStillRead() throws {
        let nginx = try Nginx(files: Fixtures.files)
        let daemon = try DaemonProcess(config: Fixtures.config(nginx))
        let s = try UnixSocket(connectingTo: daemon.socketPath)
        defer { s.close() }
        try s.write(try Message.hello(.init()).encoded
            + Message.requestHead(stream: 1, RequestHead(url: nginx.url("/size/8388608")), endRequest: true).encoded
            + Message.windowUpdate(stream: 1, increment: UInt32(Int32.max) - 256 * 1024).encoded)
        var body = 0
        let (first, _) = try read(s, seconds: 20) { m in
            if case .responseBody(1, let data) = m { body += data.count }
            return body >= 1 << 20
        }
        XCTAssertGreaterThanOrEqual(body, 1 << 20, "\(first.suffix(3))")
        let before = body
        try s.write(try Message.ping([1, 2, 3, 4, 5, 6, 7, 8]).encoded)
        var ended = false
        let (rest, _) = try read(s, seconds: 20) { m in
            switch m {
            case .responseBody(1, let data): body += data.count
            case .responseEnd(1, _): ended = true
            default: break
            }
            if case .pong = m { return true }
            return ended
        }
        XCTAssertTrue(rest.contains { if case .pong([1, 2, 3, 4, 5, 6, 7, 8]) = $0 { true } else { false } }, "no PONG")
        XCTAssertFalse(ended, "the PONG came only after the whole response (\(body - before) bytes after the PING)")
        XCTAssertLessThan(body - before, 4 << 20, "the PING waited for \(body - before) bytes of the response")
    }

    /// A connection error while 20,000 PONGs wait for a client that reads late: it reads
    /// every PONG, then the ERROR, then the end (the daemon closed at once, dropping both).
    func testTheLastOutputAndTheErrorReachALateReader() throws {
        let daemon = try DaemonProcess()
        let s = try UnixSocket(connectingTo: daemon.socketPath)
        defer { s.close() }
        try s.write(try Message.hello(.init()).encoded + pings(20_000) + [0, 0, 0, 6, 0x77, 0, 0, 0, 0, 0])
        usleep(500_000)
        let (messages, closed) = try read(s, seconds: 20)
        XCTAssertTrue(closed)
        XCTAssertEqual(messages.filter { if case .pong = $0 { true } else { false } }.count, 20_000)
        guard case .error(0, let e)? = messages.last else { return XCTFail("no ERROR last: \(messages.suffix(2))") }
        XCTAssertEqual(e.code, .unknownFrameType)
    }

    /// A client that sends 20,000 PINGs and shuts its sending side, reading late: its
    /// PONGs reach it, then the end.
    func testAClientThatLeavesGetsWhatWasWrittenToIt() throws {
        let daemon = try DaemonProcess()
        let s = try UnixSocket(connectingTo: daemon.socketPath)
        defer { s.close() }
        try s.write(try Message.hello(.init()).encoded + pings(20_000))
        XCTAssertEqual(shutdown(s.fd, Int32(SHUT_WR)), 0)
        usleep(500_000)
        let (messages, closed) = try read(s, seconds: 20)
        XCTAssertTrue(closed)
        XCTAssertEqual(messages.filter { if case .pong = $0 { true } else { false } }.count, 20_000)
        XCTAssertFalse(messages.contains { if case .error = $0 { true } else { false } }, "leaving is no error")
    }

    /// 70,000 PINGs from a client that reads nothing for 11 s: the daemon stops reading
    /// at its high water with part of a frame read; that frame is not "incomplete for 10 s"
    /// (its rest waited in the daemon's own socket buffer). Every PONG arrives, no ERROR.
    func testAFrameTheDaemonIsNotReadingIsNotLate() throws {
        let daemon = try DaemonProcess()
        let s = try UnixSocket(connectingTo: daemon.socketPath)
        defer { s.close() }
        let bytes = try Message.hello(.init()).encoded + pings(70_000)
        var tv = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(s.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        try s.write(bytes)
        Thread.sleep(forTimeInterval: 11)
        var pongs = 0
        let (messages, _) = try read(s, seconds: 20) { m in
            if case .pong = m { pongs += 1 }
            return pongs == 70_000
        }
        XCTAssertEqual(pongs, 70_000)
        XCTAssertFalse(messages.contains { if case .error = $0 { true } else { false } }, "\(messages.suffix(2))")
    }
}
