/// The keys each section of the config may hold, and the hints for a key that is not one
/// of them: a key put at the wrong level ("did you mean agent.keepAlive?") or misspelt.
enum ConfigSchema {
    static let agentKeys = ["connections", "keepAlive", "keepAliveTimeout", "connectTimeout", "readTimeout", "maxLifetime",
                            "maxQueue", "queueTimeout"]

    /// Each section by the path messages give it ("" is the top level), in the order a
    /// key found in several is suggested.
    static let sections: [(path: String, keys: [String])] = [
        ("", ["socket", "logLevel", "agent", "domains", "warm", "http2", "tls", "limits", "drainTimeout", "allowUsers",
              "allowGroups", "upstreamProxy", "noProxy", "policy", "http", "metrics"]),
        ("agent", agentKeys + ["perDomainPooling"]),
        ("http2", ["enabled", "maxConcurrentStreams"]),
        ("tls", ["caFile", "extraCaFile", "allowInsecure"]),
        ("limits", ["maxFrame", "maxInFlightPerClient", "streamWindow", "responseBuffer", "maxDomains",
                    "forgetIdleDomainsAfter", "dnsCacheTimeout", "spillMax", "spillTotalMax", "spillUserMax", "spillDirectory", "maxHeaders",
                    "maxHeaderBytes", "bodyTimeout", "maxClientsPerUser"]),
        ("policy", ["denyLinkLocal", "denyPrivate", "denyLoopback"]),
        ("warm[]", ["url", "minIdle"]),
        ("domains.HOST", agentKeys + ["originate"]),
        ("http", ["enabled", "socket", "listen", "annotate", "headerTimeout", "idleTimeout"]),
        ("metrics", ["listen"]),
    ]

    /// The keys of the section at `section` (as in `sections`).
    static func keys(_ section: String) -> [String] {
        sections.first { $0.path == section }?.keys ?? []
    }

    /// Why `key` (at `path`, e.g. "agent.keepalive") is refused in `section`, with the
    /// nearest known setting when one is close.
    static func unknownKeyMessage(_ key: String, path: String, section: String) -> String {
        let here = keys(section)
        let prefix = String(path.dropLast(key.count))
        let lower = key.lowercased()
        let elsewhere = sections.filter { $0.path != section }
        func spelled(_ section: String, _ key: String) -> String { section.isEmpty ? key : "\(section).\(key)" }

        if let same = here.first(where: { $0.lowercased() == lower }) {
            return "\(path) is not a known setting; did you mean \(prefix + same)? (keys are case-sensitive)"
        }
        let level = section.isEmpty ? "a top-level setting" : "a setting of \(section)"
        for s in elsewhere {
            if let other = s.keys.first(where: { $0.lowercased() == lower }) {
                return "\(path) is not \(level); did you mean \(spelled(s.path, other))?"
            }
        }
        if let near = nearest(lower, in: here) {
            return "\(path) is not a known setting; did you mean \(prefix + near)?"
        }
        for s in elsewhere {
            if let near = nearest(lower, in: s.keys) {
                return "\(path) is not \(level); did you mean \(spelled(s.path, near))?"
            }
        }
        return "\(path) is not a known setting (known here: \(here.sorted().joined(separator: ", ")))"
    }

    /// The candidate closest to `word` (lowercased), if within a few edits for its length.
    static func nearest(_ word: String, in candidates: [String]) -> String? {
        guard word.count <= 64 else { return nil }
        let limit = word.count <= 4 ? 1 : word.count <= 8 ? 2 : 3
        let scored = candidates.map { ($0, distance(Array(word), Array($0.lowercased()))) }
        guard let best = scored.min(by: { $0.1 < $1.1 }), best.1 <= limit else { return nil }
        return best.0
    }

    /// Edits (insert, delete, replace, swap two neighbours) that turn `a` into `b`.
    static func distance(_ a: [Character], _ b: [Character]) -> Int {
        if a.isEmpty || b.isEmpty { return max(a.count, b.count) }
        var rows = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0 ... a.count { rows[i][0] = i }
        for j in 0 ... b.count { rows[0][j] = j }
        for i in 1 ... a.count {
            for j in 1 ... b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                rows[i][j] = min(rows[i - 1][j] + 1, rows[i][j - 1] + 1, rows[i - 1][j - 1] + cost)
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                    rows[i][j] = min(rows[i][j], rows[i - 2][j - 2] + 1)
                }
            }
        }
        return rows[a.count][b.count]
    }
}
