import Foundation
import ReckerProtocol
import ReckerTestSupport
import Synchronization
import XCTest

/// Random frames from many connections at once against a running daemon: it stays up,
/// its memory and descriptors come back to where they were, and a normal request is then
/// served in normal time. RECKER_LIVE_FUZZ_SECONDS sets the length (10 s here; `make bench`
/// runs 300).
final class LiveFuzzTests: XCTestCase {
    func testRandomFramesFromManyConnections() throws {
        let seconds = Double(ProcessInfo.processInfo.environment["RECKER_LIVE_FUZZ_SECONDS"] ?? "") ?? 10
        let server = try FaultServer()
        let daemon = try DaemonProcess(config: #"{ "limits": { "maxInFlightPerClient": 16 } }"#)
        XCTAssertEqual(try daemon.recker(["-sS", server.url("/delay/1")]).text, "ok")
        usleep(300_000)
        let fds = TestEnvironment.fdCount(pid: daemon.pid)
        let urls = [server.url("/delay/5"), server.url("/digest"), server.url("/hang"), server.url("/close-on-reuse"),
                    server.url("/many-headers/50"), "http://127.0.0.1:1/", "https://127.0.0.1:\(server.port)/"]
        // Two rounds: the first brings memory to its working level (up to 8 x 16 transfers
        // with libcurl buffers at once), the second must not add to it.
        var rss: [Int] = []
        var total = 0
        for _ in 0 ..< 2 {
            total += Self.storm(daemon.socketPath, urls: urls, seconds: seconds / 2)
            XCTAssertTrue(daemon.process.isRunning, "the daemon survived")
            XCTAssertTrue(TestEnvironment.eventually(15) { TestEnvironment.fdCount(pid: daemon.pid) <= fds },
                          "descriptors back to \(fds): \(TestEnvironment.fdCount(pid: daemon.pid))")
            rss.append(ResourceTests.rss(daemon.pid))
        }
        print("live fuzz: \(total) connections of random frames in \(Int(seconds)) s; RSS after each half \(rss.map { "\($0 / 1024) KiB" })")
        XCTAssertLessThan(rss[1] - rss[0], 2 << 20, "RSS grew by \(rss[1] - rss[0]) bytes in the second half")
        let started = Date()
        XCTAssertEqual(try daemon.recker(["-sS", server.url("/delay/1")]).text, "ok")
        XCTAssertLessThan(Date().timeIntervalSince(started), 1, "a normal request in normal time")
    }

    /// 8 threads, each connecting again and again with a burst of random frames, reading a
    /// little or not at all, and leaving; returns the connections made.
    static func storm(_ socketPath: String, urls: [String], seconds: Double) -> Int {
        let sent = Atomic<Int>(0)
        let deadline = Date().addingTimeInterval(seconds)
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            var rng = SystemRandomNumberGenerator()
            while Date() < deadline {
                guard let s = try? UnixSocket(connectingTo: socketPath) else { continue }
                var bytes: [UInt8] = Bool.random(using: &rng) ? ((try? Message.hello(.init()).encoded) ?? []) : []
                for _ in 0 ..< Int.random(in: 1 ... 20, using: &rng) { bytes += randomFrame(&rng, urls: urls) }
                try? s.write(bytes)
                sent.wrappingAdd(1, ordering: .relaxed)
                if Bool.random(using: &rng) {
                    var tv = timeval(tv_sec: 0, tv_usec: 20_000)
                    setsockopt(s.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
                    var buffer: [UInt8] = []
                    _ = try? s.read(into: &buffer)
                }
                s.close()
            }
        }
        return sent.load(ordering: .relaxed)
    }

    /// A frame that is sometimes valid, sometimes nearly so, sometimes noise.
    static func randomFrame(_ rng: inout SystemRandomNumberGenerator, urls: [String]) -> [UInt8] {
        let stream = UInt32.random(in: 0 ... 6, using: &rng)
        switch Int.random(in: 0 ..< 10, using: &rng) {
        case 0 ... 3:
            var head = RequestHead(method: ["GET", "POST", "PUT", "HEAD", "X"].randomElement(using: &rng)!, url: urls.randomElement(using: &rng)!)
            if Bool.random(using: &rng) { head.bodyLength = UInt64.random(in: 0 ... 100, using: &rng) }
            if Int.random(in: 0 ..< 4, using: &rng) == 0 { head.options.followRedirects = 2 }
            return (try? Message.requestHead(stream: stream, head, endRequest: Bool.random(using: &rng)).encoded) ?? []
        case 4:
            return (try? Message.requestBody(stream: stream, Array(repeating: 0x61, count: Int.random(in: 0 ... 200, using: &rng)),
                                             endRequest: Bool.random(using: &rng)).encoded) ?? []
        case 5:
            let m: Message = [.cancel(stream: stream), .windowUpdate(stream: stream, increment: UInt32.random(in: 1 ..< (1 << 31), using: &rng)),
                              .statsRequest(stream: stream, format: UInt8.random(in: 0 ... 3, using: &rng)), .ping([1, 2, 3, 4, 5, 6, 7, 8])]
                .randomElement(using: &rng)!
            return (try? m.encoded) ?? []
        case 6:
            // A valid frame with random bytes flipped.
            var bytes = (try? Message.requestHead(stream: stream, RequestHead(url: urls[0]), endRequest: true).encoded) ?? []
            for _ in 0 ..< 3 where !bytes.isEmpty { bytes[Int.random(in: 0 ..< bytes.count, using: &rng)] = UInt8.random(in: 0 ... 255, using: &rng) }
            return bytes
        default:
            let n = Int.random(in: 0 ... 64, using: &rng)
            let length = UInt32(6 + n)
            return [UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF),
                    UInt8.random(in: 0 ... 0x60, using: &rng), UInt8.random(in: 0 ... 3, using: &rng), 0, 0, 0, UInt8(stream)]
                + (0 ..< n).map { _ in UInt8.random(in: 0 ... 255, using: &rng) }
        }
    }
}
