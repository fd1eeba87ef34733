import Foundation
import ReckerPool
import ReckerProtocol

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

    /// The config in force, in the config file's own shape (`reckerd --check-config`).
    var effectiveJSON: String {
        func agent(_ a: AgentOptions) -> [String: Any] {
            ["connections": a.connections, "keepAlive": a.keepAlive, "keepAliveTimeout": a.keepAliveTimeoutMs,
             "connectTimeout": a.connectTimeoutMs, "maxLifetime": a.maxLifetimeS, "maxQueue": a.maxQueue,
             "queueTimeout": a.queueTimeoutMs]
        }
        var global = agent(pool.agent)
        global["perDomainPooling"] = pool.perDomainPooling
        var doc: [String: Any] = [
            "logLevel": logLevel,
            "agent": global,
            "http2": ["enabled": pool.http2Enabled, "maxConcurrentStreams": pool.http2MaxConcurrentStreams] as [String: Any],
            "limits": ["maxFrame": maxFrame, "maxInFlightPerClient": maxInFlightPerClient,
                       "streamWindow": streamWindow, "responseBuffer": pool.maxResponseBuffer,
                       "maxDomains": pool.maxTrackedDomains, "forgetIdleDomainsAfter": pool.forgetIdleDomainsMs,
                       "dnsCacheTimeout": pool.dnsCacheTimeoutS, "spillMax": pool.maxSpillBytes, "spillTotalMax": pool.maxSpillTotalBytes, "bodyTimeout": pool.bodyTimeoutMs, "maxClientsPerUser": maxClientsPerUser,
                       "spillDirectory": pool.spillDirectory, "maxHeaders": pool.headerLimits.count,
                       "maxHeaderBytes": pool.headerLimits.bytes],
            "drainTimeout": drainTimeoutMs,
        ]
        if !pool.domains.isEmpty { doc["domains"] = pool.domains.mapValues(agent) }
        if !pool.warm.isEmpty { doc["warm"] = pool.warm.map { ["url": $0.url, "minIdle": $0.minIdle] as [String: Any] } }
        if let ca = pool.caFile { doc["tls"] = ["caFile": ca] }
        if let socket { doc["socket"] = socket }
        doc["policy"] = ["denyLinkLocal": pool.denyLinkLocal, "denyPrivate": pool.denyPrivate, "denyLoopback": pool.denyLoopback]
        if let proxy = pool.upstreamProxy { doc["upstreamProxy"] = proxy }
        if let noProxy = pool.noProxy { doc["noProxy"] = noProxy }
        if !allowUsers.isEmpty { doc["allowUsers"] = allowUsers }
        if !allowGroups.isEmpty { doc["allowGroups"] = allowGroups }
        let data = (try? JSONSerialization.data(withJSONObject: doc, options: [.sortedKeys, .prettyPrinted])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    /// Where the daemon looks for its config when `--config` is not given.
    static let systemPath = "/etc/reckerd/reckerd.json"
}

/// A config the daemon refuses, with the key path at fault.
struct ConfigError: Error, CustomStringConvertible {
    var description: String
}

/// Reads and checks the JSON config. Unknown keys, wrong types and out-of-range numbers are
/// refused with their key path, so a typo never silently falls back to a default.
enum ConfigLoader {
    static func load(path: String) throws -> DaemonConfig {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw ConfigError(description: "cannot read config \(path): \((error as NSError).localizedDescription)")
        }
        return try parse(data, source: path)
    }

    static func parse(_ data: Data, source: String) throws -> DaemonConfig {
        let any: Any
        do { any = try JSONSerialization.jsonObject(with: data) } catch {
            throw ConfigError(description: "\(source): not valid JSON")
        }
        guard let root = any as? [String: Any] else { throw ConfigError(description: "\(source): the top level must be an object") }
        var c = DaemonConfig()
        let r = Reader(source: source)
        try r.keys(root, "", allowed: ["socket", "logLevel", "agent", "domains", "warm", "http2", "tls", "limits", "drainTimeout",
                                       "allowUsers", "allowGroups", "upstreamProxy", "noProxy", "policy"])
        if let policy = try r.object(root, "policy") {
            try r.keys(policy, "policy.", allowed: ["denyLinkLocal", "denyPrivate", "denyLoopback"])
            if let v = try r.bool(policy, "denyLinkLocal", path: "policy.") { c.pool.denyLinkLocal = v }
            if let v = try r.bool(policy, "denyPrivate", path: "policy.") { c.pool.denyPrivate = v }
            if let v = try r.bool(policy, "denyLoopback", path: "policy.") { c.pool.denyLoopback = v }
        }
        if let proxy = try r.string(root, "upstreamProxy") {
            guard proxy.contains("://") else { throw r.fail("upstreamProxy", "must be a URL such as http://proxy.example:3128") }
            c.pool.upstreamProxy = proxy
        }
        c.pool.noProxy = try r.string(root, "noProxy")
        c.allowUsers = try r.ids(root, "allowUsers") { name in getpwnam(name).map { $0.pointee.pw_uid } }
        c.allowGroups = try r.ids(root, "allowGroups") { name in getgrnam(name).map { $0.pointee.gr_gid } }
        c.socket = try r.string(root, "socket")
        if let level = try r.string(root, "logLevel") {
            guard ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(level) else {
                throw r.fail("logLevel", "must be one of trace, debug, info, notice, warning, error, critical")
            }
            c.logLevel = level
        }
        if let v = try r.int(root, "drainTimeout", min: 0) { c.drainTimeoutMs = v }
        if let agent = try r.object(root, "agent") {
            try r.keys(agent, "agent.", allowed: agentKeys.union(["perDomainPooling"]))
            c.pool.agent = try r.agent(agent, path: "agent.", base: c.pool.agent)
            if let v = try r.bool(agent, "perDomainPooling", path: "agent.") { c.pool.perDomainPooling = v }
        }
        if let domains = try r.object(root, "domains") {
            for (name, value) in domains.sorted(by: { $0.key < $1.key }) {
                let path = "domains.\(name)"
                guard let o = value as? [String: Any] else { throw r.fail(path, "must be an object") }
                guard !name.isEmpty, !name.contains("/"), !name.contains(" ") else {
                    throw r.fail(path, "must be a host or host:port")
                }
                try r.keys(o, path + ".", allowed: agentKeys)
                c.pool.domains[name.lowercased()] = try r.agent(o, path: path + ".", base: c.pool.agent)
            }
        }
        if let warm = root["warm"], !(warm is NSNull) {
            guard let list = warm as? [Any] else { throw r.fail("warm", "must be a list of { \"url\": …, \"minIdle\": … }") }
            for (i, item) in list.enumerated() {
                let path = "warm[\(i)]"
                guard let o = item as? [String: Any] else { throw r.fail(path, "must be an object") }
                try r.keys(o, path + ".", allowed: ["url", "minIdle"])
                guard let url = try r.string(o, "url", path: path + ".") else { throw r.fail(path + ".url", "is required") }
                guard let target = try? RequestValidator.parse(url: url) else { throw r.fail(path + ".url", "must be an http or https URL") }
                let minIdle = try r.int(o, "minIdle", path: path + ".", min: 1, max: 1000) ?? 1
                let most = c.pool.agent(forDomain: target.domain, host: target.host).connections
                guard minIdle <= most else {
                    throw r.fail(path + ".minIdle", "is \(minIdle), more than the \(most) connections \(target.domain) may have")
                }
                c.pool.warm.append(WarmTarget(url: url, minIdle: minIdle))
            }
        }
        if let h2 = try r.object(root, "http2") {
            try r.keys(h2, "http2.", allowed: ["enabled", "maxConcurrentStreams"])
            if let v = try r.bool(h2, "enabled", path: "http2.") { c.pool.http2Enabled = v }
            if let v = try r.int(h2, "maxConcurrentStreams", path: "http2.", min: 1) { c.pool.http2MaxConcurrentStreams = v }
        }
        if let tls = try r.object(root, "tls") {
            try r.keys(tls, "tls.", allowed: ["caFile"])
            c.pool.caFile = try r.string(tls, "caFile", path: "tls.")
        }
        if let limits = try r.object(root, "limits") {
            try r.keys(limits, "limits.", allowed: ["maxFrame", "maxInFlightPerClient", "streamWindow", "responseBuffer",
                                                    "maxDomains", "forgetIdleDomainsAfter", "dnsCacheTimeout", "spillMax", "spillTotalMax", "spillDirectory", "maxHeaders",
                                                    "maxHeaderBytes", "bodyTimeout", "maxClientsPerUser"])
            if let v = try r.int(limits, "maxFrame", path: "limits.", min: 4096, max: 16 << 20) { c.maxFrame = v }
            if let v = try r.int(limits, "maxInFlightPerClient", path: "limits.", min: 1, max: 65536) { c.maxInFlightPerClient = v }
            if let v = try r.int(limits, "streamWindow", path: "limits.", min: 1024, max: Int(Int32.max)) { c.streamWindow = v }
            if let v = try r.int(limits, "responseBuffer", path: "limits.", min: 16384, max: 1 << 30) { c.pool.maxResponseBuffer = v }
            if let v = try r.int(limits, "maxDomains", path: "limits.", min: 1, max: 1_000_000) { c.pool.maxTrackedDomains = v }
            if let v = try r.int(limits, "forgetIdleDomainsAfter", path: "limits.", min: 1000) { c.pool.forgetIdleDomainsMs = v }
            if let v = try r.int(limits, "dnsCacheTimeout", path: "limits.", min: 0, max: 86400) { c.pool.dnsCacheTimeoutS = v }
            if let v = try r.int(limits, "spillMax", path: "limits.", min: 0, max: Int(Int32.max)) { c.pool.maxSpillBytes = v }
            if let v = try r.int(limits, "spillTotalMax", path: "limits.", min: 0, max: Int.max) { c.pool.maxSpillTotalBytes = v }
            if let v = try r.int(limits, "bodyTimeout", path: "limits.", min: 100) { c.pool.bodyTimeoutMs = v }
            if let v = try r.int(limits, "maxClientsPerUser", path: "limits.", min: 1) { c.maxClientsPerUser = v }
            if let v = try r.string(limits, "spillDirectory", path: "limits.") { c.pool.spillDirectory = v }
            if let v = try r.int(limits, "maxHeaders", path: "limits.", min: 1, max: 65535) { c.pool.headerLimits.count = v }
            if let v = try r.int(limits, "maxHeaderBytes", path: "limits.", min: 1024, max: 16 << 20) { c.pool.headerLimits.bytes = v }
            // A response head within the header limits must fit one frame: 4 bytes of lengths
            // per header, and room for the fixed fields.
            let head = c.pool.headerLimits.bytes + 4 * c.pool.headerLimits.count + 64
            guard head <= c.maxFrame else {
                throw r.fail("limits.maxHeaderBytes", "with limits.maxHeaders, a head of up to \(head) bytes must fit limits.maxFrame (\(c.maxFrame))")
            }
        }
        return c
    }

    static let agentKeys: Set<String> = ["connections", "keepAlive", "keepAliveTimeout", "connectTimeout",
                                         "maxLifetime", "maxQueue", "queueTimeout"]

    private struct Reader {
        let source: String

        /// JSONSerialization gives booleans as NSNumber too; their type encoding is "c".
        static func isBool(_ n: NSNumber) -> Bool { String(cString: n.objCType) == "c" }

        func fail(_ key: String, _ why: String) -> ConfigError {
            ConfigError(description: "\(source): \(key) \(why)")
        }

        /// Agent options at `path`, each absent one taken from `base`.
        func agent(_ o: [String: Any], path: String, base: AgentOptions) throws -> AgentOptions {
            var a = base
            if let v = try int(o, "connections", path: path, min: 1, max: 100_000) { a.connections = v }
            if let v = try bool(o, "keepAlive", path: path) { a.keepAlive = v }
            if let v = try int(o, "keepAliveTimeout", path: path, min: 1) { a.keepAliveTimeoutMs = v }
            if let v = try int(o, "connectTimeout", path: path, min: 1) { a.connectTimeoutMs = v }
            if let v = try int(o, "maxLifetime", path: path, min: 1) { a.maxLifetimeS = v }
            if let v = try int(o, "maxQueue", path: path, min: 0, max: 1_000_000) { a.maxQueue = v }
            if let v = try int(o, "queueTimeout", path: path, min: 1) { a.queueTimeoutMs = v }
            return a
        }

        /// A list of user or group names or numeric ids, resolved to ids.
        func ids(_ o: [String: Any], _ key: String, resolve: (String) -> UInt32?) throws -> [UInt32] {
            guard let v = o[key], !(v is NSNull) else { return [] }
            guard let list = v as? [Any] else { throw fail(key, "must be a list of names or ids") }
            return try list.enumerated().map { i, item in
                if let n = item as? NSNumber, !Self.isBool(n), n.int64Value >= 0, n.int64Value <= Int64(UInt32.max) {
                    return UInt32(n.int64Value)
                }
                guard let name = item as? String, !name.isEmpty else { throw fail("\(key)[\(i)]", "must be a name or an id") }
                if let id = UInt32(name) { return id }
                guard let id = resolve(name) else { throw fail("\(key)[\(i)]", "names no known \(key == "allowUsers" ? "user" : "group"): \(name)") }
                return id
            }
        }

        func keys(_ object: [String: Any], _ path: String, allowed: Set<String>) throws {
            if let unknown = object.keys.sorted().first(where: { !allowed.contains($0) }) {
                throw fail(path + unknown, "is not a known setting (known: \(allowed.sorted().joined(separator: ", ")))")
            }
        }

        func object(_ o: [String: Any], _ key: String) throws -> [String: Any]? {
            guard let v = o[key], !(v is NSNull) else { return nil }
            guard let d = v as? [String: Any] else { throw fail(key, "must be an object") }
            return d
        }

        func string(_ o: [String: Any], _ key: String, path: String = "") throws -> String? {
            guard let v = o[key], !(v is NSNull) else { return nil }
            guard let s = v as? String, !s.isEmpty else { throw fail(path + key, "must be a non-empty string") }
            return s
        }

        func bool(_ o: [String: Any], _ key: String, path: String = "") throws -> Bool? {
            guard let v = o[key], !(v is NSNull) else { return nil }
            guard let n = v as? NSNumber, Self.isBool(n) else { throw fail(path + key, "must be true or false") }
            return n.boolValue
        }

        func int(_ o: [String: Any], _ key: String, path: String = "", min: Int, max: Int = Int(Int32.max)) throws -> Int? {
            guard let v = o[key], !(v is NSNull) else { return nil }
            guard let n = v as? NSNumber, !Self.isBool(n),
                  n.doubleValue == n.doubleValue.rounded() else { throw fail(path + key, "must be a whole number") }
            let i = n.intValue
            guard i >= min && i <= max else { throw fail(path + key, "must be between \(min) and \(max), not \(i)") }
            return i
        }
    }
}
