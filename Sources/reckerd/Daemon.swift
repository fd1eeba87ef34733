import Foundation
import Logging
import NIOCore
import NIOPosix
import ReckerPool
import ReckerProtocol
import Synchronization

/// The running daemon: its config, engine, client connections and lifecycle.
final class Daemon: Sendable {
    let engine: CurlEngine
    let logger: Logger
    /// Where the config came from (`--config`, the system file, or nil for the defaults):
    /// a reload reads it again.
    let configSource: String?
    let startedAt = MonotonicClock.nanoseconds()
    private let configBox: Mutex<DaemonConfig>
    private let clients = ClientRegistry()
    private let users = Mutex<[UInt32: StatsReport.UserCounts]>([:])
    private let statsCache = StatsCache()
    private let draining = Atomic<Bool>(false)
    private let clientIDs = Atomic<UInt64>(1)
    private let lastAcceptWarning = Atomic<UInt64>(0)
    let heartbeat: Heartbeat

    init(config: DaemonConfig, configSource: String?, logger: Logger) throws {
        configBox = Mutex(config)
        self.configSource = configSource
        self.logger = logger
        let clients = self.clients
        let heartbeat = Heartbeat { inFlight, open in
            "\(clients.count) clients, \(inFlight) requests in flight, \(open) upstream connections open"
        }
        self.heartbeat = heartbeat
        engine = try CurlEngine(options: config.pool, warn: { logger.warning("\($0)") }) { inFlight, open in
            heartbeat.beat(inFlight: inFlight, openConnections: open)
        }
    }

    /// The config in force (it changes on reload).
    var config: DaemonConfig { configBox.withLock { $0 } }

    var isDraining: Bool { draining.load(ordering: .relaxed) }

    /// Registers a client connection of `uid`; false (the caller closes it) when that
    /// user already has `limits.maxClientsPerUser`, so no one user can take every descriptor.
    func clientConnected(_ channel: any Channel, uid: UInt32?) -> Bool {
        let limit = config.maxClientsPerUser
        return clients.channels.withLock { channels in
            if let uid {
                guard clients.perUser[uid, default: 0] < limit else { return false }
                clients.perUser[uid, default: 0] += 1
            }
            channels[ObjectIdentifier(channel)] = channel
            return true
        }
    }

    func clientDisconnected(_ channel: any Channel, uid: UInt32?) {
        clients.channels.withLock { channels in
            guard channels.removeValue(forKey: ObjectIdentifier(channel)) != nil, let uid else { return }
            clients.perUser[uid, default: 1] -= 1
            if clients.perUser[uid] == 0 { clients.perUser[uid] = nil }
        }
    }

    var clientCount: Int { clients.count }

    /// Accepting a client failed (out of descriptors, most likely): logged at most once
    /// every 10 s with what to do.
    func acceptFailed(_ error: IOError) {
        let now = MonotonicClock.nanoseconds()
        let last = lastAcceptWarning.load(ordering: .relaxed)
        guard last == 0 || now &- last >= 10_000_000_000,
              lastAcceptWarning.compareExchange(expected: last, desired: now, ordering: .relaxed).exchanged else { return }
        let hint = error.errnoCode == EMFILE || error.errnoCode == ENFILE
            ? " (\(clientCount) clients connected; raise LimitNOFILE or ulimit -n)" : ""
        logger.error("cannot accept clients: \(error.description); accepting again when a descriptor frees\(hint)")
    }

    /// A fresh identity for a client connection (never 0, which stands for no client).
    func nextClientID() -> ClientID { clientIDs.wrappingAdd(1, ordering: .relaxed).oldValue }

    /// Whether a peer with these credentials may use the daemon.
    func allows(uid: UInt32, gids: [UInt32]) -> Bool {
        let c = config
        if c.allowUsers.isEmpty && c.allowGroups.isEmpty { return true }
        return c.allowUsers.contains(uid) || gids.contains { c.allowGroups.contains($0) }
    }

    /// Counts a response for its client's uid.
    func noteResponse(uid: UInt32, reused: Bool) {
        users.withLock {
            $0[uid, default: .init()].requests += 1
            if reused { $0[uid, default: .init()].reused += 1 }
        }
    }

    /// The stats in the asked format, from a snapshot shared with the other stats requests
    /// waiting for one (`StatsCache`); `done` runs on the engine thread.
    func statsReport(_ format: StatsReport.Format, _ done: @escaping @Sendable ([UInt8]) -> Void) {
        statsCache.document(format, engine: engine, render: { [self] stats, format in
            let uptime = Double(MonotonicClock.nanoseconds() - startedAt) / 1e9
            return StatsReport(stats: stats, uptime: uptime, clients: clientCount, users: users.withLock { $0 }).render(format)
        }, done)
    }

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
        configBox.withLock { $0 = new }
        DaemonLogHandler.level.withLock { $0 = Logger.Level(rawValue: new.logLevel) ?? .info }
        engine.reconfigure(new.pool)
        logger.info("config reloaded", metadata: ["source": "\(configSource ?? "built-in defaults")"])
    }

    /// Stops taking requests, waits for those in flight (up to the drain timeout), fails
    /// what is left with SHUTTING_DOWN, then closes every client and upstream connection.
    func drainAndStop() {
        draining.store(true, ordering: .relaxed)
        let deadline = MonotonicClock.nanoseconds() + UInt64(config.drainTimeoutMs) * 1_000_000
        while engine.inFlight > 0 && MonotonicClock.nanoseconds() < deadline { usleep(20_000) }
        if engine.inFlight > 0 {
            logger.warning("drain timeout reached; failing \(engine.inFlight) requests in flight")
        }
        engine.shutdown()
        // Let the sessions write what the engine handed them before their channels close.
        usleep(100_000)
        let open = clients.channels.withLock { Array($0.values) }
        for c in open { try? c.close().wait() }
    }
}

/// The client connections open now, and how many each user has (guarded by `channels`).
final class ClientRegistry: @unchecked Sendable {
    let channels = Mutex<[ObjectIdentifier: any Channel]>([:])
    var perUser: [UInt32: Int] = [:]
    var count: Int { channels.withLock { $0.count } }
}
