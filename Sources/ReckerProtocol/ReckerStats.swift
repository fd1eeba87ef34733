/// The daemon's statistics (the JSON document of docs/PROTOCOL.md §2.12), decoded.
///
/// Fields this build does not know are skipped and fields the daemon leaves out read 0,
/// so a newer daemon's document still decodes.
public struct ReckerStats: Sendable, Equatable {
    /// The document's schema number (1 today).
    public var schema: Int
    /// Seconds since the daemon started.
    public var uptimeSeconds: Double
    /// Clients connected to the daemon, the one asking included.
    public var clients: Int
    /// Counts over every domain.
    public var total: Counters
    /// Counts per domain (`host:port`; `other` for domains beyond `limits.maxDomains`).
    public var domains: [String: Counters]
    /// Requests per local user id.
    public var users: [UInt32: UserCounts]

    /// What the daemon counts, over all domains or for one.
    public struct Counters: Sendable, Equatable {
        /// Requests handed to the pool.
        public var requestsTotal: Int
        /// Requests running upstream now.
        public var requestsInFlight: Int
        /// Requests waiting for a connection now.
        public var requestsQueued: Int
        /// Upstream connections opened.
        public var connectionsCreated: Int
        /// Upstream connections open now (idle plus busy).
        public var connectionsOpen: Int
        /// Open connections carrying no request.
        public var connectionsIdle: Int
        /// Open connections carrying a request.
        public var connectionsBusy: Int
        /// 1 − connections created / requests.
        public var reuseRatio: Double
        /// DNS, TCP connect or TLS failures.
        public var connectFailures: Int
        /// Connect, total or queue timeouts.
        public var timeouts: Int
        /// Requests whose reused connection died before any answer.
        public var retries: Int
        /// Requests that ended in an error.
        public var errorsTotal: Int
        /// Response body bytes.
        public var bytesIn: Int
        /// Request body bytes.
        public var bytesOut: Int
        /// The HTTP version of the latest response ("1.1", "2"), nil before any.
        public var httpVersion: String?
        /// Whole-request time, microseconds.
        public var latency: Summary
        /// Time waited for a connection, microseconds.
        public var queueTime: Summary
    }

    /// A distribution's percentiles, sum and count, in microseconds.
    public struct Summary: Sendable, Equatable {
        /// The median.
        public var p50: Int
        /// The 90th percentile.
        public var p90: Int
        /// The 99th percentile.
        public var p99: Int
        /// The sum of every value.
        public var sum: Int
        /// How many values.
        public var count: Int
    }

    /// One local user's use of the daemon.
    public struct UserCounts: Sendable, Equatable {
        /// Requests the user sent.
        public var requestsTotal: Int
        /// Of them, those that went out on a reused connection.
        public var reused: Int
    }

    /// Decodes the JSON document; one that is not a JSON object is `MALFORMED_FRAME`.
    init(json: [UInt8]) throws(ReckerError) {
        let doc = try JSONValue(parsing: json)
        guard case .object = doc else {
            throw ReckerError(.malformedFrame, "the stats document is not a JSON object")
        }
        schema = doc["schema"]?.int ?? 0
        uptimeSeconds = doc["uptime_s"]?.double ?? 0
        clients = doc["clients"]?.int ?? 0
        total = Counters(doc)
        domains = [:]
        if case .object(let all)? = doc["domains"] {
            for (name, d) in all { domains[name] = Counters(d) }
        }
        users = [:]
        if case .object(let all)? = doc["users"] {
            for (uid, u) in all {
                guard let id = UInt32(uid) else { continue }
                users[id] = UserCounts(requestsTotal: u["requests_total"]?.int ?? 0, reused: u["reused"]?.int ?? 0)
            }
        }
    }
}

extension ReckerStats.Counters {
    init(_ j: JSONValue) {
        func n(_ key: String) -> Int { j[key]?.int ?? 0 }
        func summary(_ key: String) -> ReckerStats.Summary {
            let s = j[key]
            return ReckerStats.Summary(p50: s?["p50"]?.int ?? 0, p90: s?["p90"]?.int ?? 0, p99: s?["p99"]?.int ?? 0,
                                       sum: s?["sum"]?.int ?? 0, count: s?["count"]?.int ?? 0)
        }
        self.init(requestsTotal: n("requests_total"), requestsInFlight: n("requests_in_flight"),
                  requestsQueued: n("requests_queued"), connectionsCreated: n("connections_created"),
                  connectionsOpen: n("connections_open"), connectionsIdle: n("connections_idle"),
                  connectionsBusy: n("connections_busy"), reuseRatio: j["reuse_ratio"]?.double ?? 0,
                  connectFailures: n("connect_failures"), timeouts: n("timeouts"), retries: n("retries"),
                  errorsTotal: n("errors_total"), bytesIn: n("bytes_in"), bytesOut: n("bytes_out"),
                  httpVersion: j["http_version"]?.string, latency: summary("latency_us"),
                  queueTime: summary("queue_time_us"))
    }
}
