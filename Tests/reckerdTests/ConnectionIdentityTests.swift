import Foundation
import ReckerProtocol
import ReckerTestSupport
import XCTest

/// A connection record names exactly the socket libcurl holds: no action of the pool ever
/// lands on a descriptor that has since become someone else's.
final class ConnectionIdentityTests: XCTestCase {
    /// Sends one GET and waits for its end; returns the status, or the error's code.
    func fetch(_ c: ReckerConnection, stream: UInt32, _ url: String) throws -> String {
        try c.send(.requestHead(stream: stream, RequestHead(url: url), endRequest: true))
        var status = "none"
        for _ in 0 ..< 100 {
            switch try c.receive() {
            case .responseHead(_, let h): status = "\(h.status)"
            case .responseEnd: return status
            case .error(_, let e): return e.code.name
            default: continue
            }
        }
        return "no end"
    }

    func assertStatsMatchSockets(_ daemon: DaemonProcess, file: StaticString = #filePath, line: UInt = #line) throws {
        var seen = (stats: -1, ss: -2)
        let equal = try TestEnvironment.eventually(5) {
            seen = (try daemon.stats()["connections_open"] as? Int ?? -1, try TestEnvironment.tcpSockets(pid: daemon.pid))
            return seen.stats == seen.ss
        }
        XCTAssertTrue(equal, "stats connections_open \(seen.stats), ss shows \(seen.ss)", file: file, line: line)
    }

    /// Two clients leave, one with requests waiting in the queue, then one whose requests
    /// hang upstream; 30 other clients then take the descriptor numbers their connections
    /// had. When the hanging connections' lifetime ends, no bystander is touched, and the
    /// queued requests of the client that had gone were never sent.
    func testDepartingClientsNeverTouchBystanders() throws {
        let hang = try FaultServer()
        let healthy = try FaultServer()
        let daemon = try DaemonProcess(config: #"{ "agent": { "connections": 10, "maxLifetime": 1 } }"#)
        for queuedLeavesFirst in [true, false] {
            let sent = hang.received("GET", "/hang")
            let first = try ReckerConnection(socketPath: daemon.socketPath)
            let second = try ReckerConnection(socketPath: daemon.socketPath)
            try first.send((1 ... 10).map { .requestHead(stream: UInt32($0), RequestHead(url: hang.url("/hang")), endRequest: true) })
            XCTAssertTrue(TestEnvironment.eventually(5) { hang.received("GET", "/hang") == sent + 10 })
            try second.send((1 ... 10).map { .requestHead(stream: UInt32($0), RequestHead(url: hang.url("/hang")), endRequest: true) })
            XCTAssertTrue(try TestEnvironment.eventually(5) { try daemon.stats()["requests_queued"] as? Int == 10 })
            // Leaving in the other order, the queued requests start the moment the first
            // client's free their connections, and are cancelled while they connect.
            if queuedLeavesFirst { second.close() } else { first.close() }
            usleep(500)
            if queuedLeavesFirst { first.close() } else { second.close() }
            let bystanders = try (0 ..< 30).map { _ in try ReckerConnection(socketPath: daemon.socketPath) }
            // Past the 1 s lifetime of anything the departed clients left, and a janitor pass.
            usleep(2_500_000)
            var failures: [String] = []
            for (i, c) in bystanders.enumerated() {
                let r = (try? fetch(c, stream: 1, healthy.url("/delay/1"))) ?? "connection broken"
                if r != "200" { failures.append("bystander \(i): \(r)") }
                c.close()
            }
            XCTAssertEqual(failures, [], "bystanders hurt")
            if queuedLeavesFirst {
                XCTAssertEqual(hang.received("GET", "/hang"), sent + 10, "a departed client's queued request was started")
            }
            XCTAssertTrue(daemon.process.isRunning)
            try assertStatsMatchSockets(daemon)
        }
        daemon.stop()
        let forgotten = daemon.stderr.split(separator: "\n").filter { $0.contains("forgotten") }
        XCTAssertEqual(forgotten, [], "every path that closes a socket is known, none is left to the audit")
    }

    /// A connection opened while following a redirect belongs to the hop's domain: direct
    /// requests to that domain reuse it, are counted busy while they run, and are neither
    /// cut by the pool's timers nor sent twice.
    func testRedirectedConnectionBelongsToItsOwnDomain() async throws {
        let fault = try FaultServer()
        let nginx = try Nginx(files: Fixtures.files, extraConfig: """
            location = /to-https { return 302 https://localhost:$arg_port/n/1.txt; }
            location = /to-fault { return 302 http://127.0.0.1:$arg_port/close-on-reuse; }
            """)
        let daemon = try DaemonProcess(config: Fixtures.config(nginx, extra: #""agent": { "keepAliveTimeout": 300, "maxLifetime": 1 }"#))
        let client = ReckerClient(socketPath: daemon.socketPath)
        defer { client.close() }
        func follow(_ url: String) -> ReckerRequest {
            var r = ReckerRequest(url: url)
            r.head.options.followRedirects = 5
            return r
        }

        // http -> https: the https connection is localhost's, and direct requests reuse it.
        let hopped = try await client.send(follow(nginx.url("/to-https?port=\(nginx.httpsPort)")))
        XCTAssertEqual(hopped.body, Array("item 1\n".utf8))
        for i in 2 ..< 5 {
            let r = try await client.send(ReckerRequest(url: nginx.url("/n/\(i).txt", https: true)))
            XCTAssertEqual(r.status, 200)
            XCTAssertTrue(r.head.reused, "request \(i) reused the connection the redirect opened")
        }
        // nginx logs a request after its response went out: wait for all five lines (the
        // 302 and four over https), not for what was written when the last answer arrived.
        let tls = nginx.waitForLog(count: 5).filter { $0.proto == "HTTP/2.0" }
        XCTAssertEqual(tls.count, 4)
        XCTAssertEqual(Set(tls.map(\.connection)).count, 1, "one https connection served the hop and the direct requests")
        let stats = try daemon.stats()
        let domains = stats["domains"] as? [String: [String: Any]] ?? [:]
        let https = domains["localhost:\(nginx.httpsPort)"] ?? [:]
        XCTAssertEqual(https["connections_created"] as? Int, 1, "\(domains)")
        XCTAssertGreaterThanOrEqual(https["reuse_ratio"] as? Double ?? -1, 0)
        XCTAssertEqual(domains["127.0.0.1:\(nginx.httpPort)"]?["connections_created"] as? Int, 1)

        // http -> another http origin, then a slow POST on the connection the hop opened: it
        // runs past the connection's lifetime and the idle timeout, and is sent once.
        let toFault: ReckerResponse
        do { toFault = try await client.send(follow(nginx.url("/to-fault?port=\(fault.port)"))) } catch {
            return XCTFail("the redirect to another http origin failed: \(error)")
        }
        XCTAssertTrue(String(decoding: toFault.body, as: UTF8.self).hasPrefix("GET 0 "))
        let post = try await client.send(ReckerRequest(method: "POST", url: fault.url("/delay/1500")))
        XCTAssertEqual(post.status, 200)
        XCTAssertTrue(post.head.reused)
        XCTAssertEqual(fault.received("POST", "/delay/1500"), 1, "the POST reached the upstream once")
        XCTAssertEqual(fault.connections, 1)
        try assertStatsMatchSockets(daemon)
    }

    /// A GET followed in the same write by a frame that kills the connection, 100 times:
    /// the GETs are cancelled at every stage, and the stats still match the sockets.
    func testRequestsCutByConnectionErrorsLeaveNoGhostConnections() throws {
        let server = try FaultServer()
        let daemon = try DaemonProcess()
        let get = try Message.requestHead(stream: 1, RequestHead(url: server.url("/delay/20")), endRequest: true).encoded
        let hello = try Message.hello(.init()).encoded
        for i in 0 ..< 100 {
            let s = try UnixSocket(connectingTo: daemon.socketPath)
            try s.write(hello + get + [0, 0, 0, 6, 0x7E, 0, 0, 0, 0, 0])
            if i % 3 == 0 { usleep(UInt32(i * 50)) }
            s.close()
        }
        XCTAssertTrue(daemon.process.isRunning)
        try assertStatsMatchSockets(daemon)
        let open = try daemon.stats()["connections_open"] as? Int ?? -1
        XCTAssertLessThanOrEqual(open, 10, "never more than the pool's limit")
    }
}
