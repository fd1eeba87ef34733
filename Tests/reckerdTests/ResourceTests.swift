import Foundation
import ReckerProtocol
import ReckerTestSupport
import Synchronization
import XCTest

/// The daemon's memory, CPU and descriptors stay flat whatever its clients do.
final class ResourceTests: XCTestCase {
    /// A bystander's 20 GETs one after another on `connection`: the slowest, in seconds.
    static func slowestOf20GETs(on connection: ReckerConnection, url: String) throws -> Double {
        var slowest = 0.0
        for stream in UInt32(1) ... 20 {
            let started = Date()
            try connection.send(.requestHead(stream: stream * 2 + 1, RequestHead(url: url), endRequest: true))
            loop: while true {
                switch try connection.receive() {
                case .responseEnd: break loop
                case .error(_, let e): throw e
                default: continue
                }
            }
            slowest = max(slowest, Date().timeIntervalSince(started))
        }
        return slowest
    }

    /// Resident memory of a process, in bytes (VmRSS).
    static func rss(_ pid: Int32) -> Int {
        let text = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return (Int(line.split(separator: " ")[1]) ?? 0) * 1024
        }
        return 0
    }

    /// Connects, says HELLO, reads WELCOME and leaves, `count` times over `threads` threads.
    static func churn(_ socketPath: String, count: Int, threads: Int = 4) -> Int {
        let failures = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            for _ in 0 ..< count / threads {
                do {
                    let c = try ReckerConnection(socketPath: socketPath)
                    c.close()
                } catch {
                    failures.withLock { $0 += 1 }
                }
            }
        }
        return failures.withLock { $0 }
    }

    /// The heap the daemon has in use, and its loop's wake-ups, as its stats say.
    static func heapAndWakeups(_ daemon: DaemonProcess) throws -> (heap: Int, wakeups: Int) {
        let stats = try daemon.stats()
        return (stats["heap_bytes"] as? Int ?? -1, stats["loop_wakeups"] as? Int ?? -1)
    }

    /// 30,000 binary clients, each a HELLO and gone: the heap (the allocator's count, which
    /// RSS is not: RSS per client churn is `make bench`'s, bench/client_churn.py) and the
    /// descriptors end where they began.
    func testThirtyThousandClientsLeaveNoMemoryBehind() throws {
        let daemon = try DaemonProcess()
        try Self.assertChurnLeavesNothing(daemon, "30,000 client connections", warmUp: 4000, count: 30000) {
            Self.churn(daemon.socketPath, count: $0)
        }
    }

    /// `churn(count)` (returning its failures) `warmUp` times, then `count` times: the heap
    /// ends within `heapSlack` of where the second began, the descriptors no higher.
    static func assertChurnLeavesNothing(_ daemon: DaemonProcess, _ what: String, warmUp: Int, count: Int,
                                         file: StaticString = #filePath, line: UInt = #line, _ churn: (Int) -> Int) throws {
        XCTAssertEqual(churn(warmUp), 0, file: file, line: line)
        let fds = TestEnvironment.fdCount(pid: daemon.pid)
        let before = try heapAndWakeups(daemon).heap
        XCTAssertEqual(churn(count), 0, file: file, line: line)
        XCTAssertTrue(try TestEnvironment.eventually(5) { try daemon.stats()["clients"] as? Int == 1 },
                      "only the stats client itself is connected", file: file, line: line)
        let after = try heapAndWakeups(daemon).heap
        print("\(what): heap \(before) -> \(after) bytes")
        XCTAssertGreaterThan(before, 0, file: file, line: line)
        XCTAssertLessThanOrEqual(after - before, heapSlack, "the heap grew by \(after - before) bytes", file: file, line: line)
        // At most: the count before may hold a warm-up client whose close was not yet read.
        XCTAssertTrue(TestEnvironment.eventually(5) { TestEnvironment.fdCount(pid: daemon.pid) <= fds },
                      "descriptors back to where they were: \(TestEnvironment.fdCount(pid: daemon.pid)), \(fds) before",
                      file: file, line: line)
    }

    /// The most wake-ups an idle daemon makes in 3 s: its one-second tick, the pool's and
    /// libcurl's timers, and the stats requests that count them (a spin makes thousands;
    /// a slow machine makes fewer, not more).
    static let idleWakeups = 30

    /// What the heap may differ by between two stats requests with nothing else between
    /// them: a 30,000-client leak of even 8 bytes each is 240,000.
    static let heapSlack = 64 << 10

    /// 10,000 HTTP front clients, each a request and gone (4 at a time, over the front's Unix
    /// socket): the daemon's memory and descriptors end where they began.
    func testTenThousandHTTPFrontClientsLeaveNoMemoryBehind() throws {
        let server = try FaultServer()
        let httpSocket = try TestEnvironment.makeTempDir("front-churn").appendingPathComponent("http.sock").path
        let daemon = try DaemonProcess(config: #"{ "http": { "enabled": true, "socket": "\#(httpSocket)" } }"#)
        let request = Array("GET /digest HTTP/1.1\r\nHost: 127.0.0.1:\(server.port)\r\nConnection: close\r\n\r\n".utf8)
        func churn(_ count: Int) -> Int {
            let failures = Mutex(0)
            DispatchQueue.concurrentPerform(iterations: 4) { _ in
                for _ in 0 ..< count / 4 {
                    guard let c = try? HTTPFrontClient(unix: httpSocket) else {
                        failures.withLock { $0 += 1 }
                        continue
                    }
                    c.send(request)
                    let (data, closed) = c.read(seconds: 5)
                    if HTTPFrontClient.statuses(data) != [200] || !closed { failures.withLock { $0 += 1 } }
                }
            }
            return failures.withLock { $0 }
        }
        try Self.assertChurnLeavesNothing(daemon, "10,000 HTTP front clients", warmUp: 2000, count: 10000, churn)
    }

    /// With warm targets kept open, the HTTP front and /metrics listening, a front client
    /// kept alive, and nothing to do, the daemon sleeps.
    func testIdleDaemonWithWarmTargetsUsesNoCPU() throws {
        let nginx = try Nginx(files: Fixtures.files)
        let front = TestEnvironment.freePort(), metrics = TestEnvironment.freePort()
        let httpSocket = try TestEnvironment.makeTempDir("idle-front").appendingPathComponent("http.sock").path
        let daemon = try DaemonProcess(config: Fixtures.config(nginx, extra: """
            "agent": { "keepAliveTimeout": 200 },
            "warm": [{ "url": "\(nginx.url("/hello.txt"))", "minIdle": 2 }, { "url": "\(nginx.url("/hello.txt", https: true))", "minIdle": 1 }],
            "http": { "enabled": true, "socket": "\(httpSocket)", "listen": "127.0.0.1:\(front)" },
            "metrics": { "listen": "127.0.0.1:\(metrics)" }
            """))
        XCTAssertTrue(try TestEnvironment.eventually(5) { try daemon.stats()["connections_idle"] as? Int == 3 })
        // The HTTP front and /metrics listen too, with a kept-alive front client sitting idle.
        let idleClient = try HTTPFrontClient(port: front)
        idleClient.send("GET /hello.txt HTTP/1.1\r\nHost: 127.0.0.1:\(nginx.httpPort)\r\n\r\n")
        XCTAssertEqual(HTTPFrontClient.statuses(idleClient.read(seconds: 5) { String(decoding: $0, as: UTF8.self).hasSuffix("nginx\n") }.data), [200])
        let before = try Self.heapAndWakeups(daemon).wakeups
        usleep(3_000_000)
        let woke = try Self.heapAndWakeups(daemon).wakeups - before
        print("idle daemon with 3 warm connections, the HTTP front and /metrics: \(woke) wake-ups in 3 s")
        XCTAssertGreaterThan(woke, 0)
        XCTAssertLessThanOrEqual(woke, Self.idleWakeups, "an idle daemon spins")
        let prometheus = try daemon.recker(["stats", "--prometheus"]).text
        XCTAssertNotNil(prometheus.range(of: #"\nreckerd_loop_wakeups_total [1-9][0-9]*\n"#, options: .regularExpression), prometheus)
        XCTAssertNotNil(prometheus.range(of: #"\nreckerd_heap_bytes [1-9][0-9]*\n"#, options: .regularExpression), prometheus)
        XCTAssertEqual(try daemon.stats()["connections_open"] as? Int, 3, "warm connections stay open past keepAliveTimeout")
    }

    /// A reload that lowers `limits.responseBuffer` leaves responses on connections opened
    /// before it flowing.
    func testReloadLoweringTheResponseBufferStallsNothing() throws {
        let nginx = try Nginx(files: Fixtures.files)
        let daemon = try DaemonProcess(config: Fixtures.config(nginx))
        let c = try ReckerConnection(socketPath: daemon.socketPath)
        var tv = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(c.socket.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        try Fixtures.config(nginx, extra: #""limits": { "responseBuffer": 65536 }"#).write(toFile: daemon.configPath, atomically: true, encoding: .utf8)
        XCTAssertTrue(daemon.reload())
        for stream in UInt32(1) ... 2 {
            try c.send(.requestHead(stream: stream, RequestHead(url: nginx.url("/size/8388608")), endRequest: true))
            var received = 0
            var unacked = 0
            var ended = false
            while !ended {
                switch try c.receive() {
                case .responseBody(_, let data):
                    received += data.count
                    unacked += data.count
                    if unacked >= Int(c.welcome.initialWindow) / 2 {
                        try c.send(.windowUpdate(stream: stream, increment: UInt32(unacked)))
                        unacked = 0
                    }
                case .responseEnd: ended = true
                case .error(_, let e): throw e
                default: continue
                }
            }
            XCTAssertEqual(received, 8 << 20, "request \(stream) after the reload")
        }
    }

    /// (Domains are forgotten 4 s after their last request: longer than a batch here takes,
    /// so the counts below are whole.)
    /// Requests to 5,000 distinct domains (127.0.x.y on loopback, nobody listening): the
    /// statistics list at most `maxDomains` of them plus `other`, the totals count all, and
    /// once idle they are forgotten, round after round.
    func testManyDomainsKeepStateBounded() async throws {
        let port = TestEnvironment.freePort()
        let daemon = try DaemonProcess(config: #"{ "limits": { "maxDomains": 100, "forgetIdleDomainsAfter": 4000, "dnsCacheTimeout": 1 } }"#)
        let client = ReckerClient(socketPath: daemon.socketPath)
        defer { client.close() }
        func urls(_ range: Range<Int>) -> [ReckerRequest] {
            range.map { ReckerRequest(url: "http://127.0.\($0 / 250).\($0 % 250 + 1):\(port)/") }
        }
        func forgotten() throws -> Bool {
            try TestEnvironment.eventually(10) { (try daemon.stats()["domains"] as? [String: Any])?.isEmpty == true }
        }
        let first = await client.batch(urls(0 ..< 5000), concurrency: 50)
        XCTAssertEqual(first.stats.failed, 5000, "nobody listens")
        let stats = try daemon.stats()
        let domains = stats["domains"] as? [String: [String: Any]] ?? [:]
        XCTAssertEqual(domains.count, 101, "maxDomains plus other")
        XCTAssertNotNil(domains["other"])
        XCTAssertEqual(stats["requests_total"] as? Int, 5000, "the totals count every domain")
        XCTAssertEqual(stats["connect_failures"] as? Int, 5000)
        let counted = domains.values.map { $0["requests_total"] as? Int ?? 0 }.reduce(0, +)
        XCTAssertEqual(counted, 5000, "the listed domains and other add up to the total")
        let prometheus = try daemon.recker(["stats", "--prometheus"]).text
        let series = prometheus.split(separator: "\n").filter { $0.hasPrefix("reckerd_requests_total{") }.count
        XCTAssertEqual(series, 101)
        XCTAssertTrue(try forgotten(), "idle domains are forgotten")
        XCTAssertEqual(try daemon.stats()["requests_total"] as? Int, 5000, "forgetting keeps the totals")

        for round in 0 ..< 2 {
            let start = 5000 + round * 2500
            let more = await client.batch(urls(start ..< start + 2500), concurrency: 50)
            XCTAssertEqual(more.stats.failed, 2500)
            XCTAssertTrue(try forgotten(), "round \(round): forgotten again")
        }
        XCTAssertEqual(try daemon.stats()["requests_total"] as? Int, 10000, "every round counted")
        // What rounds of new domains cost in memory is a budget, measured in `make bench`
        // (bench/domain_rounds.py): beside other test classes the RSS of a round moved by
        // 1.0-1.6 MiB either way.
    }

    /// Connections to 200 domains, idle past keepAliveTimeout: the upstream sees each
    /// closed, and the daemon's descriptors go back to what they were (libcurl held the
    /// closed ones' until its next look at its pool, 1,013 descriptors for 30 s and more).
    func testIdleConnectionsClosedOnTimeGiveBackTheirDescriptors() async throws {
        let server = try FaultServer()
        let daemon = try DaemonProcess(config: #"{ "agent": { "keepAliveTimeout": 500 } }"#)
        let client = ReckerClient(socketPath: daemon.socketPath)
        defer { client.close() }
        func descriptors() -> Int { (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(daemon.pid)/fd").count) ?? -1 }
        _ = try await client.send(ReckerRequest(url: "http://localhost:\(server.port)/digest"))
        XCTAssertTrue(TestEnvironment.eventually(10) { server.openConnections == 0 })
        let baseline = descriptors()
        let requests = (0 ..< 200).map { ReckerRequest(url: "http://d\($0).localhost:\(server.port)/digest") }
        let result = await client.batch(requests, concurrency: 20)
        XCTAssertEqual(result.stats.failed, 0)
        XCTAssertGreaterThanOrEqual(server.connections, 200, "a connection per domain")
        XCTAssertTrue(TestEnvironment.eventually(15) { server.openConnections == 0 }, "the upstream saw them closed: \(server.openConnections) open")
        XCTAssertTrue(TestEnvironment.eventually(15) { descriptors() <= baseline }, "descriptors: \(descriptors()), \(baseline) before")
        XCTAssertEqual(daemon.stop(), 0)
    }

    /// 10,000 stats requests in one write from one client: another client's GET is answered
    /// in normal time, and every stats request gets an answer (a document or a refusal).
    func testStatsFloodDelaysNoOne() throws {
        let nginx = try Nginx(files: Fixtures.files)
        let daemon = try DaemonProcess(config: Fixtures.config(nginx))
        let other = try ReckerConnection(socketPath: daemon.socketPath)
        let flood = try ReckerConnection(socketPath: daemon.socketPath)
        var tv = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(flood.socket.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        func get(_ stream: UInt32) throws -> Double {
            let started = Date()
            try other.send(.requestHead(stream: stream, RequestHead(url: nginx.url("/hello.txt")), endRequest: true))
            while true {
                switch try other.receive() {
                case .responseEnd: return Date().timeIntervalSince(started)
                case .error(_, let e): throw e
                default: continue
                }
            }
        }
        _ = try get(1)
        try flood.send((1 ... 10_000).map { Message.statsRequest(stream: UInt32($0)) })
        let waited = try get(3)
        // Before: 36.8 s. The 100 ms target is measured on the release build (26 ms there);
        // this debug build spends ~18 us in NIO per refused frame.
        print("a GET during a flood of 10,000 stats requests: \(Int(waited * 1_000_000)) us")
        XCTAssertLessThan(waited, 1.0)
        var documents = 0, refused = 0
        for _ in 0 ..< 10_000 {
            switch try flood.receive() {
            case .statsResponse: documents += 1
            case .error(_, let e) where e.code == .tooManyInFlight: refused += 1
            case let m: XCTFail("unexpected \(m)")
            }
        }
        XCTAssertEqual(documents + refused, 10_000)
        XCTAssertGreaterThanOrEqual(documents, 1)
        XCTAssertTrue(daemon.process.isRunning)
    }

    /// Four clients asking for the Prometheus document of 1,000 domains (about 1 MB each) as
    /// fast as they can read it: a bystander's GETs are answered in normal time, since
    /// documents are rendered off the loop and requests that arrive together share one.
    func testStatsFloodOverAThousandDomainsDelaysNoOne() async throws {
        let nginx = try Nginx(files: Fixtures.files)
        let daemon = try DaemonProcess(config: Fixtures.config(nginx))
        let port = TestEnvironment.freePort()
        let client = ReckerClient(socketPath: daemon.socketPath)
        defer { client.close() }
        let made = await client.batch((0 ..< 999).map { ReckerRequest(url: "http://127.0.\($0 / 250).\($0 % 250 + 1):\(port)/") },
                                      concurrency: 50)
        XCTAssertEqual(made.stats.failed, 999, "nobody listens")
        let document = try daemon.recker(["stats", "--prometheus"]).text
        XCTAssertGreaterThanOrEqual(document.split(separator: "\n").filter { $0.hasPrefix("reckerd_requests_total{") }.count, 999)

        let stop = Atomic<Bool>(false)
        let answered = Atomic<Int>(0)
        let path = daemon.socketPath
        for _ in 0 ..< 4 {
            Thread {
                guard let flood = try? ReckerConnection(socketPath: path) else { return }
                defer { flood.close() }
                let deadline = Date().addingTimeInterval(30)
                var stream: UInt32 = 1
                while !stop.load(ordering: .relaxed) && Date() < deadline {
                    do {
                        try flood.send((0 ..< 4).map { i in Message.statsRequest(stream: stream + 2 * UInt32(i), format: 1) })
                        stream += 8
                        var ended = 0
                        while ended < 4 {
                            switch try flood.receive() {
                            case .statsResponse(_, _, let more): if !more { ended += 1; answered.add(1, ordering: .relaxed) }
                            case .error: ended += 1
                            default: continue
                            }
                        }
                    } catch { return }
                }
            }.start()
        }
        defer { stop.store(true, ordering: .relaxed) }
        let other = try ReckerConnection(socketPath: daemon.socketPath)
        // The floods are under way (documents come back) before the bystander asks.
        XCTAssertTrue(TestEnvironment.eventually(20) { answered.load(ordering: .relaxed) >= 8 }, "the floods were answered")
        let before = answered.load(ordering: .relaxed)
        let slowest = try Self.slowestOf20GETs(on: other, url: nginx.url("/hello.txt"))
        stop.store(true, ordering: .relaxed)
        print("the slowest of 20 GETs during 4 floods of 1,000-domain Prometheus documents: \(Int(slowest * 1_000_000)) us, \(answered.load(ordering: .relaxed) - before) documents served meanwhile")
        XCTAssertLessThan(slowest, 0.15)
        XCTAssertTrue(daemon.process.isRunning)
    }

    /// Clients that flood cheap frames and read every answer (PINGs: each costs a PONG) take
    /// turns with the others: a bystander's GETs are not held behind their backlogs.
    func testPingFloodDelaysNoOne() throws {
        let nginx = try Nginx(files: Fixtures.files)
        let daemon = try DaemonProcess(config: Fixtures.config(nginx))
        let other = try ReckerConnection(socketPath: daemon.socketPath)
        let stop = Atomic<Bool>(false)
        let ping = try Message.ping([1, 2, 3, 4, 5, 6, 7, 8]).encoded
        let burst = Array((0 ..< 4096).map { _ in ping }.joined())
        let floods = try (0 ..< 4).map { _ in try ReckerConnection(socketPath: daemon.socketPath) }
        defer { for c in floods { c.close() } }
        for fd in floods.map(\.socket.fd) {
            Thread {
                var sink = [UInt8](repeating: 0, count: 1 << 20)
                let deadline = Date().addingTimeInterval(20)
                while !stop.load(ordering: .relaxed) && Date() < deadline {
                    var sent = 0
                    while sent < burst.count {
                        let n = burst.withUnsafeBytes { write(fd, $0.baseAddress! + sent, $0.count - sent) }
                        guard n > 0 else { return }
                        sent += n
                        while recv(fd, &sink, sink.count, Int32(MSG_DONTWAIT)) > 0 {}
                    }
                    while recv(fd, &sink, sink.count, Int32(MSG_DONTWAIT)) > 0 {}
                }
            }.start()
        }
        defer { stop.store(true, ordering: .relaxed) }
        usleep(300_000)
        let slowest = try Self.slowestOf20GETs(on: other, url: nginx.url("/hello.txt"))
        stop.store(true, ordering: .relaxed)
        print("the slowest of 20 GETs during 4 PING floods: \(Int(slowest * 1_000_000)) us")
        // Each flood handled to its end before anyone else: 260-290 ms here (debug build).
        XCTAssertLessThan(slowest, 0.15)
        XCTAssertTrue(daemon.process.isRunning)
    }

    /// Out of descriptors (64 of them, 100 clients at once): every client gets an answer or
    /// a clear error within 5 s, nothing spins, the daemon says why, and it recovers.
    func testOutOfDescriptorsEveryClientHearsAndNothingSpins() throws {
        let nginx = try Nginx(files: Fixtures.files)
        let daemon = try DaemonProcess(config: Fixtures.config(nginx), wrapper: ["/usr/bin/prlimit", "--nofile=64:64"])
        let outcomes = Mutex<[String: Int]>([:])
        let slowest = Mutex(0.0)
        let url = nginx.url("/hello.txt")
        let done = DispatchGroup()
        for _ in 0 ..< 100 {
            done.enter()
            Thread {
            defer { done.leave() }
            let started = Date()
            var outcome: String
            do {
                let c = try ReckerConnection(socketPath: daemon.socketPath)
                c.socket.setReceiveTimeout(milliseconds: 5000)
                try c.send(.requestHead(stream: 1, RequestHead(url: url), endRequest: true))
                outcome = "no end"
                loop: for _ in 0 ..< 10 {
                    switch try c.receive() {
                    case .responseEnd: outcome = "200"; break loop
                    case .error(_, let e): outcome = e.code.name; break loop
                    default: continue
                    }
                }
                // Held a moment, so the descriptors stay taken while the others arrive.
                usleep(1_000_000)
                c.close()
            } catch {
                outcome = (error as? ReckerError)?.code.name ?? "\(error)"
            }
            let took = Date().timeIntervalSince(started)
            outcomes.withLock { $0[outcome, default: 0] += 1 }
            slowest.withLock { $0 = max($0, took) }
            }.start()
        }
        XCTAssertEqual(done.wait(timeout: .now() + 20), .success)
        let seen = outcomes.withLock { $0 }
        print("100 clients against 64 descriptors: \(seen), slowest \(slowest.withLock { $0 }) s")
        XCTAssertEqual(seen.values.reduce(0, +), 100)
        XCTAssertEqual(Set(seen.keys).subtracting(["200", "LOCAL_RESOURCES", "DAEMON_UNAVAILABLE"]), [], "only answers and clear errors")
        XCTAssertGreaterThan(seen["200"] ?? 0, 0)
        XCTAssertLessThan(slowest.withLock { $0 }, 5.5)
        let before = try Self.heapAndWakeups(daemon).wakeups
        usleep(3_000_000)
        let woke = try Self.heapAndWakeups(daemon).wakeups - before
        XCTAssertLessThanOrEqual(woke, Self.idleWakeups, "idle after the storm: \(woke) wake-ups in 3 s")
        XCTAssertEqual(try daemon.recker(["-sS", url]).text, "hello from nginx\n", "recovered")

        // Clients take every descriptor; a request that needs a new upstream socket then
        // gets LOCAL_RESOURCES, sent nowhere, safe to retry.
        let fresh = try FaultServer()
        var held: [ReckerConnection] = []
        for _ in 0 ..< 80 {
            guard let c = try? ReckerConnection(socketPath: daemon.socketPath, handshakeTimeoutMs: 300) else { break }
            held.append(c)
        }
        XCTAssertLessThan(held.count, 64, "the daemon stopped accepting at its limit")
        if let c = held.first {
            try c.send(.requestHead(stream: 1, RequestHead(url: fresh.url("/delay/1")), endRequest: true))
            var got: ReckerError?
            loop: for _ in 0 ..< 10 {
                switch try c.receive() {
                case .error(_, let e): got = e; break loop
                case .responseEnd: break loop
                default: continue
                }
            }
            XCTAssertEqual(got?.code, .localResources, "\(String(describing: got))")
            XCTAssertEqual(got?.retrySafe, true)
            XCTAssertEqual(got?.mayHaveReachedUpstream, false)
            XCTAssertEqual(fresh.connections, 0, "nothing reached the upstream")
        }
        for c in held { c.close() }
        XCTAssertTrue(try TestEnvironment.eventually(5) { (try? daemon.recker(["-sS", fresh.url("/delay/1")]).text) == "ok" }, "recovered")
        daemon.stop()
        XCTAssertTrue(daemon.stderr.contains("cannot accept clients") || daemon.stderr.contains("LOCAL_RESOURCES"),
                      "the daemon said it ran out: \(daemon.stderr.suffix(2000))")
    }

    /// A stats document larger than a frame comes in several frames (MORE), and recker and
    /// the client library put it together.
    func testStatsLargerThanAFrameArriveWhole() async throws {
        let port = TestEnvironment.freePort()
        let daemon = try DaemonProcess(config: #"{ "limits": { "maxFrame": 65536, "maxHeaderBytes": 16384, "maxHeaders": 100 } }"#)
        let client = ReckerClient(socketPath: daemon.socketPath)
        defer { client.close() }
        _ = await client.batch((1 ... 150).map { ReckerRequest(url: "http://127.0.1.\($0):\(port)/") }, concurrency: 20)
        let viaLibrary = try await client.stats(format: 1)
        XCTAssertGreaterThan(viaLibrary.count, 65536, "a document over one frame")
        let viaCLI = try daemon.recker(["stats", "--prometheus"])
        XCTAssertEqual(viaCLI.status, 0, viaCLI.stderr)
        for doc in [String(decoding: viaLibrary, as: UTF8.self), viaCLI.text] {
            let series = doc.split(separator: "\n").filter { $0.hasPrefix("reckerd_requests_total{") }.count
            XCTAssertEqual(series, 150, "every domain's series, whole")
        }
    }

    /// One user cannot take every descriptor: past limits.maxClientsPerUser its further
    /// connections are refused with TOO_MANY_CLIENTS; another user still gets in.
    func testOneUserCannotTakeEveryConnection() throws {
        let server = try FaultServer()
        let daemon = try DaemonProcess(config: #"{ "limits": { "maxClientsPerUser": 5 } }"#)
        chmod(daemon.socketPath, 0o666)
        let held = try (0 ..< 5).map { _ in try ReckerConnection(socketPath: daemon.socketPath) }
        XCTAssertThrowsError(try ReckerConnection(socketPath: daemon.socketPath)) { e in
            XCTAssertEqual((e as? ReckerError)?.code, .tooManyClients, "\(e)")
        }
        // A client slow to say HELLO after the refusal: its write still goes through (the
        // daemon lingers), and it reads why instead of a broken pipe.
        for _ in 0 ..< 3 {
            let late = try UnixSocket(connectingTo: daemon.socketPath)
            usleep(200_000)
            XCTAssertNoThrow(try late.write(try Message.hello(.init()).encoded), "the refusal came before the HELLO")
            var reader = FrameReader()
            var buffer: [UInt8] = []
            var tv = timeval(tv_sec: 3, tv_usec: 0)
            setsockopt(late.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            while try late.read(into: &buffer) > 0 {
                reader.append(buffer)
                buffer.removeAll()
            }
            guard let frame = try reader.next(), case .error(0, let e) = try Message(frame: frame) else {
                XCTFail("no ERROR frame before the close")
                continue
            }
            XCTAssertEqual(e.code, .tooManyClients)
            late.close()
        }
        let other = try TestEnvironment.run("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups",
                                                              TestEnvironment.binDir.appendingPathComponent("recker").path,
                                                              "--socket", daemon.socketPath, "-sS", server.url("/delay/1")])
        XCTAssertEqual(other.text, "ok", other.stderr)
        held[0].close()
        XCTAssertTrue(TestEnvironment.eventually(3) { (try? ReckerConnection(socketPath: daemon.socketPath)) != nil }, "a slot frees when one leaves")
        for c in held { c.close() }
    }

    /// A client that reads none of its response, with spilling off, holds its upstream
    /// connection for `limits.bodyTimeout` at most: then its request fails and the only
    /// connection of the domain serves the one waiting behind it.
    func testAClientThatReadsNothingLetsGoOfItsConnection() throws {
        let nginx = try Nginx(files: Fixtures.files)
        let daemon = try DaemonProcess(config: Fixtures.config(nginx, extra: #""agent": { "connections": 1 }, "limits": { "spillMax": 0, "bodyTimeout": 1000 }"#))
        let stuck = try ReckerConnection(socketPath: daemon.socketPath)
        defer { stuck.close() }
        try stuck.send(.requestHead(stream: 1, RequestHead(url: nginx.url("/size/8388608")), endRequest: true))
        usleep(300_000)
        let started = Date()
        let bystander = try daemon.recker(["-sS", "-m", "15", nginx.url("/hello.txt")])
        let waited = Date().timeIntervalSince(started)
        XCTAssertEqual(bystander.text, "hello from nginx\n", bystander.stderr)
        XCTAssertLessThan(waited, 8, "served once the reader that reads nothing was let go (bodyTimeout 1 s)")
        XCTAssertEqual(try daemon.stats()["timeouts"] as? Int, 1)
    }

    /// A client that sends PINGs and stats requests without ever reading the answers is
    /// stopped by backpressure: the daemon stops reading it, its memory stays bounded, and
    /// other clients are served meanwhile.
    func testAClientThatNeverReadsCannotGrowTheDaemon() throws {
        let server = try FaultServer()
        let daemon = try DaemonProcess()
        XCTAssertEqual(try daemon.recker(["-sS", server.url("/delay/1")]).text, "ok")
        let before = Self.rss(daemon.pid)
        let flooder = try UnixSocket(connectingTo: daemon.socketPath)
        var tv = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(flooder.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let ping = try Message.ping([1, 2, 3, 4, 5, 6, 7, 8]).encoded
        try flooder.write(try Message.hello(.init()).encoded)
        var sent = 0
        var stream: UInt32 = 1
        var refused = false
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            // 4000 PINGs and a stats request a burst; a write that waits 2 s ends the loop.
            var burst = Array(repeating: ping, count: 4000).flatMap { $0 }
            burst += try Message.statsRequest(stream: stream, format: 1).encoded
            stream += 1
            do { try flooder.write(burst) } catch {
                refused = error.detail == UInt32(EAGAIN) || error.detail == UInt32(EWOULDBLOCK)
                break
            }
            sent += burst.count
        }
        let grown = Self.rss(daemon.pid) - before
        print("a client that never reads: \(sent / 1024) KiB sent before the daemon stopped reading it; RSS +\(grown / 1024) KiB")
        XCTAssertTrue(refused, "the daemon stopped reading the flooder (its writes blocked), and did not close it")
        XCTAssertLessThan(grown, 32 << 20, "RSS grew by \(grown) bytes")
        XCTAssertEqual(try daemon.recker(["-sS", server.url("/delay/1")]).text, "ok", "others are served")
        flooder.close()
    }
}
