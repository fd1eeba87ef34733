import ReckerPool
import ReckerProtocol
import ReckerSession
import XCTest

/// The pool's decisions, with no network and no clock: time is a number passed in.
final class PoolStateMachineTests: XCTestCase {
    let a = try! RequestValidator.parse(url: "http://a.test/")
    let b = try! RequestValidator.parse(url: "http://b.test/")
    let secure = try! RequestValidator.parse(url: "https://s.test/")
    let ms: UInt64 = 1_000_000

    func machine(_ change: (inout PoolOptions) -> Void = { _ in }) -> PoolStateMachine {
        var o = PoolOptions()
        o.agent.connections = 2
        o.agent.maxQueue = 3
        o.agent.queueTimeoutMs = 100
        o.agent.keepAliveTimeoutMs = 500
        o.agent.maxLifetimeS = 10
        change(&o)
        return PoolStateMachine(options: o)
    }

    func testLimitQueueAndFIFO() {
        var m = machine()
        XCTAssertEqual(m.requestArrived(1, target: a, now: 0), [.start(1)])
        XCTAssertEqual(m.requestArrived(2, target: a, now: 0), [.start(2)])
        XCTAssertEqual(m.requestArrived(3, target: a, now: 1), [])
        XCTAssertEqual(m.requestArrived(4, target: a, now: 2), [])
        XCTAssertEqual(m.requestArrived(5, target: a, now: 3), [])
        XCTAssertEqual(m.requestArrived(6, target: a, now: 4), [.fail(6, .queueFull)])
        XCTAssertEqual(m.queued(domain: a.domain), 3)
        XCTAssertEqual(m.requestEnded(2), [.start(3)], "first in, first out")
        XCTAssertEqual(m.requestEnded(4), [], "a queued request that ends leaves the queue")
        XCTAssertEqual(m.requestEnded(1), [.start(5)])
        XCTAssertEqual(m.queued(domain: a.domain), 0)
    }

    func testDomainsDoNotShareLimitsUnlessPoolingIsGlobal() {
        var m = machine()
        _ = m.requestArrived(1, target: a, now: 0)
        _ = m.requestArrived(2, target: a, now: 0)
        XCTAssertEqual(m.requestArrived(3, target: b, now: 0), [.start(3)], "b has its own pool")

        var shared = machine { $0.perDomainPooling = false }
        _ = shared.requestArrived(1, target: a, now: 0)
        _ = shared.requestArrived(2, target: a, now: 0)
        XCTAssertEqual(shared.requestArrived(3, target: b, now: 0), [], "one pool for all: b waits behind a")
        XCTAssertEqual(shared.requestEnded(1), [.start(3)])
    }

    func testPerDomainOverride() {
        var m = machine { o in
            var big = o.agent
            big.connections = 3
            o.domains["b.test"] = big
        }
        for id in UInt64(1) ... 3 { XCTAssertEqual(m.requestArrived(id, target: b, now: 0), [.start(id)]) }
        XCTAssertEqual(m.requestArrived(4, target: b, now: 0), [])
    }

    func testQueueTimeout() {
        var m = machine()
        _ = m.requestArrived(1, target: a, now: 0)
        _ = m.requestArrived(2, target: a, now: 0)
        _ = m.requestArrived(3, target: a, now: 10 * ms)
        XCTAssertEqual(m.tick(now: 100 * ms).next, 110 * ms)
        XCTAssertEqual(m.tick(now: 109 * ms).actions, [])
        XCTAssertEqual(m.tick(now: 110 * ms).actions, [.fail(3, .queueTimeout)])
        XCTAssertEqual(m.requestEnded(1), [], "nothing left to start")
    }

    func testMultiplexingRaisesTheRoom() {
        var m = machine { $0.http2MaxConcurrentStreams = 4 }
        for id in UInt64(1) ... 5 { _ = m.requestArrived(id, target: a, now: 0) }
        m.connectionOpened(1, target: a, now: 0)
        m.connectionOpened(2, target: a, now: 0)
        XCTAssertEqual(m.connectionInUse(1), [])
        XCTAssertEqual(m.connectionInUse(2), [], "HTTP/1.1 until the upstream says otherwise: room for 2")
        XCTAssertEqual(m.learnedProtocol(domain: a.domain, multiplexed: true), [.start(3), .start(4), .start(5)])
        for id in UInt64(6) ... 8 { XCTAssertEqual(m.requestArrived(id, target: a, now: 0), [.start(id)]) }
        XCTAssertEqual(m.requestArrived(9, target: a, now: 0), [], "2 connections x 4 streams = 8")
    }

    func testHTTPSIsTakenToMultiplexUntilItAnswersHTTP1() {
        var m = machine { $0.http2MaxConcurrentStreams = 4 }
        XCTAssertEqual(m.requestArrived(1, target: secure, now: 0), [.start(1)])
        for id in UInt64(2) ... 9 {
            XCTAssertEqual(m.requestArrived(id, target: secure, now: 0), [], "the rest wait for the first connection")
        }
        m.connectionOpened(1, target: secure, now: 0)
        XCTAssertEqual(m.connectionInUse(1), [.start(2), .start(3), .start(4), .start(5)],
                       "3 more streams on it, and one request to open the second connection")
        m.connectionOpened(2, target: secure, now: 0)
        XCTAssertEqual(m.connectionInUse(2), [.start(6), .start(7), .start(8)], "2 connections x 4 streams = 8")
        XCTAssertEqual(m.learnedProtocol(domain: secure.domain, multiplexed: false), [])
        for id in UInt64(1) ... 6 { XCTAssertEqual(m.requestEnded(id), [], "HTTP/1.1: room for 2 only") }
        XCTAssertEqual(m.requestEnded(7), [.start(9)])
        var off = machine { $0.http2Enabled = false }
        _ = off.requestArrived(1, target: secure, now: 0)
        _ = off.requestArrived(2, target: secure, now: 0)
        XCTAssertEqual(off.requestArrived(3, target: secure, now: 0), [], "h2 off: connections alone")
    }

    /// libcurl opens a connection for every request that finds the open ones full, even
    /// while one it is opening would take it: the pool lets one connection open at a time.
    func testAnHTTP2BurstOpensOnlyTheConnectionsItNeeds() {
        var m = machine {
            $0.agent.connections = 64
            $0.agent.maxQueue = 1000
            $0.http2MaxConcurrentStreams = 100
        }
        var started: [TransferID] = []
        func take(_ actions: [PoolStateMachine.Action]) {
            for case .start(let id) in actions { started.append(id) }
        }
        for id in TransferID(1) ... 256 { take(m.requestArrived(id, target: secure, now: 0)) }
        XCTAssertEqual(started, [1])
        var opened: [ConnectionID] = []
        // As libcurl does: each started request takes a free stream on a set-up connection,
        // or opens one when there is none.
        var streams: [ConnectionID: Int] = [:]
        var placed = 0
        while placed < started.count, opened.count <= 64 {
            let id = started[placed]
            placed += 1
            if let free = opened.first(where: { streams[$0, default: 0] < 100 }) {
                streams[free, default: 0] += 1
                take(m.connectionInUse(free))
            } else {
                let c = ConnectionID(opened.count + 1)
                opened.append(c)
                m.connectionOpened(c, target: secure, now: 0)
                streams[c] = 1
                take(m.connectionInUse(c))
            }
            _ = id
        }
        XCTAssertEqual(started.count, 256, "every request started")
        XCTAssertEqual(opened.count, 3, "256 requests need 3 connections of 100 streams")
        XCTAssertEqual(m.queued(domain: secure.domain), 0)
    }

    func testRequestsWaitingForAConnectionThatTimedOutFailWithIt() {
        var m = machine { $0.http2MaxConcurrentStreams = 4 }
        XCTAssertEqual(m.requestArrived(1, target: secure, now: 0), [.start(1)])
        for id in TransferID(2) ... 4 { XCTAssertEqual(m.requestArrived(id, target: secure, now: 0), []) }
        m.connectionOpened(1, target: secure, now: 0)
        XCTAssertEqual(m.connectionClosed(1), [])
        XCTAssertEqual(m.connectTimedOut(1), [2, 3, 4], "they waited for that connection")
        XCTAssertEqual(m.requestEnded(1), [])
        XCTAssertEqual(m.queued(domain: secure.domain), 0)
        XCTAssertEqual(m.requestArrived(5, target: secure, now: 0), [.start(5)], "a later request tries again")

        var h1 = machine()
        XCTAssertEqual(h1.requestArrived(1, target: a, now: 0), [.start(1)])
        XCTAssertEqual(h1.requestArrived(2, target: a, now: 0), [.start(2)])
        XCTAssertEqual(h1.requestArrived(3, target: a, now: 0), [])
        XCTAssertEqual(h1.connectTimedOut(1), [3], "HTTP/1 too: the waiting one would time out as well")

        var served = machine()
        _ = served.requestArrived(1, target: a, now: 0)
        served.connectionOpened(1, target: a, now: 0)
        _ = served.connectionInUse(1)
        _ = served.requestArrived(2, target: a, now: 0)
        _ = served.requestArrived(3, target: a, now: 0)
        XCTAssertEqual(served.connectTimedOut(2), [], "a pool with a connection set up keeps its queue")
    }

    func testAConnectionThatFailsToOpenLetsAnotherOpen() {
        var m = machine { $0.http2MaxConcurrentStreams = 4 }
        XCTAssertEqual(m.requestArrived(1, target: secure, now: 0), [.start(1)])
        XCTAssertEqual(m.requestArrived(2, target: secure, now: 0), [])
        m.connectionOpened(1, target: secure, now: 0)
        XCTAssertEqual(m.connectionClosed(1), [], "its request still counts until it ends")
        XCTAssertEqual(m.requestEnded(1), [.start(2)], "the next request may open a connection")
    }

    func testIdleConnectionsExpireAndBusyOnesDoNot() {
        var m = machine()
        m.connectionOpened(1, target: a, now: 0)
        m.connectionOpened(2, target: a, now: 0)
        _ = m.connectionInUse(1)
        _ = m.connectionInUse(2)
        _ = m.connectionReleased(1, now: 100 * ms)
        XCTAssertEqual(m.connectionStates()[a.domain]?.idle, 1)
        XCTAssertEqual(m.connectionStates()[a.domain]?.busy, 1)
        XCTAssertEqual(m.tick(now: 200 * ms).next, 600 * ms)
        XCTAssertEqual(m.tick(now: 599 * ms).actions, [])
        XCTAssertEqual(m.tick(now: 600 * ms).actions, [.close(1)], "idle 500 ms: closed; the busy one stays")
        _ = m.connectionClosed(1)
        _ = m.connectionInUse(2)
        _ = m.connectionReleased(2, now: 700 * ms)
        _ = m.connectionReleased(2, now: 800 * ms)
        XCTAssertEqual(m.tick(now: 1299 * ms).actions, [], "released at 800 ms")
        XCTAssertEqual(m.tick(now: 1300 * ms).actions, [.close(2)])
    }

    func testLifetimeRetiresIdleConnections() {
        var m = machine { $0.agent.keepAliveTimeoutMs = 1_000_000 }
        m.connectionOpened(1, target: a, now: 0)
        _ = m.connectionInUse(1)
        XCTAssertEqual(m.tick(now: 11_000 * ms).actions, [], "a busy connection is never cut (libcurl retires it after its request)")
        _ = m.connectionReleased(1, now: 11_000 * ms)
        XCTAssertEqual(m.tick(now: 11_000 * ms).actions, [.close(1)])
    }

    func testWarmTargetsAreOpenedAndKept() {
        let target = WarmTarget(url: "http://a.test/health", minIdle: 2)
        var m = machine { $0.warm = [target] }
        XCTAssertEqual(m.tick(now: 0).actions, [.warm(target), .warm(target)])
        XCTAssertEqual(m.tick(now: 1).actions, [], "warm-ups under way count")
        m.connectionOpened(1, target: a, now: 1)
        _ = m.connectionInUse(1)
        m.warmUpEnded(domain: a.domain, succeeded: true, now: 2)
        _ = m.connectionReleased(1, now: 2)
        m.connectionOpened(2, target: a, now: 1)
        _ = m.connectionInUse(2)
        m.warmUpEnded(domain: a.domain, succeeded: true, now: 2)
        _ = m.connectionReleased(2, now: 2)
        let idle = m.tick(now: 5_000 * ms)
        XCTAssertEqual(idle.actions, [], "warm connections outlive keepAliveTimeout")
        XCTAssertEqual(idle.next, 1 + 10_000 * ms, "and set no idle deadline: the next is their lifetime")
        _ = m.connectionClosed(1)
        XCTAssertEqual(m.tick(now: 5_001 * ms).actions, [.warm(target)], "a lost warm connection is replaced")
    }

    func testFailedWarmUpsBackOff() {
        let target = WarmTarget(url: "http://a.test/health", minIdle: 1)
        var m = machine { $0.warm = [target] }
        XCTAssertEqual(m.tick(now: 0).actions, [.warm(target)])
        m.warmUpEnded(domain: a.domain, succeeded: false, now: 10 * ms)
        XCTAssertEqual(m.tick(now: 500 * ms).actions, [], "no retry before 1 s")
        XCTAssertEqual(m.tick(now: 1010 * ms).actions, [.warm(target)])
        m.warmUpEnded(domain: a.domain, succeeded: false, now: 1010 * ms)
        XCTAssertEqual(m.tick(now: 2500 * ms).actions, [], "then 2 s")
        XCTAssertEqual(m.tick(now: 3010 * ms).actions, [.warm(target)])
    }

    /// Whatever happened before, a tick's next deadline lies after its `now`, and nothing
    /// falls due before it: a loop that sleeps until then neither spins nor misses work.
    func testNextDeadlineIsAlwaysAheadAndNothingFallsDueBeforeIt() {
        let target = WarmTarget(url: "http://a.test/health", minIdle: 2)
        var rng = SystemRandomNumberGenerator()
        for round in 0 ..< 200 {
            var m = machine {
                $0.warm = round % 2 == 0 ? [target] : []
                $0.agent.keepAliveTimeoutMs = 50
                $0.agent.maxLifetimeS = 1
                $0.agent.queueTimeoutMs = 70
            }
            var now: UInt64 = 0
            var nextConnection: ConnectionID = 1
            var nextRequest: TransferID = 1
            var open: [ConnectionID] = []
            for _ in 0 ..< 60 {
                now += UInt64.random(in: 0 ... 40, using: &rng) * ms
                switch Int.random(in: 0 ..< 6, using: &rng) {
                case 0:
                    _ = m.requestArrived(nextRequest, target: a, now: now)
                    nextRequest += 1
                case 1 where nextRequest > 1:
                    _ = m.requestEnded(TransferID.random(in: 1 ..< nextRequest, using: &rng))
                case 2:
                    m.connectionOpened(nextConnection, target: a, now: now)
                    open.append(nextConnection)
                    nextConnection += 1
                case 3 where !open.isEmpty:
                    _ = m.connectionInUse(open.randomElement(using: &rng)!)
                case 4 where !open.isEmpty:
                    _ = m.connectionReleased(open.randomElement(using: &rng)!, now: now)
                case 5 where !open.isEmpty:
                    let id = open.remove(at: Int.random(in: 0 ..< open.count, using: &rng))
                    _ = m.connectionClosed(id)
                default:
                    m.warmUpEnded(domain: a.domain, succeeded: Bool.random(using: &rng), now: now)
                }
                let tick = m.tick(now: now)
                for case .close(let id) in tick.actions {
                    _ = m.connectionClosed(id)
                    open.removeAll { $0 == id }
                }
                guard let next = tick.next else { continue }
                XCTAssertGreaterThan(next, now, "round \(round): a deadline not in the future spins the engine")
                var probe = m
                XCTAssertEqual(probe.tick(now: next - 1).actions, [], "round \(round): work fell due before the deadline")
            }
        }
    }

    func testIdlePoolsAreForgottenAndBusyOnesKept() {
        var m = machine()
        _ = m.requestArrived(1, target: a, now: 0)
        _ = m.requestArrived(2, target: b, now: 0)
        _ = m.requestEnded(1)
        m.connectionOpened(1, target: b, now: 0)
        XCTAssertEqual(m.activeDomains(), [b.domain])
        m.forgetPools(unusedSince: 10 * ms, except: m.activeDomains())
        XCTAssertEqual(m.poolCount, 1, "b has a request running and a connection")
        _ = m.requestEnded(2)
        m.forgetPools(unusedSince: 10 * ms, except: m.activeDomains())
        XCTAssertEqual(m.poolCount, 1, "b still has a connection")
        _ = m.connectionClosed(1)
        m.forgetPools(unusedSince: 0, except: m.activeDomains())
        XCTAssertEqual(m.poolCount, 1, "used at the cutoff itself: kept")
        m.forgetPools(unusedSince: 10 * ms, except: m.activeDomains())
        XCTAssertEqual(m.poolCount, 0)
        XCTAssertEqual(m.requestArrived(3, target: a, now: 20 * ms), [.start(3)], "a forgotten domain starts afresh")
    }

    /// One client with many requests waiting does not hold up another's single request:
    /// the client with the fewest running goes first, FIFO within a client.
    func testWaitingClientsTakeTurns() {
        var m = machine { $0.agent.maxQueue = 100 }
        for id in TransferID(1) ... 10 { _ = m.requestArrived(id, target: a, client: 1, now: 0) }
        XCTAssertEqual(m.requestArrived(11, target: a, client: 2, now: 1), [])
        XCTAssertEqual(m.requestArrived(12, target: a, client: 3, now: 2), [])
        XCTAssertEqual(m.requestEnded(1), [.start(11)], "client 2 runs nothing: its request goes first")
        XCTAssertEqual(m.requestEnded(2), [.start(3)], "clients 1 and 3 run nothing: in turn, client 1's oldest")
        XCTAssertEqual(m.requestEnded(11), [.start(12)], "client 3 runs nothing")
        XCTAssertEqual(m.requestArrived(13, target: a, client: 2, now: 3), [])
        XCTAssertEqual(m.requestEnded(12), [.start(13)], "client 2 runs nothing again")
        XCTAssertEqual(m.requestEnded(3), [.start(4)])
        XCTAssertEqual(m.queued(domain: a.domain), 6)
    }

    /// Users take turns first, then each user's connections: one user's many connections
    /// get no more turns than another user's one, and within a user one connection's queue
    /// does not hold back its other connection.
    func testUsersTakeTurnsAndWithinThemTheirConnections() {
        var m = machine {
            $0.agent.maxQueue = 100
            $0.agent.connections = 1
        }
        XCTAssertEqual(m.requestArrived(1, target: a, client: 1, user: 100, now: 0), [.start(1)])
        for (id, client) in [(TransferID(2), ClientID(2)), (3, 3), (4, 4)] {
            XCTAssertEqual(m.requestArrived(id, target: a, client: client, user: 100, now: 1), [])
        }
        XCTAssertEqual(m.requestArrived(5, target: a, client: 5, user: 200, now: 2), [])
        XCTAssertEqual(m.requestEnded(1), [.start(2)], "user 100 queued first")
        XCTAssertEqual(m.requestEnded(2), [.start(5)], "then user 200, not user 100's other connections")
        XCTAssertEqual(m.requestEnded(5), [.start(3)])
        XCTAssertEqual(m.requestEnded(3), [.start(4)])

        for id in TransferID(10) ... 12 { _ = m.requestArrived(id, target: a, client: 7, user: 300, now: 3) }
        XCTAssertEqual(m.requestArrived(13, target: a, client: 8, user: 300, now: 4), [])
        XCTAssertEqual(m.requestEnded(4), [.start(10)])
        XCTAssertEqual(m.requestEnded(10), [.start(13)], "the same user's other connection, not behind the first's queue")
        XCTAssertEqual(m.requestEnded(13), [.start(11)])
    }

    /// A warm target asking for more connections than its domain may have gets the limit,
    /// not an endless open-and-close.
    func testWarmUpNeverExceedsTheDomainsConnections() {
        let target = WarmTarget(url: "http://a.test/health", minIdle: 5)
        var m = machine { $0.warm = [target] }
        XCTAssertEqual(m.tick(now: 0).actions, [.warm(target), .warm(target)], "connections is 2")
        XCTAssertEqual(m.tick(now: 1).actions, [])
    }
}
