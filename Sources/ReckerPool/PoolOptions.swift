/// The engine's settings: the pool options users know (connections, keepAlive, ...) and
/// the engine's own bounds. Values are already checked by the config loader.
package struct PoolOptions: Sendable, Equatable {
    /// Most concurrent upstream connections per domain.
    package var connections = 10
    /// false: close each connection after its response.
    package var keepAlive = true
    /// An idle connection is closed after this long.
    package var keepAliveTimeoutMs = 4000
    /// Time allowed to establish a new connection (DNS + TCP + TLS).
    package var connectTimeoutMs = 10000
    /// Separate limits per domain; false: one limit over all domains together.
    package var perDomainPooling = true
    /// A connection is retired after this age, so DNS changes are picked up.
    package var maxLifetimeS = 300
    package var http2Enabled = true
    package var http2MaxConcurrentStreams = 100
    /// Extra CA bundle to trust (PEM), besides the system's.
    package var caFile: String?
    /// Most response bytes held for one request before reading from upstream pauses.
    package var maxResponseBuffer = 1 << 20
    /// Most idle connections kept in total, across all domains.
    package var maxCachedConnections = 1000

    package init() {}
}
