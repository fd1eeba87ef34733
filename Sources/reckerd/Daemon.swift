import Foundation
import Logging
import NIOCore
import NIOPosix
import ReckerPool
import ReckerProtocol
import Synchronization

/// The running daemon: its config, engine, client connections and lifecycle.
final class Daemon: Sendable {
    let config: DaemonConfig
    let engine: CurlEngine
    let logger: Logger
    let startedAt = MonotonicClock.nanoseconds()
    private let clients = Mutex<[ObjectIdentifier: any Channel]>([:])
    private let draining = Atomic<Bool>(false)

    init(config: DaemonConfig, logger: Logger) throws {
        self.config = config
        self.logger = logger
        engine = try CurlEngine(options: config.pool)
    }

    var isDraining: Bool { draining.load(ordering: .relaxed) }

    func clientConnected(_ channel: any Channel) {
        clients.withLock { $0[ObjectIdentifier(channel)] = channel }
    }

    func clientDisconnected(_ channel: any Channel) {
        _ = clients.withLock { $0.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    var clientCount: Int { clients.withLock { $0.count } }

    /// The STATS_RESPONSE document (docs/PROTOCOL.md §2.12).
    func statsDocument() -> [UInt8] {
        let s = engine.stats
        func counters(_ d: DomainStats) -> [String: Any] {
            ["requests_total": d.requestsTotal, "requests_in_flight": d.requestsInFlight,
             "connections_created": d.connectionsCreated, "connections_open": d.connectionsOpen,
             "errors_total": d.errorsTotal, "bytes_in": d.bytesIn, "bytes_out": d.bytesOut]
        }
        var doc = counters(s.total)
        doc["schema"] = 1
        doc["uptime_s"] = Double(MonotonicClock.nanoseconds() - startedAt) / 1e9
        doc["clients"] = clientCount
        doc["domains"] = s.domains.mapValues(counters)
        let data = (try? JSONSerialization.data(withJSONObject: doc, options: [.sortedKeys])) ?? Data("{}".utf8)
        return Array(data)
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
        let open = clients.withLock { Array($0.values) }
        for c in open { try? c.close().wait() }
    }
}
