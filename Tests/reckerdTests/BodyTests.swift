import Foundation
import ReckerProtocol
import ReckerTestSupport
import XCTest

/// Bodies arrive byte for byte, in both directions.
final class BodyTests: XCTestCase {
    func testResponseBodiesOfEverySize() throws {
        let nginx = try Nginx(files: Fixtures.files)
        let daemon = try DaemonProcess(config: Fixtures.config(nginx))
        for https in [false, true] {
            for size in [0, 1, 65536, 8 << 20] {
                let out = daemon.dir.appendingPathComponent("out-\(size)")
                let r = try daemon.recker(["-sS", "-o", out.path, "-w", "%{size_download}", nginx.url("/size/\(size)", https: https)])
                XCTAssertEqual(r.status, 0, r.stderr)
                XCTAssertEqual(r.text, String(size))
                let got = try Data(contentsOf: out)
                let want = Fixtures.files["size/\(size)"]!
                XCTAssertEqual(got.count, want.count, "size \(size) https=\(https)")
                XCTAssertEqual(FaultServer.fnv1a(got), FaultServer.fnv1a(want), "size \(size) https=\(https): bytes differ")
            }
        }
    }

    func testOneMebibytePostArrivesIntact() async throws {
        let server = try FaultServer()
        let daemon = try DaemonProcess()
        let body = [UInt8](Fixtures.bytes(1 << 20, seed: 9))
        let want = "POST \(body.count) \(String(FaultServer.fnv1a(body), radix: 16))"

        let client = ReckerClient(socketPath: daemon.socketPath)
        defer { client.close() }
        let response = try await client.send(ReckerRequest(method: "POST", url: server.url("/digest"), body: body))
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(String(decoding: response.body, as: UTF8.self), want)

        // The CLI sends it too (from a file, byte for byte), and a PUT from stdin.
        let file = daemon.dir.appendingPathComponent("post.bin")
        try Data(body).write(to: file)
        let r = try daemon.recker(["-sS", "--data-binary", "@\(file.path)", server.url("/digest")])
        XCTAssertEqual(r.text, want, r.stderr)
        let put = try daemon.recker(["-sS", "-X", "PUT", "--data-binary", "@-", server.url("/digest")], stdin: Data(body))
        XCTAssertEqual(put.text, "PUT \(body.count) \(String(FaultServer.fnv1a(body), radix: 16))", put.stderr)
    }

    func testUploadsNeverWaitForContinue() throws {
        let server = try FaultServer()
        let daemon = try DaemonProcess()
        let r = try daemon.recker(["-sS", "-d", "a=1", server.url("/headers")])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertFalse(r.text.lowercased().contains("expect"), r.text)
        XCTAssertTrue(r.text.contains("Content-Length: 3"), r.text)
    }

    /// Bodies of requests that wait in the queue for a connection arrive whole once they
    /// start: 200 POSTs at concurrency 40 on 10 connections, each upstream digest checked.
    func testBodiesOfQueuedRequestsArriveWhole() async throws {
        let server = try FaultServer()
        let daemon = try DaemonProcess(config: #"{ "agent": { "connections": 4, "queueTimeout": 10000 } }"#)
        let client = ReckerClient(socketPath: daemon.socketPath)
        defer { client.close() }
        let bodies = (0 ..< 200).map { [UInt8](Fixtures.bytes(1000 + $0 * 37, seed: UInt64($0))) }
        let batch = await client.batch(bodies.map { ReckerRequest(method: "POST", url: server.url("/digest"), body: $0) }, concurrency: 40)
        XCTAssertEqual(batch.stats.successful, 200)
        for (i, r) in batch.results.enumerated() {
            let want = "POST \(bodies[i].count) \(String(FaultServer.fnv1a(bodies[i]), radix: 16))"
            XCTAssertEqual((try? r.get()).map { String(decoding: $0.body, as: UTF8.self) }, want, "request \(i)")
        }
    }

    /// A client that declares a body and stops sending it does not hold the upstream
    /// connection for good: after limits.bodyTimeout its request fails with TIMEOUT and the
    /// connection serves the next client.
    func testAStalledUploadGivesItsConnectionBack() throws {
        let server = try FaultServer()
        let daemon = try DaemonProcess(config: #"{ "agent": { "connections": 1 }, "limits": { "bodyTimeout": 1000 } }"#)
        let c = try ReckerConnection(socketPath: daemon.socketPath)
        try c.send(.requestHead(stream: 1, RequestHead(method: "POST", url: server.url("/digest"), bodyLength: 100), endRequest: false))
        try c.send(.requestBody(stream: 1, Array(repeating: 1, count: 10), endRequest: false))
        let started = Date()
        let other = try daemon.recker(["-sS", server.url("/delay/1")])
        XCTAssertEqual(other.text, "ok", other.stderr)
        XCTAssertLessThan(Date().timeIntervalSince(started), 3, "served once the stalled upload timed out")
        var got: ReckerError?
        for _ in 0 ..< 10 {
            if case .error(_, let e) = try c.receive() { got = e; break }
        }
        XCTAssertEqual(got?.code, .timeout, "\(String(describing: got))")
        XCTAssertTrue(got?.message.contains("limits.bodyTimeout") == true)
    }

    /// A response in 1-byte chunks (streaming APIs send small ones) reaches the client whole
    /// in few frames: the pieces are joined per read, not framed one by one, so such a
    /// response cannot hold the loop (one frame per byte cost seconds and ~47 bytes of
    /// memory per byte queued).
    func testTinyChunksAreJoined() throws {
        let server = try FaultServer()
        let daemon = try DaemonProcess()
        let c = try ReckerConnection(socketPath: daemon.socketPath)
        try c.send(.requestHead(stream: 1, RequestHead(url: server.url("/chunks/100000")), endRequest: true))
        var frames = 0, bytes = 0, unacked = 0
        loop: while true {
            switch try c.receive() {
            case .responseBody(_, let data):
                frames += 1
                bytes += data.count
                XCTAssertTrue(data.allSatisfy { $0 == UInt8(ascii: "x") })
                unacked += data.count
                if unacked >= 64 * 1024 {
                    try c.send(.windowUpdate(stream: 1, increment: UInt32(unacked)))
                    unacked = 0
                }
            case .responseEnd(_, let end):
                XCTAssertEqual(end.bodyBytes, 100_000)
                break loop
            case .error(_, let e): throw e
            default: continue
            }
        }
        XCTAssertEqual(bytes, 100_000)
        print("100,000 one-byte chunks arrived in \(frames) frames")
        XCTAssertLessThan(frames, 1_000, "one frame per chunk, or close to it")
    }

}
