import Foundation
import ReckerProtocol
import ReckerTestSupport
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// The Swift client library as an application uses it: cancellation, timeouts, dropped
/// streams and clients, typed stats, all seen from outside (the upstream, the daemon's
/// stats, this process's descriptors).
final class ClientLibraryTests: XCTestCase {
    /// One connection per upstream, so a request that pins it shows at once.
    static let oneConnection = #"{ "agent": { "connections": 1, "queueTimeout": 20000 }, "http2": { "enabled": false } }"#

    /// Waits (bounded) until the daemon has `n` requests running upstream.
    func waitInFlight(_ daemon: DaemonProcess, _ n: Int) -> Bool {
        TestEnvironment.eventually(10) { (try? daemon.stats())?["requests_in_flight"] as? Int == n }
    }

    func testCancellingTheTaskCancelsTheRequestAndFreesTheConnection() async throws {
        let server = try FaultServer()
        let daemon = try DaemonProcess(config: Self.oneConnection)
        let client = ReckerClient(socketPath: daemon.socketPath)
        let started = Date()
        let task = Task { () async throws(ReckerError) -> ReckerResponse in
            try await client.send(ReckerRequest(url: server.url("/hang")))
        }
        XCTAssertTrue(waitInFlight(daemon, 1), "the request reached the upstream")
        task.cancel()
        let result = await task.result
        XCTAssertEqual(result.reckerCode, .cancelled, "\(result)")
        XCTAssertEqual(server.received("GET", "/hang"), 1)
        XCTAssertTrue(TestEnvironment.eventually(10) { server.closedConnections == 1 }, "the daemon closed the hung upstream connection")
        // The only connection is free again: the next request is served instead of queued.
        let next = try await client.send(ReckerRequest(url: server.url("/delay/1")), timeout: .seconds(10))
        XCTAssertEqual(String(decoding: next.body, as: UTF8.self), "ok")
        XCTAssertLessThan(Date().timeIntervalSince(started), 15, "neither call waited for the queue timeout")
        XCTAssertTrue(waitInFlight(daemon, 0))
    }

    func testATaskCancelledBeforeItStartsSendsNothing() async throws {
        let server = try FaultServer()
        let daemon = try DaemonProcess()
        let client = ReckerClient(socketPath: daemon.socketPath)
        let task = Task { () async throws(ReckerError) -> ReckerResponse in
            withUnsafeCurrentTask { $0?.cancel() }
            return try await client.send(ReckerRequest(url: server.url("/digest")))
        }
        let result = await task.result
        XCTAssertEqual(result.reckerCode, .cancelled, "\(result)")
        let ok = try await client.send(ReckerRequest(url: server.url("/delay/1")))
        XCTAssertEqual(ok.status, 200, "the client still works")
        XCTAssertEqual(server.received("GET", "/digest"), 0, "the cancelled request never reached the upstream")
    }

    func testTheCallsTimeoutCancelsTheRequest() async throws {
        let server = try FaultServer()
        let daemon = try DaemonProcess(config: Self.oneConnection)
        let client = ReckerClient(socketPath: daemon.socketPath)
        do {
            let r = try await client.send(ReckerRequest(url: server.url("/hang")), timeout: .milliseconds(300))
            XCTFail("answered \(r.status)")
        } catch {
            XCTAssertEqual(error.code, .timeout, "\(error)")
            XCTAssertTrue(error.mayHaveReachedUpstream, "the request had gone out")
        }
        XCTAssertTrue(TestEnvironment.eventually(10) { server.closedConnections == 1 }, "the daemon closed the hung upstream connection")
        let next = try await client.send(ReckerRequest(url: server.url("/delay/1")), timeout: .seconds(10))
        XCTAssertEqual(next.status, 200, "the connection was free for the next request")
    }

    func testDroppingAStreamCancelsItsRequest() async throws {
        let nginx = try Nginx(files: Fixtures.files)
        let daemon = try DaemonProcess(config: Self.oneConnection)
        let client = ReckerClient(socketPath: daemon.socketPath)
        do {
            let stream = try await client.stream(ReckerRequest(url: nginx.url("/slow/big")))
            XCTAssertEqual(stream.head.status, 200)
            var iterator = stream.makeAsyncIterator()
            let first = try await iterator.next()
            XCTAssertFalse(first?.isEmpty ?? true, "a first chunk of 16 MiB at 256 KiB/s")
        }
        // 16 MiB at nginx's 256 KiB/s would hold the only connection for a minute.
        XCTAssertTrue(waitInFlight(daemon, 0), "the dropped stream's request ended")
        let next = try await client.send(ReckerRequest(url: nginx.url("/hello.txt")), timeout: .seconds(10))
        XCTAssertEqual(String(decoding: next.body, as: UTF8.self), "hello from nginx\n")
    }

    func testCancellingTheReadingTaskCancelsTheStream() async throws {
        let nginx = try Nginx(files: Fixtures.files)
        let daemon = try DaemonProcess(config: Self.oneConnection)
        let client = ReckerClient(socketPath: daemon.socketPath)
        let stream = try await client.stream(ReckerRequest(url: nginx.url("/slow/big")))
        let reader = Task { () async throws(ReckerError) -> Int in
            var total = 0
            for try await chunk in stream { total += chunk.count }
            return total
        }
        XCTAssertTrue(waitInFlight(daemon, 1))
        reader.cancel()
        let result = await reader.result
        XCTAssertEqual(result.reckerCode, .cancelled, "\(result)")
        XCTAssertTrue(waitInFlight(daemon, 0), "the request ended while the stream value still exists")
        do {
            for try await _ in stream { XCTFail("a chunk after the cancel") }
        } catch {
            XCTAssertEqual(error.code, .cancelled, "reading again says why it stopped")
        }
    }

    func testADroppedClientIsFreedAndClosesItsSocket() async throws {
        let daemon = try DaemonProcess()
        let before = Self.openSockets()
        weak var weakClient: ReckerClient?
        var mine: Set<String> = []
        do {
            let client = ReckerClient(socketPath: daemon.socketPath)
            weakClient = client
            let stats: ReckerStats = try await client.stats()
            XCTAssertEqual(stats.clients, 1, "this client is connected")
            mine = Self.openSockets().subtracting(before)
            XCTAssertEqual(mine.count, 1, "one socket while connected: \(mine)")
        }
        XCTAssertTrue(TestEnvironment.eventually(5) { weakClient == nil }, "nothing holds the client once its owner drops it")
        XCTAssertTrue(TestEnvironment.eventually(5) { Self.openSockets().isDisjoint(with: mine) }, "its socket is closed")
        XCTAssertEqual(try daemon.stats()["clients"] as? Int, 1, "the daemon sees only the stats client")
    }

    /// This process's open sockets, as "descriptor -> socket:[inode]".
    static func openSockets() -> Set<String> {
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return Set(fds.compactMap { fd in
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)"),
                  target.hasPrefix("socket:") else { return nil }
            return "\(fd) -> \(target)"
        })
    }

    func testStatsAreTyped() async throws {
        let server = try FaultServer()
        let daemon = try DaemonProcess()
        let client = ReckerClient(socketPath: daemon.socketPath)
        for _ in 0 ..< 3 { _ = try await client.send(ReckerRequest(url: server.url("/delay/1"))) }
        let stats: ReckerStats = try await client.stats(timeout: .seconds(10))
        let json = try daemon.stats()
        XCTAssertEqual(stats.schema, 1)
        XCTAssertEqual(stats.total.requestsTotal, 3)
        XCTAssertEqual(stats.total.requestsTotal, json["requests_total"] as? Int)
        XCTAssertEqual(stats.total.connectionsCreated, 1)
        XCTAssertEqual(stats.total.httpVersion, "1.1")
        XCTAssertEqual(stats.total.latency.count, 3)
        let domain = try XCTUnwrap(stats.domains["127.0.0.1:\(server.port)"])
        XCTAssertEqual(domain.requestsTotal, 3)
        XCTAssertEqual(domain.connectionsIdle, 1)
        XCTAssertEqual(stats.users[getuid()]?.requestsTotal, 3)
        XCTAssertGreaterThan(stats.uptimeSeconds, 0)
    }

    func testBlockingConnectsStayOffTheCooperativePool() async throws {
        let dir = try TestEnvironment.makeTempDir("silent")
        let path = dir.appendingPathComponent("silent.sock").path
        let listener = try Self.listenWithoutAnswering(path)
        defer { close(listener) }
        // More clients than the machine has cores, each stuck in a handshake that waits
        // 3 s for a WELCOME that never comes. Were the handshakes on the cooperative pool,
        // the timers could not fire before they failed (DAEMON_UNAVAILABLE at 3 s).
        let clients = (0 ..< 2 * ProcessInfo.processInfo.activeProcessorCount + 2).map { _ in ReckerClient(socketPath: path) }
        let calls = Task {
            await withTaskGroup(of: ReckerError.Code?.self) { group in
                for c in clients {
                    group.addTask { await c.outcome(ReckerRequest(url: "http://127.0.0.1:9/"), timeout: .milliseconds(1500)).failure?.code }
                }
                var codes: [ReckerError.Code?] = []
                for await code in group { codes.append(code) }
                return codes
            }
        }
        let codes = await calls.value
        XCTAssertEqual(codes, Array(repeating: .timeout, count: clients.count),
                       "each call ended at its own timeout, before the 3 s handshake limit")
    }

    func testTheLibraryReportsItsVersion() throws {
        XCTAssertEqual(ReckerVersion.protocolVersion, 1)
        let r = try TestEnvironment.run(TestEnvironment.binDir.appendingPathComponent("recker").path, ["--version"])
        XCTAssertTrue(r.text.hasPrefix("recker \(ReckerVersion.release) "), "the CLI of the same build prints it: \(r.text)")
    }

    /// A Unix socket that accepts connections into its backlog and never answers.
    static func listenWithoutAnswering(_ path: String) throws -> Int32 {
        let fd = TestEnvironment.bindUnixSocket(path, listen: 64)
        guard fd >= 0 else {
            throw NSError(domain: "ClientLibraryTests", code: Int(errno))
        }
        return fd
    }
}

extension Result {
    var failure: Failure? { if case .failure(let e) = self { e } else { nil } }
    /// The code of a `ReckerError` failure (a `Task`'s result is untyped).
    var reckerCode: ReckerError.Code? { (failure as? ReckerError)?.code }
}

extension ReckerClient {
    /// A send's outcome as a value.
    func outcome(_ request: ReckerRequest, timeout: Duration) async -> Result<ReckerResponse, ReckerError> {
        do throws(ReckerError) { return .success(try await send(request, timeout: timeout)) } catch { return .failure(error) }
    }
}
