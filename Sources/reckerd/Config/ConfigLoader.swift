import Glibc
import ReckerPool
import ReckerProtocol

/// Reads and checks the JSON config. Syntax errors, unknown keys, wrong types and
/// out-of-range numbers are refused with line, column and key path, so a typo never
/// silently falls back to a default. The CA files it names are read and checked here too:
/// start and reload both load through it.
enum ConfigLoader {
    /// A config file is read whole; the shipped one is 1 KiB.
    static let maxConfigBytes = 1 << 20

    static func load(path: String) throws(ConfigError) -> DaemonConfig {
        let bytes: [UInt8]
        do { bytes = try ConfigFile.read(path, limit: maxConfigBytes) } catch {
            throw ConfigError(description: "cannot read config \(path): \(error)")
        }
        return try parse(bytes, source: path)
    }

    static func parse(_ bytes: [UInt8], source: String) throws(ConfigError) -> DaemonConfig {
        let root: ConfigJSON
        do { root = try ConfigJSON.parse(bytes) } catch {
            throw ConfigError(description: "\(source):\(error.at): not valid JSON: \(error.message)")
        }
        let r = ConfigReader(source: source)
        guard case .object = root.kind else {
            throw ConfigError(description: "\(source):\(root.at): the top level must be an object, not \(root.kindName)")
        }
        var c = DaemonConfig()
        try r.keys(root, "", section: "")
        if let policy = try r.object(root, "policy") {
            try r.keys(policy, "policy.", section: "policy")
            if let v = try r.bool(policy, "denyLinkLocal", path: "policy.") { c.pool.denyLinkLocal = v }
            if let v = try r.bool(policy, "denyPrivate", path: "policy.") { c.pool.denyPrivate = v }
            if let v = try r.bool(policy, "denyLoopback", path: "policy.") { c.pool.denyLoopback = v }
        }
        if let proxy = try r.string(root, "upstreamProxy") {
            guard let scheme = proxy.firstIndex(of: ":"), proxy[scheme...].hasPrefix("://") else {
                throw r.fail("upstreamProxy", at: root["upstreamProxy"]!.at, "must be a URL such as http://proxy.example:3128")
            }
            c.pool.upstreamProxy = proxy
        }
        c.pool.noProxy = try r.string(root, "noProxy")
        c.allowUsers = try r.ids(root, "allowUsers", what: "user") { name in getpwnam(name).map { $0.pointee.pw_uid } }
        c.allowGroups = try r.ids(root, "allowGroups", what: "group") { name in getgrnam(name).map { $0.pointee.gr_gid } }
        c.socket = try r.string(root, "socket")
        if let level = try r.string(root, "logLevel") {
            guard ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(level) else {
                throw r.fail("logLevel", at: root["logLevel"]!.at, "must be one of trace, debug, info, notice, warning, error, critical")
            }
            c.logLevel = level
        }
        if let v = try r.int(root, "drainTimeout", min: 0) { c.drainTimeoutMs = v }
        if let agent = try r.object(root, "agent") {
            try r.keys(agent, "agent.", section: "agent")
            c.pool.agent = try r.agent(agent, path: "agent.", base: c.pool.agent)
            if let v = try r.bool(agent, "perDomainPooling", path: "agent.") { c.pool.perDomainPooling = v }
        }
        if let domains = try r.object(root, "domains"), case .object(let members) = domains.kind {
            for m in members {
                let path = "domains.\(m.key)"
                guard case .object = m.value.kind else { throw r.fail(path, at: m.value.at, "must be an object, not \(m.value.kindName)") }
                guard !m.key.isEmpty, !m.key.contains("/"), !m.key.contains(" ") else {
                    throw r.fail(path, at: m.keyAt, "must be a host or host:port")
                }
                try r.keys(m.value, path + ".", section: "domains.HOST")
                c.pool.domains[m.key.lowercased()] = try r.agent(m.value, path: path + ".", base: c.pool.agent)
                if let scheme = try r.string(m.value, "originate", path: path + ".") {
                    guard scheme == "https" else {
                        throw r.fail(path + ".originate", at: m.value["originate"]!.at, "must be \"https\" (plain http stays http without it)")
                    }
                    c.originate.insert(m.key.lowercased())
                }
            }
        }
        if let warm = r.member(root, "warm") {
            guard case .array(let list) = warm.kind else {
                throw r.fail("warm", at: warm.at, "must be a list of { \"url\": …, \"minIdle\": … }")
            }
            for (i, item) in list.enumerated() {
                let path = "warm[\(i)]"
                guard case .object = item.kind else { throw r.fail(path, at: item.at, "must be an object, not \(item.kindName)") }
                try r.keys(item, path + ".", section: "warm[]")
                guard let url = try r.string(item, "url", path: path + ".") else { throw r.fail(path + ".url", at: item.at, "is required") }
                guard let target = try? RequestValidator.parse(url: url) else {
                    throw r.fail(path + ".url", at: item["url"]!.at, "must be an http or https URL")
                }
                let minIdle = try r.int(item, "minIdle", path: path + ".", min: 1, max: 1000) ?? 1
                let most = c.pool.agent(forDomain: target.domain, host: target.host).connections
                guard minIdle <= most else {
                    throw r.fail(path + ".minIdle", at: item["minIdle"]!.at,
                                 "is \(minIdle), more than the \(most) connections \(target.domain) may have")
                }
                c.pool.warm.append(WarmTarget(url: url, minIdle: minIdle))
            }
        }
        if let h2 = try r.object(root, "http2") {
            try r.keys(h2, "http2.", section: "http2")
            if let v = try r.bool(h2, "enabled", path: "http2.") { c.pool.http2Enabled = v }
            if let v = try r.int(h2, "maxConcurrentStreams", path: "http2.", min: 1) { c.pool.http2MaxConcurrentStreams = v }
        }
        var combinedBundle: [UInt8]?
        if let tls = try r.object(root, "tls") {
            try r.keys(tls, "tls.", section: "tls")
            combinedBundle = try loadTLS(tls, r, into: &c)
            if let v = try r.bool(tls, "allowInsecure", path: "tls.") { c.pool.allowInsecure = v }
        }
        if let http = try r.object(root, "http") {
            try r.keys(http, "http.", section: "http")
            try loadHTTP(http, r, into: &c)
        }
        if let metrics = try r.object(root, "metrics") {
            try r.keys(metrics, "metrics.", section: "metrics")
            c.metricsListen = try r.loopback(metrics, "listen", path: "metrics.")
        }
        if let limits = try r.object(root, "limits") {
            try r.keys(limits, "limits.", section: "limits")
            try loadLimits(limits, r, into: &c)
        }
        if let pem = combinedBundle {
            do { c.pool.caFile = try ConfigTLS.install(pem, directory: c.pool.spillDirectory) } catch {
                throw r.fail("tls.extraCaFile", at: root["tls"]!.at, "cannot be used: \(error.description) (limits.spillDirectory)")
            }
        }
        return c
    }

    /// `tls.caFile` and `tls.extraCaFile`: each file must be readable and hold PEM
    /// certificates. Returns, when CAs are added, the base bundle (`tls.caFile`, else the
    /// system's) followed by them, for `ConfigTLS.install`.
    static func loadTLS(_ tls: ConfigJSON, _ r: ConfigReader, into c: inout DaemonConfig) throws(ConfigError) -> [UInt8]? {
        var base: [UInt8]?
        if let path = try r.string(tls, "caFile", path: "tls.") {
            do { base = try ConfigTLS.bundle(path) } catch {
                throw r.fail("tls.caFile", at: tls["caFile"]!.at, "cannot be used: \(error.description)")
            }
            c.caFile = path
            c.pool.caFile = path
        }
        let extraPaths = try r.strings(tls, "extraCaFile", path: "tls.")
        guard !extraPaths.isEmpty else { return nil }
        var extra: [[UInt8]] = []
        for e in extraPaths {
            do { extra.append(try ConfigTLS.bundle(e.value)) } catch {
                throw r.fail(e.path, at: e.at, "cannot be used: \(error.description)")
            }
        }
        if base == nil {
            do { base = try ConfigTLS.systemBundle() } catch {
                throw r.fail("tls.extraCaFile", at: tls["extraCaFile"]!.at,
                             "has no system bundle to add to: \(error.description); name one with tls.caFile")
            }
        }
        c.extraCaFiles = extraPaths.map(\.value)
        return ConfigTLS.combined(base!, extra)
    }

    /// The `http` section. A TCP listener cannot tell which local user connects, so it is
    /// refused where `allowUsers`/`allowGroups` restrict who may use the daemon.
    static func loadHTTP(_ http: ConfigJSON, _ r: ConfigReader, into c: inout DaemonConfig) throws(ConfigError) {
        let p = "http."
        if let v = try r.bool(http, "enabled", path: p) { c.http.enabled = v }
        c.http.socket = try r.string(http, "socket", path: p)
        c.http.listen = try r.loopback(http, "listen", path: p)
        if let v = try r.bool(http, "annotate", path: p) { c.http.annotate = v }
        if let v = try r.int(http, "headerTimeout", path: p, min: 100, max: 3_600_000) { c.http.headerTimeoutMs = v }
        if let v = try r.int(http, "idleTimeout", path: p, min: 100, max: 86_400_000) { c.http.idleTimeoutMs = v }
        if let socket = c.http.socket, socket == c.socket {
            throw r.fail("http.socket", at: http["socket"]!.at, "must differ from socket (\(socket)): the two speak different protocols")
        }
        if c.http.listen != nil && (!c.allowUsers.isEmpty || !c.allowGroups.isEmpty) {
            throw r.fail("http.listen", at: http["listen"]!.at,
                         "cannot be used with allowUsers or allowGroups: any local user can connect to a TCP port, and its user is not known; use http.socket")
        }
    }

    static func loadLimits(_ limits: ConfigJSON, _ r: ConfigReader, into c: inout DaemonConfig) throws(ConfigError) {
        let p = "limits."
        if let v = try r.int(limits, "maxFrame", path: p, min: 4096, max: 16 << 20) { c.maxFrame = v }
        if let v = try r.int(limits, "maxInFlightPerClient", path: p, min: 1, max: 65536) { c.maxInFlightPerClient = v }
        if let v = try r.int(limits, "streamWindow", path: p, min: 1024, max: Int(Int32.max)) { c.streamWindow = v }
        if let v = try r.int(limits, "responseBuffer", path: p, min: 16384, max: 1 << 30) { c.pool.maxResponseBuffer = v }
        if let v = try r.int(limits, "maxDomains", path: p, min: 1, max: 1_000_000) { c.pool.maxTrackedDomains = v }
        if let v = try r.int(limits, "forgetIdleDomainsAfter", path: p, min: 1000) { c.pool.forgetIdleDomainsMs = v }
        if let v = try r.int(limits, "dnsCacheTimeout", path: p, min: 0, max: 86400) { c.pool.dnsCacheTimeoutS = v }
        if let v = try r.int(limits, "spillMax", path: p, min: 0, max: Int(Int32.max)) { c.pool.maxSpillBytes = v }
        if let v = try r.int(limits, "spillTotalMax", path: p, min: 0, max: Int.max) { c.pool.maxSpillTotalBytes = v }
        if let v = try r.int(limits, "spillUserMax", path: p, min: 0, max: Int.max) { c.pool.maxSpillUserBytes = v }
        if let v = try r.int(limits, "bodyTimeout", path: p, min: 100) { c.pool.bodyTimeoutMs = v }
        if let v = try r.int(limits, "maxClientsPerUser", path: p, min: 1) { c.maxClientsPerUser = v }
        if let v = try r.string(limits, "spillDirectory", path: p) {
            // Checked now, not found out per response (spilling would silently stay off).
            var st = stat()
            guard stat(v, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR, access(v, W_OK) == 0 else {
                throw r.fail("limits.spillDirectory", at: limits["spillDirectory"]!.at,
                             "must be a directory reckerd can write to; \(v) is not")
            }
            c.pool.spillDirectory = v
        }
        if let v = try r.int(limits, "maxHeaders", path: p, min: 1, max: 65535) { c.pool.headerLimits.count = v }
        if let v = try r.int(limits, "maxHeaderBytes", path: p, min: 1024, max: 16 << 20) { c.pool.headerLimits.bytes = v }
        // A response head within the header limits must fit one frame: 4 bytes of lengths
        // per header, and room for the fixed fields.
        let head = c.pool.headerLimits.bytes + 4 * c.pool.headerLimits.count + 64
        guard head <= c.maxFrame else {
            throw r.fail("limits.maxHeaderBytes", at: (limits["maxHeaderBytes"] ?? limits["maxFrame"] ?? limits).at,
                         "with limits.maxHeaders, a head of up to \(head) bytes must fit limits.maxFrame (\(c.maxFrame))")
        }
    }
}
