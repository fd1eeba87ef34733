import Foundation
import ReckerLoop
import ReckerPool
import ReckerProtocol
import ReckerSession
import ReckerTestSupport
import XCTest

/// Collects what the engine reports for each transfer.
final class RecordingSink: TransferSink, @unchecked Sendable {
    struct Result {
        var head: ResponseHead?
        var body: [UInt8] = []
        var end: ResponseEnd?
        var error: ReckerError?
    }

    private let lock = NSLock()
    private var results: [TransferID: Result] = [:]
    private let done = DispatchSemaphore(value: 0)
    var engine: CurlEngine?

    func transferHead(_ id: TransferID, _ head: ResponseHead) { update(id) { $0.head = head } }
    func transferBody(_ id: TransferID, _ chunk: [UInt8]) {
        update(id) { $0.body += chunk }
        engine?.consumed(id, bytes: chunk.count)
    }
    func transferEnd(_ id: TransferID, _ end: ResponseEnd) { update(id) { $0.end = end }; done.signal() }
    func transferFailed(_ id: TransferID, _ error: ReckerError) { update(id) { $0.error = error }; done.signal() }
    func transferBodySent(_ id: TransferID, bytes: Int) {}

    private func update(_ id: TransferID, _ change: (inout Result) -> Void) {
        lock.lock()
        change(&results[id, default: Result()])
        lock.unlock()
    }

    /// Waits (at most 10 s) for one transfer to end and returns what it got.
    func wait(_ id: TransferID) -> Result? {
        for _ in 0 ..< 100 {
            lock.lock()
            let r = results[id]
            lock.unlock()
            if let r, r.end != nil || r.error != nil { return r }
            _ = done.wait(timeout: .now() + 0.1)
        }
        return nil
    }
}

final class CurlEngineTests: XCTestCase {
    func request(_ url: String, method: String = "GET") throws -> EngineRequest {
        let head = RequestHead(method: method, url: url)
        return EngineRequest(head: head, target: try RequestValidator.validate(head),
                             arrival: MonotonicClock.nanoseconds(), hasBody: false)
    }

    /// Uploads that trickle in pause and resume many times a second, across the engine's
    /// once-a-second audit of stalled uploads; none may fail with a false body timeout (a
    /// pause stamped by a clock read later than the loop pass's own time once looked 584
    /// years old to the audit in the same pass).
    func testTricklingUploadsNeverTimeOutFalsely() throws {
        let server = try FaultServer()
        let engine = try CurlEngine(options: PoolOptions())
        defer { engine.shutdown() }
        let sink = RecordingSink()
        sink.engine = engine
        let chunk = [UInt8](repeating: 0x61, count: 1024)
        let chunks = 250
        let uploads = 4
        let ids = try (0 ..< uploads).map { _ in
            let head = RequestHead(method: "POST", url: server.url("/digest"), bodyLength: UInt64(chunk.count * chunks))
            return engine.start(EngineRequest(head: head, target: try RequestValidator.validate(head), arrival: MonotonicClock.nanoseconds(),
                                              hasBody: true), sink: sink)
        }
        for i in 0 ..< chunks {
            for id in ids { engine.sendBody(id, chunk, end: i == chunks - 1) }
            usleep(10_000)
        }
        let whole = [UInt8](repeating: 0x61, count: chunk.count * chunks)
        for id in ids {
            let r = try XCTUnwrap(sink.wait(id), "upload \(id) ended")
            XCTAssertNil(r.error, "upload \(id)")
            XCTAssertEqual(String(decoding: r.body, as: UTF8.self), "POST \(whole.count) \(String(FaultServer.fnv1a(whole), radix: 16))")
        }
    }

    func testSequentialRequestsReuseOneConnection() throws {
        let server = try FaultServer()
        let engine = try CurlEngine(options: PoolOptions())
        defer { engine.shutdown() }
        let sink = RecordingSink()
        sink.engine = engine
        var ids: [UInt64] = []
        for i in 0 ..< 5 {
            let id = engine.start(try request(server.url("/delay/1")), sink: sink)
            let r = try XCTUnwrap(sink.wait(id))
            XCTAssertNil(r.error)
            XCTAssertEqual(r.head?.status, 200)
            XCTAssertEqual(String(decoding: r.body, as: UTF8.self), "ok")
            XCTAssertEqual(r.head?.reused, i > 0)
            ids.append(r.head?.connectionID ?? 0)
        }
        XCTAssertEqual(server.connections, 1, "the server accepted one connection for five requests")
        XCTAssertEqual(Set(ids).count, 1)
        XCTAssertNotEqual(ids.first, 0)
        let stats = engine.stats
        XCTAssertEqual(stats.total.requestsTotal, 5)
        XCTAssertEqual(stats.total.connectionsCreated, 1)
        XCTAssertEqual(stats.total.connectionsOpen, 1)
        XCTAssertEqual(stats.domains["127.0.0.1:\(server.port)"]?.requestsTotal, 5)
    }

    func testUpstreamFailuresMapToStableCodes() throws {
        let engine = try CurlEngine(options: PoolOptions())
        defer { engine.shutdown() }
        let sink = RecordingSink()
        // A port nothing listens on: refused before anything was sent.
        let port = TestEnvironment.freePort()
        let id = engine.start(try request("http://127.0.0.1:\(port)/", method: "POST"), sink: sink)
        let r = try XCTUnwrap(sink.wait(id))
        XCTAssertEqual(r.error?.code, .connectFailed)
        XCTAssertEqual(r.error?.mayHaveReachedUpstream, false)
        XCTAssertEqual(r.error?.retrySafe, true, "nothing reached the upstream, so even a POST may be retried")
        XCTAssertEqual(r.error?.detail, 7, "CURLE_COULDNT_CONNECT rides along")
        XCTAssertEqual(engine.stats.total.errorsTotal, 1)
        XCTAssertEqual(engine.stats.total.requestsInFlight, 0)
    }

    func testCancelEndsTheTransfer() throws {
        let server = try FaultServer()
        let engine = try CurlEngine(options: PoolOptions())
        defer { engine.shutdown() }
        let sink = RecordingSink()
        let id = engine.start(try request(server.url("/delay/5000")), sink: sink)
        usleep(100_000)
        engine.cancel(id)
        let r = try XCTUnwrap(sink.wait(id))
        XCTAssertEqual(r.error?.code, .cancelled)
        XCTAssertEqual(engine.stats.total.requestsInFlight, 0)
    }
}
