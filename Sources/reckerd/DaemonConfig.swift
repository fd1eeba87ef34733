import Foundation
import ReckerPool

/// Everything `config/reckerd.json` can say. Defaults equal the shipped file.
struct DaemonConfig: Equatable {
    var socket: String?
    var logLevel = "info"
    var pool = PoolOptions()
    var maxFrame = 1 << 20
    var maxInFlightPerClient = 256
    var streamWindow = 256 * 1024
    /// How long a stop waits for requests in flight before failing them.
    var drainTimeoutMs = 10000

    /// The config in force, in the config file's own shape (`reckerd --check-config`).
    var effectiveJSON: String {
        var tls: [String: Any] = [:]
        if let ca = pool.caFile { tls["caFile"] = ca }
        var doc: [String: Any] = [
            "logLevel": logLevel,
            "agent": ["connections": pool.connections, "keepAlive": pool.keepAlive,
                      "keepAliveTimeout": pool.keepAliveTimeoutMs, "connectTimeout": pool.connectTimeoutMs,
                      "perDomainPooling": pool.perDomainPooling, "maxLifetime": pool.maxLifetimeS] as [String: Any],
            "http2": ["enabled": pool.http2Enabled, "maxConcurrentStreams": pool.http2MaxConcurrentStreams] as [String: Any],
            "limits": ["maxFrame": maxFrame, "maxInFlightPerClient": maxInFlightPerClient,
                       "streamWindow": streamWindow, "responseBuffer": pool.maxResponseBuffer],
            "drainTimeout": drainTimeoutMs,
        ]
        if !tls.isEmpty { doc["tls"] = tls }
        if let socket { doc["socket"] = socket }
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
        try r.keys(root, "", allowed: ["socket", "logLevel", "agent", "http2", "tls", "limits", "drainTimeout"])
        c.socket = try r.string(root, "socket")
        if let level = try r.string(root, "logLevel") {
            guard ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(level) else {
                throw r.fail("logLevel", "must be one of trace, debug, info, notice, warning, error, critical")
            }
            c.logLevel = level
        }
        if let v = try r.int(root, "drainTimeout", min: 0) { c.drainTimeoutMs = v }
        if let agent = try r.object(root, "agent") {
            try r.keys(agent, "agent.", allowed: ["connections", "keepAlive", "keepAliveTimeout", "connectTimeout",
                                                  "perDomainPooling", "maxLifetime"])
            if let v = try r.int(agent, "connections", path: "agent.", min: 1) { c.pool.connections = v }
            if let v = try r.bool(agent, "keepAlive", path: "agent.") { c.pool.keepAlive = v }
            if let v = try r.int(agent, "keepAliveTimeout", path: "agent.", min: 1) { c.pool.keepAliveTimeoutMs = v }
            if let v = try r.int(agent, "connectTimeout", path: "agent.", min: 1) { c.pool.connectTimeoutMs = v }
            if let v = try r.bool(agent, "perDomainPooling", path: "agent.") { c.pool.perDomainPooling = v }
            if let v = try r.int(agent, "maxLifetime", path: "agent.", min: 1) { c.pool.maxLifetimeS = v }
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
            try r.keys(limits, "limits.", allowed: ["maxFrame", "maxInFlightPerClient", "streamWindow", "responseBuffer"])
            if let v = try r.int(limits, "maxFrame", path: "limits.", min: 4096, max: 16 << 20) { c.maxFrame = v }
            if let v = try r.int(limits, "maxInFlightPerClient", path: "limits.", min: 1, max: 65536) { c.maxInFlightPerClient = v }
            if let v = try r.int(limits, "streamWindow", path: "limits.", min: 1024, max: Int(Int32.max)) { c.streamWindow = v }
            if let v = try r.int(limits, "responseBuffer", path: "limits.", min: 16384, max: 1 << 30) { c.pool.maxResponseBuffer = v }
        }
        return c
    }

    private struct Reader {
        let source: String

        /// JSONSerialization gives booleans as NSNumber too; their type encoding is "c".
        static func isBool(_ n: NSNumber) -> Bool { String(cString: n.objCType) == "c" }

        func fail(_ key: String, _ why: String) -> ConfigError {
            ConfigError(description: "\(source): \(key) \(why)")
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
