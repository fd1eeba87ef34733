import ReckerProtocol
import ReckerSession

/// Identifies one upstream connection (reckerd's own ids, from 1).
package typealias ConnectionID = UInt64

/// The pool's policy — limits, the wait queue, idle expiry, lifetime, warm-up — as a pure
/// state machine: events go in, actions come out, and the engine thread carries them out.
/// No sockets, no clocks: time is passed in (nanoseconds), so it is tested on its own.
package struct PoolStateMachine {
    /// What the engine must do.
    package enum Action: Equatable, Sendable {
        /// Hand this request to libcurl now.
        case start(TransferID)
        /// Answer this waiting request with an error (QUEUE_FULL, QUEUE_TIMEOUT).
        case fail(TransferID, ReckerError.Code)
        /// Close this idle connection (keep-alive timeout or lifetime reached).
        case close(ConnectionID)
        /// Open one more warm connection by fetching this warm target's URL.
        case warm(WarmTarget)
    }

    struct Pool {
        var limits: AgentOptions
        /// The host of the domain the pool serves (its first domain for the shared pool).
        var host: String
        var running: Set<TransferID> = []
        /// Requests running per user and per client connection, so the user (and within it
        /// the connection) with the fewest is served first.
        var runningPerUser: [ClientID: Int] = [:]
        var runningPerClient: [ClientID: Int] = [:]
        /// Requests waiting for room, served in turns by user, then by connection.
        var queue = FairQueue()
        /// An upstream of this pool multiplexes (HTTP/2): `connections` × streams may run.
        var multiplexed = false
        /// When a request last arrived.
        var lastUsed: UInt64 = 0

        mutating func run(_ id: TransferID, client: ClientID, user: ClientID) {
            running.insert(id)
            runningPerClient[client, default: 0] += 1
            runningPerUser[user, default: 0] += 1
        }

        mutating func ran(client: ClientID, user: ClientID) {
            runningPerClient[client]! -= 1
            if runningPerClient[client] == 0 { runningPerClient[client] = nil }
            runningPerUser[user]! -= 1
            if runningPerUser[user] == 0 { runningPerUser[user] = nil }
        }
    }

    struct Connection {
        var pool: String
        var domain: String
        var limits: AgentOptions
        var openedAt: UInt64
        var active = 0
        var idleSince: UInt64
        var served = 0
        /// Its settings changed on reload: closed as soon as it is idle.
        var retiring = false
    }

    package private(set) var options: PoolOptions
    private var pools: [String: Pool] = [:]
    /// The pool and client of each request, running or waiting.
    private var transferPool: [TransferID: (key: String, client: ClientID, user: ClientID)] = [:]
    private var connections: [ConnectionID: Connection] = [:]
    /// Per pool key; an entry goes when both counts are 0.
    private var connectionCounts: [String: ConnectionCounts] = [:]
    /// Pools whose queue may hold requests (each queued since `tick` last found it empty).
    private var queuedPools: Set<String> = []
    /// Warm targets by domain, and how many warm-up requests are under way for each.
    private var warmByDomain: [String: WarmTarget] = [:]
    private var warming: [String: Int] = [:]
    /// After a failed warm-up, no new one for the domain before this time; the pause
    /// doubles with each failure (1 s up to 30 s), so a dead upstream is not hammered.
    private var warmRetryAt: [String: UInt64] = [:]
    private var warmBackoff: [String: UInt64] = [:]

    package init(options: PoolOptions) {
        self.options = options
        for w in options.warm {
            if let t = try? RequestValidator.parse(url: w.url) { warmByDomain[t.domain] = w }
        }
    }

    private func limits(_ target: RequestValidator.Target) -> AgentOptions {
        options.agent(forDomain: target.domain, host: target.host)
    }

    /// How many of the pool's requests may run now. Over HTTP/1 one per connection. Over
    /// HTTP/2, a full stream set on every connection that is set up, one request on each
    /// connection being opened (the one that opens it), and one more request — to open a
    /// new connection — only while none is being opened: libcurl 7.88 does not wait for a
    /// connection it is still opening once the host is known to multiplex, so every request
    /// past the open streams would otherwise open a connection of its own (a burst of 256
    /// opened 64 where 3 do; MultiplexTests holds 8.14 to the 3).
    private func capacity(_ p: Pool, key: String) -> Int {
        guard p.multiplexed && options.http2Enabled else { return p.limits.connections }
        let c = connectionCounts[key] ?? ConnectionCounts()
        let mayOpen = c.opening == 0 && c.ready < p.limits.connections ? 1 : 0
        return options.http2MaxConcurrentStreams * c.ready + c.opening + mayOpen
    }

    /// The most requests the pool may ever run at once.
    private func fullCapacity(_ p: Pool) -> Int {
        p.limits.connections * (p.multiplexed && options.http2Enabled ? options.http2MaxConcurrentStreams : 1)
    }

    /// A pool's connections being opened (no request has started on them yet) and set up.
    struct ConnectionCounts {
        var opening = 0
        var ready = 0
    }

    // MARK: - requests

    /// A request wants a connection: start it, queue it, or refuse it.
    /// `user` is whose turn it is among users (the client connection's own when nil).
    package mutating func requestArrived(_ id: TransferID, target: RequestValidator.Target, client: ClientID = 0,
                                         user: ClientID? = nil, now: UInt64) -> [Action] {
        let user = user ?? client
        let key = options.poolKey(forDomain: target.domain)
        // An https domain is taken to multiplex until it answers otherwise: its requests then
        // wait on one connection being opened (PIPEWAIT) instead of trickling in at
        // `connections` per round trip. libcurl's per-host limit still bounds connections.
        // Taken out of the dictionary while it changes, so its queue and sets are not copied
        // (copy-on-write) on every request.
        var pool = pools.removeValue(forKey: key) ?? Pool(limits: options.perDomainPooling ? limits(target) : options.agent, host: target.host,
                                      multiplexed: target.https && options.http2Enabled)
        transferPool[id] = (key, client, user)
        pool.lastUsed = now
        defer { pools[key] = pool }
        if pool.running.count < capacity(pool, key: key) && pool.queue.isEmpty {
            pool.run(id, client: client, user: user)
            return [.start(id)]
        }
        // Requests held only while HTTP/2 connections are set up do not count against
        // `maxQueue`: it bounds those waiting for room the pool does not have.
        let waitingForRoom = pool.running.count + pool.queue.count - fullCapacity(pool)
        guard waitingForRoom < pool.limits.maxQueue else {
            transferPool[id] = nil
            return [.fail(id, .queueFull)]
        }
        pool.queue.append(FairQueue.Waiting(id: id, client: client, user: user, since: now))
        queuedPools.insert(key)
        return []
    }

    /// A request ended (answered, failed or cancelled), running or still waiting.
    package mutating func requestEnded(_ id: TransferID) -> [Action] {
        guard let (key, client, user) = transferPool.removeValue(forKey: id), var pool = pools.removeValue(forKey: key) else { return [] }
        if pool.running.remove(id) != nil {
            pool.ran(client: client, user: user)
        } else {
            _ = pool.queue.remove(id, client: client)
        }
        let actions = admit(&pool, key: key)
        pools[key] = pool
        return actions
    }

    /// The request `id` could not open its connection in time (connect timeout, or a name
    /// that did not resolve). With no connection of its pool set up, the requests waiting in
    /// the pool would each wait as long for the same answer, in turn: they are taken out of
    /// the queue and returned, to fail with the same error now. Requests that arrive later
    /// try again. (A refused or reset connect is quick to try again: the next waiting
    /// request does, as it would on its own.)
    package mutating func connectTimedOut(_ id: TransferID) -> [TransferID] {
        guard let (key, _, _) = transferPool[id], var pool = pools.removeValue(forKey: key) else { return [] }
        defer { pools[key] = pool }
        guard (connectionCounts[key]?.ready ?? 0) == 0 else { return [] }
        let waiting = pool.queue.remove { _ in true }
        for w in waiting { transferPool[w.id] = nil }
        return waiting.map(\.id).sorted()
    }

    /// The upstream answered in a version that multiplexes (or not); the pool's room grows
    /// (or shrinks) to match.
    package mutating func learnedProtocol(domain: String, multiplexed: Bool) -> [Action] {
        let key = options.poolKey(forDomain: domain)
        guard pools[key].map({ $0.multiplexed != multiplexed }) == true, var pool = pools.removeValue(forKey: key) else { return [] }
        pool.multiplexed = multiplexed
        let actions = admit(&pool, key: key)
        pools[key] = pool
        return actions
    }

    private func admit(_ pool: inout Pool, key: String) -> [Action] {
        var actions: [Action] = []
        let room = capacity(pool, key: key)
        while pool.running.count < room, let next = pool.queue.popNext(runningByUser: pool.runningPerUser,
                                                                                     runningByClient: pool.runningPerClient) {
            pool.run(next.id, client: next.client, user: next.user)
            actions.append(.start(next.id))
        }
        return actions
    }

    // MARK: - connections

    package mutating func connectionOpened(_ id: ConnectionID, target: RequestValidator.Target, now: UInt64) {
        let key = options.poolKey(forDomain: target.domain)
        connections[id] = Connection(pool: key, domain: target.domain, limits: limits(target), openedAt: now, idleSince: now)
        connectionCounts[key, default: ConnectionCounts()].opening += 1
    }

    /// A request starts on this connection (new, reused, or another HTTP/2 stream). The
    /// first one shows the connection is set up: its pool may have room for more.
    package mutating func connectionInUse(_ id: ConnectionID) -> [Action] {
        guard var c = connections[id] else { return [] }
        c.active += 1
        c.served += 1
        connections[id] = c
        guard c.served == 1 else { return [] }
        connectionCounts[c.pool, default: ConnectionCounts()].opening -= 1
        connectionCounts[c.pool, default: ConnectionCounts()].ready += 1
        return admit(pool: c.pool)
    }

    /// Starts what the pool at `key` now has room for.
    private mutating func admit(pool key: String) -> [Action] {
        guard var pool = pools.removeValue(forKey: key) else { return [] }
        let actions = admit(&pool, key: key)
        pools[key] = pool
        return actions
    }

    /// A request no longer uses this connection. A retiring connection that falls idle is
    /// closed at once, before any other request can pick it up.
    package mutating func connectionReleased(_ id: ConnectionID, now: UInt64) -> [Action] {
        guard var c = connections[id] else { return [] }
        c.active = max(0, c.active - 1)
        if c.active == 0 { c.idleSince = now }
        connections[id] = c
        return c.active == 0 && c.retiring ? [.close(id)] : []
    }

    /// The connection is gone (closed by libcurl, the upstream, or a `.close` action). A
    /// warm domain that falls below its `minIdle` gets a new one on the next `tick`.
    package mutating func connectionClosed(_ id: ConnectionID) -> [Action] {
        guard let c = connections.removeValue(forKey: id) else { return [] }
        var counts = connectionCounts[c.pool] ?? ConnectionCounts()
        if c.served > 0 { counts.ready -= 1 } else { counts.opening -= 1 }
        connectionCounts[c.pool] = counts.opening <= 0 && counts.ready <= 0 ? nil : counts
        return admit(pool: c.pool)
    }

    /// A warm-up request for `domain` ended.
    package mutating func warmUpEnded(domain: String, succeeded: Bool, now: UInt64) {
        warming[domain] = max(0, (warming[domain] ?? 0) - 1)
        if succeeded {
            warmBackoff[domain] = nil
            warmRetryAt[domain] = nil
        } else {
            let pause = min(30_000_000_000, (warmBackoff[domain] ?? 500_000_000) * 2)
            warmBackoff[domain] = pause
            warmRetryAt[domain] = now + pause
        }
    }

    // MARK: - reload

    /// New settings (a reload). Domains whose settings are unchanged keep their connections;
    /// connections of changed domains close when idle (now, or when their request ends),
    /// and waiting requests get the new limits. `perDomainPooling` must not change.
    package mutating func reconfigure(_ new: PoolOptions) -> [Action] {
        let old = options
        options = new
        var globalChanged = old
        globalChanged.agent = new.agent
        globalChanged.domains = new.domains
        globalChanged.warm = new.warm
        let everything = globalChanged != new
        warmByDomain = [:]
        for w in new.warm {
            if let t = try? RequestValidator.parse(url: w.url) { warmByDomain[t.domain] = w }
        }
        var actions: [Action] = []
        for key in pools.keys.sorted() {
            var pool = pools[key]!
            pool.limits = new.perDomainPooling ? new.agent(forDomain: key, host: pool.host) : new.agent
            actions += admit(&pool, key: key)
            pools[key] = pool
        }
        for id in connections.keys.sorted() {
            var c = connections[id]!
            let limits = new.agent(forDomain: c.domain, host: Self.host(ofDomain: c.domain))
            guard everything || limits != c.limits else { continue }
            c.limits = limits
            c.retiring = true
            connections[id] = c
            if c.active == 0 { actions.append(.close(id)) }
        }
        return actions
    }

    // MARK: - time

    /// What `tick` decided: the actions due now, and when the next one falls due.
    package struct Tick: Equatable {
        package var actions: [Action] = []
        /// The earliest time after `now` at which `tick` will have something to do, or nil
        /// when nothing is pending. Computed in the same pass as the actions, by the same
        /// rules, so a rule that exempts something from an action exempts it here too.
        package var next: UInt64?

        mutating func due(at t: UInt64) { next = min(next ?? t, t) }
    }

    /// Everything due at `now` (queue timeouts, idle and lifetime expiry, warm-up), and the
    /// time of the next thing due.
    package mutating func tick(now: UInt64) -> Tick {
        var tick = Tick()
        // Only pools that have queued since their queue was last seen empty: a daemon that
        // has seen 10,000 domains must not visit them all every millisecond.
        for key in queuedPools {
            guard var pool = pools.removeValue(forKey: key) else {
                queuedPools.remove(key)
                continue
            }
            let timeout = UInt64(pool.limits.queueTimeoutMs) * 1_000_000
            if let oldest = pool.queue.oldest, now >= oldest + timeout {
                for w in pool.queue.remove(where: { now >= $0.since + timeout }).sorted(by: { $0.id < $1.id }) {
                    transferPool[w.id] = nil
                    tick.actions.append(.fail(w.id, .queueTimeout))
                }
            }
            if let oldest = pool.queue.oldest { tick.due(at: oldest + timeout) } else { queuedPools.remove(key) }
            pools[key] = pool
        }
        // Open connections are counted, and idle ones taken in id order, only for warm
        // domains, where which ones stay depends on the count; the rest are decided each
        // on its own, with no sorting of every connection every millisecond.
        var open: [String: Int] = [:]
        var warmIdle: [ConnectionID] = []
        var closing: [ConnectionID] = []
        for (id, c) in connections {
            guard warmByDomain[c.domain] != nil else {
                if c.active == 0 { decideIdle(id, c, keptWarm: false) }
                continue
            }
            open[c.domain, default: 0] += 1
            if c.active == 0 { warmIdle.append(id) }
        }
        for id in warmIdle.sorted() {
            let c = connections[id]!
            decideIdle(id, c, keptWarm: (open[c.domain] ?? 0) <= (warmByDomain[c.domain]?.minIdle ?? 0))
        }
        func decideIdle(_ id: ConnectionID, _ c: Connection, keptWarm: Bool) {
            let lifetimeEnds = c.openedAt + UInt64(c.limits.maxLifetimeS) * 1_000_000_000
            // A connection that never served a request (a warm-up's, or one being set up)
            // and one kept warm have no idle deadline.
            let idleEnds: UInt64? = c.served > 0 && !keptWarm
                ? c.idleSince + UInt64(c.limits.keepAliveTimeoutMs) * 1_000_000 : nil
            if now >= lifetimeEnds || idleEnds.map({ now >= $0 }) == true {
                closing.append(id)
                if warmByDomain[c.domain] != nil { open[c.domain, default: 1] -= 1 }
            } else {
                tick.due(at: lifetimeEnds)
                if let idleEnds { tick.due(at: idleEnds) }
            }
        }
        tick.actions += closing.sorted().map { .close($0) }
        for (domain, w) in warmByDomain.sorted(by: { $0.key < $1.key }) {
            let have = (open[domain] ?? 0) + (warming[domain] ?? 0)
            // Never more than the domain may have: past it libcurl closes what warm-up opens,
            // and warm-up would open again, forever.
            let want = min(w.minIdle, options.agent(forDomain: domain, host: Self.host(ofDomain: domain)).connections)
            guard have < want else { continue }
            if let retryAt = warmRetryAt[domain], now < retryAt {
                tick.due(at: retryAt)
                continue
            }
            for _ in have ..< want { tick.actions.append(.warm(w)) }
            warming[domain, default: 0] += want - have
        }
        return tick
    }

    /// The host of a `host:port` (or `[v6]:port`) domain key.
    static func host(ofDomain domain: String) -> String {
        domain.hasPrefix("[") ? String(domain.dropFirst().prefix { $0 != "]" }) : String(domain.prefix { $0 != ":" })
    }

    // MARK: - forgetting

    /// Domains with a connection open or a warm target: their state must be kept.
    package func activeDomains() -> Set<String> {
        var active = Set(warmByDomain.keys)
        for c in connections.values { active.insert(c.domain) }
        return active
    }

    /// Drops the pools of domains not in `active`, with nothing running or queued, whose
    /// last request arrived before `cutoff`. The shared pool (`perDomainPooling` false)
    /// is never dropped.
    package mutating func forgetPools(unusedSince cutoff: UInt64, except active: Set<String>) {
        guard options.perDomainPooling else { return }
        for (key, pool) in pools where pool.lastUsed < cutoff && pool.running.isEmpty && pool.queue.isEmpty && !active.contains(key) {
            pools[key] = nil
        }
    }

    /// Pools held now (for tests of forgetting).
    package var poolCount: Int { pools.count }

    // MARK: - read-outs for stats

    /// Requests waiting in the domain's pool (the shared pool's when pooling is global).
    package func queued(domain: String) -> Int {
        pools[options.poolKey(forDomain: domain)]?.queue.count ?? 0
    }

    /// Open connections by domain: (idle, busy), busy meaning carrying a request.
    package func connectionStates() -> [String: (idle: Int, busy: Int)] {
        var states: [String: (idle: Int, busy: Int)] = [:]
        for c in connections.values {
            var e = states[c.domain] ?? (0, 0)
            if c.active > 0 { e.busy += 1 } else { e.idle += 1 }
            states[c.domain] = e
        }
        return states
    }
}
