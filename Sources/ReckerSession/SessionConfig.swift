import ReckerProtocol

/// What the client sessions' rules need of the daemon's config: taken from it when it is
/// loaded and at each reload (`DaemonConfig.session`), so that the machines depend on
/// nothing of the daemon's.
package struct SessionConfig: Equatable, Sendable {
    /// Who may use the daemon (uids, gids); both empty: everyone who can open the socket.
    package var allowUsers: [UInt32] = []
    package var allowGroups: [UInt32] = []
    /// The largest frame, requests in flight and window a binary client is announced.
    package var maxFrame = 1 << 20
    package var maxInFlightPerClient = 256
    package var streamWindow = 256 * 1024
    package var headerLimits = HeaderLimits.standard
    /// Most response bytes held for one request before reading pauses (limits.responseBuffer).
    package var responseBuffer = 1 << 20
    /// How long a client may send no body, or read none of its response (limits.bodyTimeout).
    package var bodyTimeoutMs = 30_000
    /// Whether the HTTP front serves requests (http.enabled; /metrics is served either way).
    package var httpEnabled = false
    /// The HTTP front's head and idle timeouts (http.headerTimeout, http.idleTimeout).
    package var headerTimeoutMs = 10_000
    package var idleTimeoutMs = 60_000
    /// Domains whose plain http requests from the HTTP front leave as https.
    package var originate: Set<String> = []

    package init() {}

    /// How many response bytes a session passes to its client before it tells the engine,
    /// which resumes a paused response at half its buffer and takes a client that told it
    /// nothing for 2 s, while other requests wait for its connection, for a stalled one
    /// (TransferPolicy.stalledReaderGrace): a quarter of the buffer, and at most 64 KiB, so
    /// a client reading slowly is heard from about as often as it reads
    /// (IsolationTests.testASlowReaderThatReadsIsNotTakenForAStalledOne: one reading
    /// 192 KiB a second went 2 s unheard between quarters of 256 KiB, and lost its response).
    package static func reportEvery(buffer: Int) -> Int { max(1, min(buffer / 4, 64 * 1024)) }

    /// Whether a peer with these credentials may use the daemon.
    package func allows(uid: UInt32, gids: [UInt32]) -> Bool {
        if allowUsers.isEmpty && allowGroups.isEmpty { return true }
        return allowUsers.contains(uid) || gids.contains { allowGroups.contains($0) }
    }
}

/// How important a line a machine asks to be logged is (the daemon's logger's levels).
package enum LogLevel: Sendable, Equatable {
    case debug, info, notice, warning, error
}

/// The formats a stats document is rendered in (PROTOCOL.md, STATS_REQUEST).
package enum StatsFormat: UInt8, Sendable {
    case json = 0
    case prometheus = 1
    case table = 2
}
