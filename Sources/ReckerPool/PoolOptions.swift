import ReckerProtocol

/// The per-domain pool options users know from HTTP client agents. Values are already
/// checked by the config loader.
package struct AgentOptions: Sendable, Equatable {
    /// Most concurrent upstream connections per domain (per pool).
    package var connections = 10
    /// false: close each connection after its response.
    package var keepAlive = true
    /// An idle connection is closed after this long, actively.
    package var keepAliveTimeoutMs = 4000
    /// Time allowed to establish a new connection (DNS + TCP + TLS).
    package var connectTimeoutMs = 10000
    /// Longest a running request may go with no byte moving to or from the upstream while
    /// reckerd is not waiting on its client.
    package var readTimeoutMs = 60000
    /// A connection is retired after this age, so DNS changes are picked up.
    package var maxLifetimeS = 300
    /// Most requests waiting for a connection; more are refused with QUEUE_FULL.
    package var maxQueue = 1000
    /// Longest wait for a connection; longer is QUEUE_TIMEOUT.
    package var queueTimeoutMs = 30000

    package init() {}
}

/// A domain connected at start-up and kept warm.
package struct WarmTarget: Sendable, Equatable {
    /// The URL fetched (HEAD) to open each connection.
    package var url: String
    /// Connections kept open (idle or busy) to this domain at all times.
    package var minIdle: Int

    package init(url: String, minIdle: Int) {
        self.url = url
        self.minIdle = minIdle
    }
}

/// The engine's settings: the agent options (global and per domain) and the engine's own
/// bounds.
package struct PoolOptions: Sendable, Equatable {
    package var agent = AgentOptions()
    /// Overrides by `host` or `host:port`, each already merged onto `agent`.
    package var domains: [String: AgentOptions] = [:]
    /// Separate limits per domain; false: one limit over all domains together.
    package var perDomainPooling = true
    package var http2Enabled = true
    package var http2MaxConcurrentStreams = 100
    /// CA bundle (PEM) to trust instead of the system's.
    package var caFile: String?
    /// Whether a request may ask not to verify the upstream's certificate (`insecure`).
    package var allowInsecure = true
    /// Most response bytes held for one request before reading from upstream pauses.
    package var maxResponseBuffer = 1 << 20
    /// Most idle connections kept in total, across all domains.
    package var maxCachedConnections = 1000
    package var warm: [WarmTarget] = []
    /// Most domains with statistics of their own; events of further domains are counted
    /// under one `other` entry (the totals stay exact either way).
    package var maxTrackedDomains = 1000
    /// A domain with nothing open, running or queued, unused this long, is forgotten:
    /// its pool and statistics are dropped (the totals keep its counts).
    package var forgetIdleDomainsMs = 600_000
    /// Most bytes of one response written to a spill file while its client reads slowly
    /// and others wait for its connection; 0: never spill (the connection stays held).
    package var maxSpillBytes = 64 << 20
    /// Most bytes in all spill files together; past it, slow readers keep their connections.
    package var maxSpillTotalBytes = 1 << 30
    /// Most bytes one user's responses may have in spill files together, so one client that
    /// never reads cannot take the budget every user shares.
    package var maxSpillUserBytes = 256 << 20
    /// Where spill files are made (unnamed, `O_TMPFILE`).
    package var spillDirectory = "/tmp"
    /// Most headers and header bytes of an upstream's response head; more fail the request
    /// with UPSTREAM_PROTOCOL (the same limits hold requests at the door).
    package var headerLimits = HeaderLimits.standard
    /// The proxy every upstream request goes through, when the config names one; the
    /// daemon's own environment (`http_proxy`, `ALL_PROXY`, …) is never used, so a proxy
    /// that happened to be set where the service started cannot see everyone's traffic.
    package var upstreamProxy: String?
    /// Hosts reached directly despite `upstreamProxy` (libcurl's NO_PROXY syntax).
    package var noProxy: String?
    /// Destinations refused on the address actually connected (after DNS, whatever the URL
    /// spelled): link-local ones, where cloud metadata services live (default on), private
    /// ranges (default off), loopback (default off).
    package var denyLinkLocal = true
    package var denyPrivate = false
    package var denyLoopback = false
    /// A request whose client sends no body for this long, while its upstream connection
    /// waits for it, fails with TIMEOUT and frees the connection.
    package var bodyTimeoutMs = 30000
    /// Seconds a resolved name is kept by libcurl (its own default, made explicit).
    package var dnsCacheTimeoutS = 60

    /// Settings for one process's own connections (recker-direct); the daemon never sets them.
    package var processOnly = ProcessOnlyOptions()

    package init() {}

    /// The options for a domain (`host:port`): its own override, its host's, or the global.
    package func agent(forDomain domain: String, host: String) -> AgentOptions {
        domains[domain] ?? domains[host] ?? agent
    }

    /// The pool a domain belongs to: itself, or the one shared pool.
    package func poolKey(forDomain domain: String) -> String {
        perDomainPooling ? domain : "*"
    }
}

/// What `recker-direct` sets for the one command line it serves, as curl would (another
/// Unix socket, no certificate checks, a host mapping, an HTTP version, a client
/// certificate). The daemon never sets any of it: its connections are shared by every
/// client, so none may carry one client's choices.
package struct ProcessOnlyOptions: Sendable, Equatable {
    package var unixSocketPath: String?
    package var insecure = false
    package var caPath: String?
    package var resolve: [String] = []
    package var connectTo: [String] = []
    package var proxyUser: String?
    /// A CURL_HTTP_VERSION_* value.
    package var httpVersion: Int?
    package var clientCert: String?
    package var clientKey: String?
    /// A CURL_IPRESOLVE_* value.
    package var ipResolve: Int?
    /// CURL_SSLVERSION_* (the floor, or-ed with a CURL_SSLVERSION_MAX_* ceiling), and OpenSSL's cipher list.
    package var sslVersion: Int?
    package var ciphers: String?

    package init() {}
}
