import Glibc
import Logging
import ReckerLoop
import ReckerPool
import ReckerProtocol
import ReckerSession

/// The running daemon: its config, engine, client connections and lifecycle, all on one
/// event loop. Loop-confined: every method runs on the loop's thread.
final class Daemon {
    let loop: EventLoop
    let engine: CurlEngine
    let logger: Logger
    /// Where the config came from (`--config`, the system file, or nil for the defaults):
    /// a reload reads it again.
    let configSource: String?
    let startedAt: UInt64
    /// The uid the daemon runs as: its clients, like root, see every uid's counts in stats.
    let uid = getuid()
    private(set) var config: DaemonConfig { didSet { session = config.session } }
    /// What the client sessions' machines take from `config`, kept with it.
    private(set) var session: SessionConfig
    private var clients: [ObjectIdentifier: any DaemonClient] = [:]
    private var perUser: [UInt32: Int] = [:]
    private var users: [UInt32: StatsReport.UserCounts] = [:]
    private(set) var isDraining = false
    private var nextClient: ClientID = 1
    private var lastAcceptWarning: UInt64 = 0
    /// Client sockets with output to write at the end of this pass.
    private var toFlush: [ClientSocket] = []
    /// Where client reads land before they are appended to a connection's input.
    var scratch = [UInt8](repeating: 0, count: 64 * 1024)
    let heartbeat: Heartbeat
    private var stopDeadline: UInt64?
    private var stopTimer: EventLoop.TimerID?
    private var onStopped: (() -> Void)?

    init(config: DaemonConfig, configSource: String?, logger: Logger, loop: EventLoop) throws {
        self.config = config
        session = config.session
        self.configSource = configSource
        self.logger = logger
        self.loop = loop
        startedAt = loop.now
        let count = ClientCount()
        let heartbeat = Heartbeat { inFlight, open in
            "\(count.value) clients, \(inFlight) requests running or queued, \(open) upstream connections open"
        }
        self.heartbeat = heartbeat
        engine = try CurlEngine(options: config.pool, loop: loop, warn: { logger.warning("\($0)") }) { inFlight, open in
            heartbeat.beat(inFlight: inFlight, openConnections: open, now: loop.now)
        }
        clientCount = count
        loop.atEndOfEveryPass { [unowned self] in endOfPass() }
    }

    private let clientCount: ClientCount
    /// The per-user key TCP clients share for `limits.maxClientsPerUser`: `(uid_t)-1`, which
    /// is no user's uid.
    static let tcpPeers = UInt32.max
    /// Clients of `metrics.listen`, counted apart from the front's TCP clients, so that
    /// filling the front's port does not blind monitoring too.
    static let metricsPeers = UInt32.max - 1

    // MARK: - clients

    /// Takes a freshly accepted client socket: reads its credentials, counts it for its
    /// user (refusing it past `limits.maxClientsPerUser`), and starts its session in the
    /// protocol its listener serves. TCP peers (the HTTP front's `listen`, `/metrics`) have
    /// no credentials: they are counted together as one user (`Daemon.tcpPeers`), so
    /// local users reaching the daemon by TCP cannot take more descriptors than one may.
    func adopt(_ fd: Int32, _ kind: Listener.Kind) {
        loop.assertOnLoop()
        let peer = kind.isUnix ? PeerCredentials.of(fd, groups: !config.allowGroups.isEmpty) : nil
        let counted = kind.isUnix ? peer?.uid : kind == .metrics ? Daemon.metricsPeers : Daemon.tcpPeers
        var refusal: ReckerError?
        if let uid = counted, perUser[uid, default: 0] >= config.maxClientsPerUser {
            let who = kind.isUnix ? "uid \(uid) has" : kind == .metrics ? "metrics clients (any local user) have" : "TCP clients (any local user) have"
            refusal = ReckerError(.tooManyClients, "\(who) \(config.maxClientsPerUser) connections to reckerd already (limits.maxClientsPerUser)")
        }
        let client = nextClient
        nextClient += 1
        let connection: any DaemonClient
        switch kind {
        case .binary:
            connection = ClientConnection(fd: fd, daemon: self, peer: peer, client: client, refusal: refusal)
        case .httpUnix, .httpTCP, .metrics:
            connection = HTTPFrontConnection(fd: fd, daemon: self, kind: kind, peer: peer, client: client, refusal: refusal)
        }
        if refusal == nil {
            if let uid = counted { perUser[uid, default: 0] += 1 }
            connection.registered = true
        }
        clients[ObjectIdentifier(connection)] = connection
        clientCount.value = clients.count
        connection.start()
    }

    func clientDisconnected(_ connection: any DaemonClient) {
        loop.assertOnLoop()
        guard clients.removeValue(forKey: ObjectIdentifier(connection)) != nil else { return }
        clientCount.value = clients.count
        if connection.registered, let uid = connection.countedAs {
            perUser[uid, default: 1] -= 1
            if perUser[uid] == 0 { perUser[uid] = nil }
        }
    }

    /// `socket` was written to: its output goes out at the end of this pass, with everything
    /// else it writes meanwhile.
    func flushAtEndOfPass(_ socket: ClientSocket) {
        loop.assertOnLoop()
        if toFlush.isEmpty { loop.soon { [unowned self] in flushAll() } }
        toFlush.append(socket)
    }

    private func flushAll() {
        let batch = toFlush
        toFlush.removeAll(keepingCapacity: true)
        for c in batch { c.flush() }
    }

    private func endOfPass() {
        if stopDeadline != nil { continueStopping() }
    }

    /// Accepting a client failed (out of descriptors, most likely): logged at most once
    /// every 10 s with what to do.
    func acceptFailed(_ error: SystemError) {
        let now = loop.now
        guard lastAcceptWarning == 0 || now &- lastAcceptWarning >= 10_000_000_000 else { return }
        lastAcceptWarning = now
        let hint = error.errno == EMFILE || error.errno == ENFILE
            ? " (\(clients.count) clients connected; raise LimitNOFILE or ulimit -n)" : ""
        logger.error("cannot accept clients: \(error); accepting again when a descriptor frees\(hint)")
    }

    /// Counts a response for its client's uid.
    func noteResponse(uid: UInt32, reused: Bool) {
        users[uid, default: .init()].requests += 1
        if reused { users[uid, default: .init()].reused += 1 }
    }

    /// The stats in the asked format. The snapshot is taken on the loop, between two passes,
    /// so it sees everything that happened before the request arrived; the documents are
    /// rendered on another thread (1,000 domains in Prometheus text take tens of ms), one
    /// rendering at a time, and requests that arrive meanwhile share the next snapshot.
    func statsReport(_ format: StatsReport.Format, for viewer: StatsReport.Viewer, _ done: @escaping ([UInt8]) -> Void) {
        if pendingStats.isEmpty && !rendering { loop.soon { [unowned self] in answerStats() } }
        pendingStats.append((StatsKind(format: format, viewer: viewer), done))
    }

    /// One document to render: a format, as one viewer sees it.
    struct StatsKind: Hashable, Sendable {
        var format: StatsReport.Format
        var viewer: StatsReport.Viewer
    }

    private var pendingStats: [(StatsKind, ([UInt8]) -> Void)] = []
    private var rendering = false

    private func answerStats() {
        guard !rendering, !pendingStats.isEmpty else { return }
        rendering = true
        let waiting = pendingStats
        pendingStats = []
        let report = StatsReport(stats: engine.snapshotNow(), uptime: Double(loop.now - startedAt) / 1e9,
                                 clients: clients.count, loopWakeups: loop.passes, heapBytes: ProcessMemory.heapInUse, users: users)
        let kinds = Set(waiting.map(\.0))
        let loop = self.loop
        let me = LoopBound((daemon: self, waiting: waiting))
        // A thread of its own per rendering (one at a time), not libdispatch's pool, whose
        // manager would keep descriptors open for good after the first use.
        EventLoop.spawn(name: "reckerd-stats") {
            var documents: [StatsKind: [UInt8]] = [:]
            for k in kinds { documents[k] = report.seen(by: k.viewer).render(k.format) }
            let rendered = documents
            loop.execute {
                let (daemon, waiting) = me.value
                for (kind, done) in waiting { done(rendered[kind] ?? []) }
                daemon.rendering = false
                daemon.answerStats()
            }
        }
    }

    // MARK: - lifecycle

    /// A reload was asked for (SIGHUP): done now, or, within `reloadSpacingNs` of the last
    /// one, once when that time is up, so a storm of signals costs at most ten reloads a
    /// second (each reads and checks the config and its CA files, ~25 ms with extra CAs).
    func requestReload(_ notify: @escaping (String) -> Void) {
        guard !isDraining else {
            logger.notice("reload ignored: the daemon is stopping")
            return
        }
        guard reloadTimer == nil else { return }
        let due = lastReload == 0 ? loop.now : lastReload &+ Self.reloadSpacingNs
        let run = { [unowned self] in
            reloadTimer = nil
            // A stop that came while this reload waited its turn: a stopping daemon does not
            // reload, nor tell systemd READY=1 after STOPPING=1.
            guard !isDraining else { return }
            lastReload = loop.now
            notify("RELOADING=1")
            reload()
            notify("READY=1")
        }
        if due <= loop.now { return run() }
        reloadTimer = loop.schedule(at: due, run)
    }

    /// Wakes the loop every `seconds` for good, so the heartbeat at the end of a pass is on
    /// time when the watchdog wants pings more often than the loop's own longest sleep (1 s)
    /// allows: systemd's WatchdogSec=1 wants one every half second.
    func wake(every seconds: Double) {
        let ns = UInt64(seconds * 1e9)
        func next() {
            loop.schedule(at: loop.now &+ ns) { next() }
        }
        next()
    }

    private var lastReload: UInt64 = 0
    static let reloadSpacingNs: UInt64 = 100_000_000
    private var reloadTimer: EventLoop.TimerID?

    /// Re-reads the config. A broken one is refused with its reason and the old stays in
    /// force; otherwise unchanged domains keep their connections and changed ones drain.
    func reload() {
        let old = config
        let new: DaemonConfig
        do {
            new = try configSource.map(ConfigLoader.load(path:)) ?? DaemonConfig()
        } catch {
            logger.error("reload refused, the old config stays in force: \(error)")
            return
        }
        guard new.pool.perDomainPooling == old.pool.perDomainPooling else {
            logger.error("reload refused, the old config stays in force: agent.perDomainPooling changes need a restart")
            return
        }
        if new.socket != old.socket {
            logger.warning("the socket path changes only on restart; still serving the old one")
        }
        if new.http.enabled != old.http.enabled || new.http.socket != old.http.socket || new.http.listen != old.http.listen
            || new.metricsListen != old.metricsListen {
            logger.warning("http.enabled, http.socket, http.listen and metrics.listen change only on restart; the listeners stay as they were")
        }
        config = new
        DaemonLogHandler.level.withLock { $0 = Logger.Level(rawValue: new.logLevel) ?? .info }
        engine.reconfigure(new.pool)
        logger.info("config reloaded", metadata: ["source": "\(configSource ?? "built-in defaults")"])
    }

    /// Stops taking requests, waits for those in flight (up to the drain timeout), fails
    /// what is left with SHUTTING_DOWN, then closes every client and upstream connection;
    /// `stopped` runs once all is closed. The loop keeps turning meanwhile.
    func drainAndStop(_ stopped: @escaping () -> Void) {
        guard stopDeadline == nil else { return }
        isDraining = true
        onStopped = stopped
        let deadline = loop.now &+ UInt64(config.drainTimeoutMs) * 1_000_000
        stopDeadline = deadline
        stopTimer = loop.schedule(at: deadline) {}
        loop.soon { [unowned self] in continueStopping() }
    }

    private var engineStopping = false

    private func continueStopping() {
        guard let deadline = stopDeadline else { return }
        if !engineStopping {
            guard engine.inFlight == 0 || loop.now >= deadline else { return }
            if engine.inFlight > 0 {
                logger.warning("drain timeout reached; failing \(engine.inFlight) requests in flight")
            }
            engineStopping = true
            engine.shutdown()
            // The engine finishes stopping at its own end of this pass, after this one:
            // look again then, not at the next pass, which an idle daemon waits a second for.
            loop.soon { [unowned self] in continueStopping() }
        }
        guard engine.isStopped else { return }
        // What the engine's end handed the clients goes out before their sockets close.
        for c in toFlush { c.flush() }
        toFlush = []
        for c in Array(clients.values) { c.closeNow() }
        stopDeadline = nil
        loop.cancel(&stopTimer)
        onStopped?()
        onStopped = nil
    }
}

/// The number of client connections, for the status line the watchdog sends; written and
/// read on the loop thread only (hence `@unchecked Sendable`).
final class ClientCount: @unchecked Sendable {
    var value = 0
}

/// Values of the loop's thread carried through another thread and back (`EventLoop.execute`)
/// untouched: `@unchecked Sendable` because only the loop's thread uses them.
struct LoopBound<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
