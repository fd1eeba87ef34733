import ReckerPool
import ReckerProtocol
import ReckerSession

/// The stats document in its three forms: JSON (schema 1, docs/PROTOCOL.md §2.12),
/// Prometheus text format, and a table for people.
struct StatsReport: Sendable {
    let stats: PoolStats
    let uptime: Double
    let clients: Int
    /// The event loop's passes since the start, and the heap in use now (PROTOCOL.md 2.12).
    let loopWakeups: UInt64
    let heapBytes: Int
    let users: [UInt32: UserCounts]

    /// Responses per client uid, and how many of them went out on a reused connection.
    struct UserCounts: Sendable {
        var requests = 0
        var reused = 0
    }

    /// STATS_REQUEST format byte values.
    typealias Format = StatsFormat

    /// Whose per-uid counts a stats request may see: every uid's (root and the daemon's
    /// own user), or only the asker's own — one user's activity is not another's business.
    enum Viewer: Hashable, Sendable {
        case everyone
        case only(UInt32?)

        /// The viewer a client with this uid (nil: unknown credentials) is.
        static func of(uid: UInt32?, daemonUID: UInt32) -> Viewer {
            guard let uid else { return .only(nil) }
            return uid == 0 || uid == daemonUID ? .everyone : .only(uid)
        }
    }

    /// This report as `viewer` may see it.
    func seen(by viewer: Viewer) -> StatsReport {
        guard case .only(let uid) = viewer else { return self }
        return StatsReport(stats: stats, uptime: uptime, clients: clients, loopWakeups: loopWakeups, heapBytes: heapBytes,
                           users: users.filter { $0.key == uid })
    }

    func render(_ format: Format) -> [UInt8] {
        switch format {
        case .json: json
        case .prometheus: Array(prometheus.utf8)
        case .table: Array(table.utf8)
        }
    }

    private static func fields(_ d: DomainStats) -> [(String, ConfigJSON)] {
        func q(_ x: Quantiles) -> ConfigJSON {
            .object([("p50", .int(Int(x.p50))), ("p90", .int(Int(x.p90))), ("p99", .int(Int(x.p99))),
                     ("sum", .int(Int(x.sum))), ("count", .int(Int(x.count)))])
        }
        var f: [(String, ConfigJSON)] = [
            ("requests_total", .int(d.requestsTotal)), ("requests_in_flight", .int(d.requestsInFlight)),
            ("requests_queued", .int(d.requestsQueued)), ("connections_created", .int(d.connectionsCreated)),
            ("connections_open", .int(d.connectionsOpen)), ("connections_idle", .int(d.connectionsIdle)),
            ("connections_busy", .int(d.connectionsBusy)), ("reuse_ratio", Self.json((d.reuseRatio * 10000).rounded() / 10000)),
            ("connect_failures", .int(d.connectFailures)), ("timeouts", .int(d.timeouts)), ("retries", .int(d.retries)),
            ("errors_total", .int(d.errorsTotal)), ("bytes_in", .int(d.bytesIn)), ("bytes_out", .int(d.bytesOut)),
            ("latency_us", q(d.latency)), ("queue_time_us", q(d.queueTime)),
        ]
        if let v = d.httpVersion { f.append(("http_version", .string(v))) }
        return f
    }

    /// A number as JSON: whole numbers without a fraction, others in Swift's shortest form.
    private static func json(_ v: Double) -> ConfigJSON {
        v.isFinite ? ConfigJSON(.number(number(v))) : .int(0)
    }

    /// The JSON document, keys sorted at every level, on one line.
    var json: [UInt8] {
        var doc = Self.fields(stats.total)
        doc.append(("schema", .int(1)))
        doc.append(("version", .string(Message.release)))
        doc.append(("libcurl", .string(Libcurl.version)))
        doc.append(("uptime_s", Self.json((uptime * 1000).rounded() / 1000)))
        doc.append(("clients", .int(clients)))
        doc.append(("loop_wakeups", .int(Int(clamping: loopWakeups))))
        doc.append(("heap_bytes", .int(heapBytes)))
        doc.append(("domains", .object(stats.domains.keys.sorted().map { ($0, .object(Self.fields(stats.domains[$0]!))) })))
        doc.append(("users", .object(users.keys.sorted().map { uid in
            (String(uid), .object([("requests_total", .int(users[uid]!.requests)), ("reused", .int(users[uid]!.reused))]))
        })))
        return Array(ConfigJSON.object(doc).compact.utf8)
    }

    /// Prometheus text exposition format 0.0.4; every per-domain series has a `domain` label.
    var prometheus: String {
        var out = ""
        let domains = stats.domains.keys.sorted()
        func label(_ d: String) -> String {
            var escaped = ""
            for c in d {
                if c == "\\" || c == "\"" { escaped.append("\\") }
                escaped.append(c)
            }
            return "domain=\"" + escaped + "\""
        }
        func family(_ name: String, _ type: String, _ help: String, _ value: (DomainStats) -> Double) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for d in domains { out += "\(name){\(label(d))} \(Self.number(value(stats.domains[d]!)))\n" }
        }
        out += "# HELP reckerd_build_info reckerd's release, protocol and the libcurl it runs on.\n# TYPE reckerd_build_info gauge\n"
        out += "reckerd_build_info{version=\"\(Message.release)\",protocol=\"\(Message.version)\",libcurl=\"\(Libcurl.version)\"} 1\n"
        out += "# HELP reckerd_uptime_seconds Seconds since the daemon started.\n# TYPE reckerd_uptime_seconds gauge\n"
        out += "reckerd_uptime_seconds \(Self.number(uptime))\n"
        out += "# HELP reckerd_clients Client connections open now.\n# TYPE reckerd_clients gauge\nreckerd_clients \(clients)\n"
        out += "# HELP reckerd_loop_wakeups_total Times the event loop woke; climbing fast while idle means a spin.\n"
        out += "# TYPE reckerd_loop_wakeups_total counter\nreckerd_loop_wakeups_total \(loopWakeups)\n"
        out += "# HELP reckerd_heap_bytes Heap bytes in use now (glibc mallinfo2).\n# TYPE reckerd_heap_bytes gauge\nreckerd_heap_bytes \(heapBytes)\n"
        family("reckerd_requests_total", "counter", "Requests sent upstream or refused by the pool.") { Double($0.requestsTotal) }
        family("reckerd_requests_in_flight", "gauge", "Requests running upstream now.") { Double($0.requestsInFlight) }
        family("reckerd_requests_queued", "gauge", "Requests waiting for a connection now.") { Double($0.requestsQueued) }
        family("reckerd_upstream_connections_created_total", "counter", "Upstream connections opened.") { Double($0.connectionsCreated) }
        out += "# HELP reckerd_upstream_connections Upstream connections open now, by state.\n# TYPE reckerd_upstream_connections gauge\n"
        for d in domains {
            let s = stats.domains[d]!
            out += "reckerd_upstream_connections{\(label(d)),state=\"idle\"} \(s.connectionsIdle)\n"
            out += "reckerd_upstream_connections{\(label(d)),state=\"busy\"} \(s.connectionsBusy)\n"
        }
        family("reckerd_connection_reuse_ratio", "gauge", "1 - connections created / requests.") { $0.reuseRatio }
        family("reckerd_upstream_connect_failures_total", "counter", "Failed DNS, connect or TLS attempts.") { Double($0.connectFailures) }
        family("reckerd_timeouts_total", "counter", "Requests that ran out of time (connect, total or queue).") { Double($0.timeouts) }
        family("reckerd_retries_total", "counter", "Requests resent on a fresh connection after a reused one was found dead.") { Double($0.retries) }
        family("reckerd_errors_total", "counter", "Requests that ended in an error.") { Double($0.errorsTotal) }
        family("reckerd_received_bytes_total", "counter", "Response body bytes received from upstreams.") { Double($0.bytesIn) }
        family("reckerd_sent_bytes_total", "counter", "Request body bytes sent to upstreams.") { Double($0.bytesOut) }
        for (name, help, pick) in [("reckerd_request_duration_seconds", "Whole-request latency.", \DomainStats.latency),
                                   ("reckerd_queue_wait_seconds", "Time waited for a connection.", \DomainStats.queueTime)] {
            out += "# HELP \(name) \(help)\n# TYPE \(name) summary\n"
            for d in domains {
                let q = stats.domains[d]![keyPath: pick]
                for (p, v) in [("0.5", q.p50), ("0.9", q.p90), ("0.99", q.p99)] {
                    out += "\(name){\(label(d)),quantile=\"\(p)\"} \(Self.number(Double(v) / 1e6))\n"
                }
                out += "\(name)_sum{\(label(d))} \(Self.number(Double(q.sum) / 1e6))\n"
                out += "\(name)_count{\(label(d))} \(q.count)\n"
            }
        }
        out += "# HELP reckerd_user_requests_total Responses per client uid.\n# TYPE reckerd_user_requests_total counter\n"
        for uid in users.keys.sorted() { out += "reckerd_user_requests_total{uid=\"\(uid)\"} \(users[uid]!.requests)\n" }
        out += "# HELP reckerd_user_reused_total Responses per client uid sent on a reused connection.\n# TYPE reckerd_user_reused_total counter\n"
        for uid in users.keys.sorted() { out += "reckerd_user_reused_total{uid=\"\(uid)\"} \(users[uid]!.reused)\n" }
        return out
    }

    /// A table for `recker stats`.
    var table: String {
        let head = ["domain", "http", "open", "idle", "busy", "queued", "in-flight", "requests", "created", "reuse",
                    "errors", "p50 ms", "p99 ms"]
        func row(_ name: String, _ s: DomainStats) -> [String] {
            [name, s.httpVersion ?? "-", "\(s.connectionsOpen)", "\(s.connectionsIdle)", "\(s.connectionsBusy)",
             "\(s.requestsQueued)", "\(s.requestsInFlight)", "\(s.requestsTotal)", "\(s.connectionsCreated)",
             Self.fixed(s.reuseRatio * 100, digits: 0) + "%", "\(s.errorsTotal)",
             Self.fixed(Double(s.latency.p50) / 1000, digits: 2), Self.fixed(Double(s.latency.p99) / 1000, digits: 2)]
        }
        var rows = [head]
        for d in stats.domains.keys.sorted() { rows.append(row(d, stats.domains[d]!)) }
        rows.append(row("(all)", stats.total))
        let widths = head.indices.map { i in rows.map { $0[i].count }.max()! }
        var out = "reckerd \(Message.release) on libcurl \(Libcurl.version): up \(Self.fixed(uptime, digits: 0)) s, "
            + "\(clients) client\(clients == 1 ? "" : "s") connected\n"
        for r in rows {
            out += r.enumerated().map { i, cell in
                i == 0 ? cell + String(repeating: " ", count: widths[i] - cell.count)
                       : String(repeating: " ", count: widths[i] - cell.count) + cell
            }.joined(separator: "  ") + "\n"
        }
        return out
    }

    /// `v` rounded to `digits` decimals, as printf's %.Nf writes it (finite values).
    static func fixed(_ v: Double, digits: Int) -> String {
        guard v.isFinite else { return "0" }
        var scale = 1.0
        for _ in 0 ..< digits { scale *= 10 }
        let scaled = (abs(v) * scale).rounded()
        guard scaled < 9e18 else { return String(v) }
        let n = Int64(scaled)
        let whole = n / Int64(scale)
        var text = (v < 0 && n != 0 ? "-" : "") + String(whole)
        if digits > 0 {
            let fraction = String(n % Int64(scale))
            text += "." + String(repeating: "0", count: digits - fraction.count) + fraction
        }
        return text
    }

    private static func number(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(v)
    }
}
