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

    /// The stats in the asked format, built from an engine snapshot; `done` runs on the
    /// engine thread.
    func statsReport(_ format: StatsReport.Format, _ done: @escaping @Sendable ([UInt8]) -> Void) {
        let uptime = Double(MonotonicClock.nanoseconds() - startedAt) / 1e9
        let clients = clientCount
        engine.snapshot { stats in
            done(StatsReport(stats: stats, uptime: uptime, clients: clients).render(format))
        }
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
