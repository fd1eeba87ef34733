import ReckerPool
import ReckerSession

/// Everything `config/reckerd.json` can say. Defaults equal the shipped file.
struct DaemonConfig: Equatable {
    var socket: String?
    var logLevel = "info"
    var pool = PoolOptions()
    var maxFrame = 1 << 20
    var maxInFlightPerClient = 256
    var streamWindow = 256 * 1024
    /// Most client connections one uid may have open at once.
    var maxClientsPerUser = 1024
    /// How long a stop waits for requests in flight before failing them.
    var drainTimeoutMs = 10000
    /// Who may use the daemon: uids and gids (names resolved at load). Both empty: everyone
    /// who can open the socket.
    var allowUsers: [UInt32] = []
    var allowGroups: [UInt32] = []
    /// `tls.caFile` as the config names it (`pool.caFile` is the file libcurl reads: this
    /// one, or the bundle made with `extraCaFiles`).
    var caFile: String?
    /// CA bundles added to the system's (or to `tls.caFile`), as the config names them.
    var extraCaFiles: [String] = []
    /// The HTTP/1.1 proxy front (`http`).
    var http = HTTPFrontConfig()
    /// Where `GET /metrics` is served (`metrics.listen`); nil: nowhere.
    var metricsListen: LoopbackAddress?
    /// Domains (`host` or `host:port`, lower-cased, as `domains` names them) whose plain
    /// http requests from the HTTP front leave as https (`domains.HOST.originate`).
    var originate: Set<String> = []

    /// The defaults. libcurl is named the system's CA bundle rather than left to find it, so
    /// it parses the bundle once for all connections (`ConfigTLS.systemBundlePath`).
    init() { pool.caFile = ConfigTLS.systemBundlePath() }

    /// The config in force, in the config file's own shape (`reckerd --check-config`).
    var effectiveJSON: String {
        func agent(_ a: AgentOptions) -> [(String, ConfigJSON)] {
            [("connections", .int(a.connections)), ("keepAlive", .bool(a.keepAlive)),
             ("keepAliveTimeout", .int(a.keepAliveTimeoutMs)), ("connectTimeout", .int(a.connectTimeoutMs)),
             ("readTimeout", .int(a.readTimeoutMs)),
             ("maxLifetime", .int(a.maxLifetimeS)), ("maxQueue", .int(a.maxQueue)), ("queueTimeout", .int(a.queueTimeoutMs))]
        }
        let limits: [(String, ConfigJSON)] = [
            ("maxFrame", .int(maxFrame)), ("maxInFlightPerClient", .int(maxInFlightPerClient)),
            ("streamWindow", .int(streamWindow)), ("responseBuffer", .int(pool.maxResponseBuffer)),
            ("maxDomains", .int(pool.maxTrackedDomains)), ("forgetIdleDomainsAfter", .int(pool.forgetIdleDomainsMs)),
            ("dnsCacheTimeout", .int(pool.dnsCacheTimeoutS)), ("spillMax", .int(pool.maxSpillBytes)),
            ("spillTotalMax", .int(pool.maxSpillTotalBytes)), ("spillUserMax", .int(pool.maxSpillUserBytes)), ("bodyTimeout", .int(pool.bodyTimeoutMs)),
            ("maxClientsPerUser", .int(maxClientsPerUser)), ("spillDirectory", .string(pool.spillDirectory)),
            ("maxHeaders", .int(pool.headerLimits.count)), ("maxHeaderBytes", .int(pool.headerLimits.bytes)),
        ]
        var doc: [(String, ConfigJSON)] = [
            ("logLevel", .string(logLevel)),
            ("agent", .object(agent(pool.agent) + [("perDomainPooling", .bool(pool.perDomainPooling))])),
            ("http2", .object([("enabled", .bool(pool.http2Enabled)),
                               ("maxConcurrentStreams", .int(pool.http2MaxConcurrentStreams))])),
            ("limits", .object(limits)),
            ("drainTimeout", .int(drainTimeoutMs)),
            ("http", http.json),
            ("policy", .object([("denyLinkLocal", .bool(pool.denyLinkLocal)), ("denyPrivate", .bool(pool.denyPrivate)),
                                ("denyLoopback", .bool(pool.denyLoopback))])),
        ]
        if !pool.domains.isEmpty {
            doc.append(("domains", .object(pool.domains.map { domain in
                (domain.key, .object(agent(domain.value) + (originate.contains(domain.key) ? [("originate", .string("https"))] : [])))
            })))
        }
        if !pool.warm.isEmpty {
            doc.append(("warm", ConfigJSON(.array(pool.warm.map { .object([("url", .string($0.url)), ("minIdle", .int($0.minIdle))]) }))))
        }
        var tls: [(String, ConfigJSON)] = []
        if let ca = caFile { tls.append(("caFile", .string(ca))) }
        if !extraCaFiles.isEmpty { tls.append(("extraCaFile", ConfigJSON(.array(extraCaFiles.map { .string($0) })))) }
        tls.append(("allowInsecure", .bool(pool.allowInsecure)))
        if !tls.isEmpty { doc.append(("tls", .object(tls))) }
        if let socket { doc.append(("socket", .string(socket))) }
        if let metricsListen { doc.append(("metrics", .object([("listen", .string(metricsListen.description))]))) }
        if let proxy = pool.upstreamProxy { doc.append(("upstreamProxy", .string(proxy))) }
        if let noProxy = pool.noProxy { doc.append(("noProxy", .string(noProxy))) }
        if !allowUsers.isEmpty { doc.append(("allowUsers", ConfigJSON(.array(allowUsers.map { .int(Int($0)) })))) }
        if !allowGroups.isEmpty { doc.append(("allowGroups", ConfigJSON(.array(allowGroups.map { .int(Int($0)) })))) }
        return ConfigJSON.object(doc).rendered()
    }

    /// What the client sessions' machines take from it.
    var session: SessionConfig {
        var s = SessionConfig()
        s.allowUsers = allowUsers
        s.allowGroups = allowGroups
        s.maxFrame = maxFrame
        s.maxInFlightPerClient = maxInFlightPerClient
        s.streamWindow = streamWindow
        s.headerLimits = pool.headerLimits
        s.responseBuffer = pool.maxResponseBuffer
        s.bodyTimeoutMs = pool.bodyTimeoutMs
        s.httpEnabled = http.enabled
        s.headerTimeoutMs = http.headerTimeoutMs
        s.idleTimeoutMs = http.idleTimeoutMs
        s.originate = originate
        return s
    }

    /// Where the daemon looks for its config when `--config` is not given.
    static let systemPath = "/etc/reckerd/reckerd.json"
}
