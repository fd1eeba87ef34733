import ReckerPool

/// Typed access to the parsed config for the loader: each refusal names the file, the
/// line and column of the value at fault and its key path.
struct ConfigReader {
    let source: String

    func fail(_ path: String, at: ConfigPosition, _ why: String) -> ConfigError {
        ConfigError(description: "\(source):\(at): \(path) \(why)")
    }

    /// Refuses any key of `object` not in `section`'s keys, with a hint when one is near.
    func keys(_ object: ConfigJSON, _ prefix: String, section: String) throws(ConfigError) {
        guard case .object(let members) = object.kind else { return }
        let allowed = ConfigSchema.keys(section)
        if let unknown = members.first(where: { !allowed.contains($0.key) }) {
            // A key no one would type (a pasted blob) is shown by its start.
            let key = unknown.key.count > 80 ? unknown.key.prefix(80) + "…" : unknown.key
            let message = ConfigSchema.unknownKeyMessage(key, path: prefix + key, section: section)
            throw ConfigError(description: "\(source):\(unknown.keyAt): \(message)")
        }
    }

    /// The member `key` of `o`, nil when absent or null.
    func member(_ o: ConfigJSON, _ key: String) -> ConfigJSON? {
        guard let v = o[key] else { return nil }
        if case .null = v.kind { return nil }
        return v
    }

    func object(_ o: ConfigJSON, _ key: String, path: String = "") throws(ConfigError) -> ConfigJSON? {
        guard let v = member(o, key) else { return nil }
        guard case .object = v.kind else { throw fail(path + key, at: v.at, "must be an object, not \(v.kindName)") }
        return v
    }

    func string(_ o: ConfigJSON, _ key: String, path: String = "") throws(ConfigError) -> String? {
        guard let v = member(o, key) else { return nil }
        guard case .string(let s) = v.kind, !s.isEmpty else { throw fail(path + key, at: v.at, "must be a non-empty string") }
        return s
    }

    func bool(_ o: ConfigJSON, _ key: String, path: String = "") throws(ConfigError) -> Bool? {
        guard let v = member(o, key) else { return nil }
        guard case .bool(let b) = v.kind else { throw fail(path + key, at: v.at, "must be true or false, not \(v.kindName)") }
        return b
    }

    /// A loopback `HOST:PORT` to listen on; anything else is refused with its position.
    func loopback(_ o: ConfigJSON, _ key: String, path: String = "") throws(ConfigError) -> LoopbackAddress? {
        guard let text = try string(o, key, path: path) else { return nil }
        switch LoopbackAddress.parse(text) {
        case .success(let address): return address
        case .failure(let why): throw fail(path + key, at: o[key]!.at, why.message)
        }
    }

    func int(_ o: ConfigJSON, _ key: String, path: String = "", min: Int, max: Int = Int(Int32.max)) throws(ConfigError) -> Int? {
        guard let v = member(o, key) else { return nil }
        guard let i = Self.wholeNumber(v) else { throw fail(path + key, at: v.at, "must be a whole number") }
        guard i >= min && i <= max else { throw fail(path + key, at: v.at, "must be between \(min) and \(max), not \(i)") }
        return i
    }

    /// A JSON number that is whole (`5`, `5.0`, `5e3`) and fits an Int.
    static func wholeNumber(_ v: ConfigJSON) -> Int? {
        guard case .number(let text) = v.kind else { return nil }
        if let i = Int(text) { return i }
        guard let d = Double(text), d.rounded() == d else { return nil }
        return Int(exactly: d)
    }

    /// A string or a list of strings, as a list, each with its own key path and position.
    func strings(_ o: ConfigJSON, _ key: String, path: String = "") throws(ConfigError) -> [(path: String, value: String, at: ConfigPosition)] {
        guard let v = member(o, key) else { return [] }
        switch v.kind {
        case .string(let s) where !s.isEmpty: return [(path + key, s, v.at)]
        case .array(let items):
            var out: [(path: String, value: String, at: ConfigPosition)] = []
            for (i, item) in items.enumerated() {
                guard case .string(let s) = item.kind, !s.isEmpty else {
                    throw fail("\(path)\(key)[\(i)]", at: item.at, "must be a non-empty string")
                }
                out.append(("\(path)\(key)[\(i)]", s, item.at))
            }
            return out
        default: throw fail(path + key, at: v.at, "must be a path or a list of paths")
        }
    }

    /// Agent options in `o`, each absent one taken from `base`.
    func agent(_ o: ConfigJSON, path: String, base: AgentOptions) throws(ConfigError) -> AgentOptions {
        var a = base
        if let v = try int(o, "connections", path: path, min: 1, max: 100_000) { a.connections = v }
        if let v = try bool(o, "keepAlive", path: path) { a.keepAlive = v }
        if let v = try int(o, "keepAliveTimeout", path: path, min: 1) { a.keepAliveTimeoutMs = v }
        if let v = try int(o, "connectTimeout", path: path, min: 1) { a.connectTimeoutMs = v }
        if let v = try int(o, "readTimeout", path: path, min: 1) { a.readTimeoutMs = v }
        if let v = try int(o, "maxLifetime", path: path, min: 1) { a.maxLifetimeS = v }
        if let v = try int(o, "maxQueue", path: path, min: 0, max: 1_000_000) { a.maxQueue = v }
        if let v = try int(o, "queueTimeout", path: path, min: 1) { a.queueTimeoutMs = v }
        return a
    }

    /// A list of user or group names or numeric ids, resolved to ids.
    func ids(_ o: ConfigJSON, _ key: String, what: String, resolve: (String) -> UInt32?) throws(ConfigError) -> [UInt32] {
        guard let v = member(o, key) else { return [] }
        guard case .array(let items) = v.kind else { throw fail(key, at: v.at, "must be a list of names or ids") }
        var out: [UInt32] = []
        for (i, item) in items.enumerated() {
            switch item.kind {
            case .number:
                guard let n = Self.wholeNumber(item), let id = UInt32(exactly: n) else {
                    throw fail("\(key)[\(i)]", at: item.at, "must be a name or an id (0 to \(UInt32.max))")
                }
                out.append(id)
            case .string(let name) where !name.isEmpty:
                if let id = UInt32(name) {
                    out.append(id)
                } else if let id = resolve(name) {
                    out.append(id)
                } else {
                    throw fail("\(key)[\(i)]", at: item.at, "names no known \(what): \(name)")
                }
            default:
                throw fail("\(key)[\(i)]", at: item.at, "must be a name or an id")
            }
        }
        return out
    }
}
