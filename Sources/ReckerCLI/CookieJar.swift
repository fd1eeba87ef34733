#if canImport(Glibc)
import Glibc
#endif

/// curl's cookie engine, kept by the `recker` process for one invocation (never by the
/// daemon, whose connections every user shares): cookies read with `-b FILE` (Netscape
/// format or `Set-Cookie:` lines), taken from every response (each hop of `-L` too), sent
/// by RFC 6265's domain, path, secure and expiry rules, and written with `-c FILE`, in
/// curl 7.88's orders and file format.
final class CookieJar {
    struct Cookie: Equatable {
        var name: String
        var value: String
        /// Lower case, without a leading dot; nil for a `Set-Cookie:` line read from a file
        /// (sent to every host, as curl does).
        var domain: String?
        /// Set with a Domain attribute: also sent to its subdomains.
        var includeSubdomains: Bool
        var path: String
        var secure: Bool
        var httpOnly: Bool
        /// Seconds since the epoch; 0 for a session cookie.
        var expires: Int64
        /// The order cookies were made in (curl's tiebreak, newest first).
        var created: Int
    }

    private(set) var cookies: [Cookie] = []
    private var lastCreated = 0
    /// The clock, in seconds since the epoch.
    let now: () -> Int64

    init(now: @escaping () -> Int64 = { Int64(time(nil)) }) { self.now = now }

    // MARK: - reading a file

    /// Reads a cookie file as curl's `-b FILE` does: Netscape lines (tab-separated,
    /// `#HttpOnly_` kept, other `#` lines skipped) and `Set-Cookie:` header lines; with
    /// `junkSession` (-j) session cookies are left out.
    func load(_ bytes: [UInt8], junkSession: Bool) {
        let text = String(decoding: bytes, as: UTF8.self)
        for raw in text.split(omittingEmptySubsequences: true, whereSeparator: \.isNewline) {
            var line = Substring(raw)
            if line.lowercased().hasPrefix("set-cookie:") {
                receive(String(line.dropFirst("set-cookie:".count)), host: nil, path: "/", secureOrigin: true)
                continue
            }
            var httpOnly = false
            if line.hasPrefix("#HttpOnly_") {
                httpOnly = true
                line = line.dropFirst("#HttpOnly_".count)
            } else if line.hasPrefix("#") {
                continue
            }
            let f = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard f.count >= 7, let expires = Int64(f[4]) else { continue }
            if junkSession && expires == 0 { continue }
            var domain = f[0].lowercased()
            if domain.hasPrefix(".") { domain.removeFirst() }
            let cookie = Cookie(name: String(f[5]), value: f[6 ..< f.count].joined(separator: "\t"), domain: domain,
                                includeSubdomains: f[1].uppercased() == "TRUE", path: String(f[2]),
                                secure: f[3].uppercased() == "TRUE", httpOnly: httpOnly, expires: expires, created: 0)
            store(cookie)
        }
    }

    // MARK: - Set-Cookie

    /// Takes a `Set-Cookie` value received from `url` (RFC 6265 §5.2, §5.3).
    func receive(_ header: String, from url: URLText.Parts) {
        let path = url.target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0]
        receive(header, host: Self.host(url), path: String(path), secureOrigin: Self.secureContext(url))
    }

    private func receive(_ header: String, host: String?, path requestPath: String, secureOrigin: Bool) {
        var parts = header.split(separator: ";", omittingEmptySubsequences: false).map { String($0).trimming(" \t") }
        guard !parts.isEmpty, let eq = parts[0].firstIndex(of: "=") else { return }
        let name = String(parts[0][..<eq]).trimming(" \t")
        let value = String(parts[0][parts[0].index(after: eq)...]).trimming(" \t")
        guard !name.isEmpty else { return }
        parts.removeFirst()
        var domain = host
        var includeSubdomains = false
        var path: String?
        var secure = false
        var httpOnly = false
        var expires: Int64 = 0
        var maxAge: Int64?
        for attribute in parts {
            let (key, v): (String, String) = attribute.firstIndex(of: "=").map {
                (String(attribute[..<$0]).trimming(" \t").lowercased(), String(attribute[attribute.index(after: $0)...]).trimming(" \t"))
            } ?? (attribute.lowercased(), "")
            switch key {
            case "domain":
                var d = v.lowercased()
                if d.hasPrefix(".") { d.removeFirst() }
                guard !d.isEmpty else { continue }
                if let host {
                    // The host must be the domain or inside it, and a domain of one label
                    // (a top-level one) only for that very host.
                    guard host == d || (host.hasSuffix("." + d) && Self.isName(host)) else { return }
                    guard d.contains(".") || d == host else { return }
                    if !Self.isName(host) && host == d { continue }
                }
                domain = d
                includeSubdomains = true
            case "path":
                // As curl's sanitize_cookie_path: a trailing slash is not part of the path.
                if v.hasPrefix("/") { path = v.count > 1 && v.hasSuffix("/") ? String(v.dropLast()) : v }
            case "secure": secure = true
            case "httponly": httpOnly = true
            case "expires":
                if maxAge == nil, let t = HTTPDate.parse(v) { expires = max(1, t) }
            case "max-age":
                guard let n = Int64(v) else { continue }
                maxAge = n
                expires = n <= 0 ? 1 : now() + n
            default: break
            }
        }
        // A secure cookie only from a secure origin (RFC 6265bis §5.4 step 8), and the name
        // prefixes' promises kept: __Secure- needs Secure, __Host- also no Domain and Path=/.
        if secure && !secureOrigin { return }
        if name.hasPrefix("__Secure-") && !secure { return }
        if name.hasPrefix("__Host-") && (!secure || includeSubdomains || path != "/") { return }
        let cookie = Cookie(name: name, value: value, domain: domain, includeSubdomains: includeSubdomains,
                            path: path ?? Self.defaultPath(requestPath), secure: secure, httpOnly: httpOnly,
                            expires: expires, created: 0)
        if expires != 0 && expires <= now() {
            // An expiry in the past deletes the cookie (Max-Age=0 included).
            cookies.removeAll { $0.name == cookie.name && $0.domain == cookie.domain && $0.path == cookie.path }
            return
        }
        store(cookie)
    }

    /// Adds or replaces (same name, domain and path: the old one's place in time is kept).
    private func store(_ cookie: Cookie) {
        var c = cookie
        if let i = cookies.firstIndex(where: { $0.name == c.name && $0.domain == c.domain && $0.path == c.path }) {
            c.created = cookies[i].created
            cookies[i] = c
        } else {
            lastCreated += 1
            c.created = lastCreated
            cookies.append(c)
        }
    }

    // MARK: - sending

    /// The `Cookie` header value for a request to `url`, or nil: curl's order (longer
    /// path, then longer domain, then longer name, then newest first).
    func header(for url: URLText.Parts) -> String? {
        let host = Self.host(url)
        let path = String(url.target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0])
        let secure = Self.secureContext(url)
        let t = now()
        let matching = cookies.filter { c in
            (c.expires == 0 || c.expires > t) && (!c.secure || secure) && Self.pathMatches(path.isEmpty ? "/" : path, c.path)
                && c.domain.map { $0 == host || (c.includeSubdomains && host.hasSuffix("." + $0)) } ?? true
        }.sorted { a, b in
            if a.path.utf8.count != b.path.utf8.count { return a.path.utf8.count > b.path.utf8.count }
            let da = a.domain?.utf8.count ?? 0, db = b.domain?.utf8.count ?? 0
            if da != db { return da > db }
            if a.name.utf8.count != b.name.utf8.count { return a.name.utf8.count > b.name.utf8.count }
            return a.created > b.created
        }
        // curl sends at most 150 cookies in one request.
        return matching.isEmpty ? nil : matching.prefix(150).map { "\($0.name)=\($0.value)" }.joined(separator: "; ")
    }

    // MARK: - writing

    /// The jar as curl writes it with `-c`: its header, then every unexpired cookie, newest first.
    func netscapeFile() -> String {
        var out = "# Netscape HTTP Cookie File\n# https://curl.se/docs/http-cookies.html\n# This file was generated by libcurl! Edit at your own risk.\n\n"
        let t = now()
        for c in cookies.filter({ $0.expires == 0 || $0.expires > t }).sorted(by: { $0.created > $1.created }) {
            let domain = c.domain.map { (c.includeSubdomains ? "." : "") + $0 } ?? "unknown"
            out += "\(c.httpOnly ? "#HttpOnly_" : "")\(domain)\t\(c.includeSubdomains ? "TRUE" : "FALSE")\t\(c.path)\t"
                + "\(c.secure ? "TRUE" : "FALSE")\t\(c.expires)\t\(c.name)\t\(c.value)\n"
        }
        return out
    }

    // MARK: - rules

    static func host(_ url: URLText.Parts) -> String { url.host.lowercased() }

    /// https, or a loopback host (curl 7.88 counts localhost, 127.0.0.1 and [::1] secure).
    static func secureContext(_ url: URLText.Parts) -> Bool {
        let host = host(url)
        return url.scheme == "https" || host == "localhost" || host == "127.0.0.1" || host == "[::1]"
    }

    /// A host name, not an address literal (domain cookies are for names only).
    static func isName(_ host: String) -> Bool {
        !host.hasPrefix("[") && !host.allSatisfy { $0.isNumber || $0 == "." }
    }

    /// The request path's directory, with its last slash, as curl 7.88 keeps it (RFC 6265
    /// §5.1.4 leaves the slash out; curl's paths match the same requests either way).
    static func defaultPath(_ path: String) -> String {
        guard path.hasPrefix("/"), let slash = path.lastIndex(of: "/") else { return "/" }
        return String(path[...slash])
    }

    /// RFC 6265 §5.1.4.
    static func pathMatches(_ requestPath: String, _ cookiePath: String) -> Bool {
        if requestPath == cookiePath { return true }
        guard requestPath.hasPrefix(cookiePath) else { return false }
        return cookiePath.hasSuffix("/") || requestPath.dropFirst(cookiePath.count).first == "/"
    }
}

/// HTTP dates as cookies carry them (RFC 6265 §5.1.1, leniently: "Wed, 09 Jun 2021
/// 10:18:14 GMT", "Wednesday, 09-Jun-21 10:18:14 GMT", asctime), in seconds since the epoch.
enum HTTPDate {
    /// RFC 9110's IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT".
    static func format(_ seconds: Int64) -> String {
        let days = seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400
        let secs = Int(seconds - days * 86400)
        // Civil date from days since 1970-01-01.
        let z = days + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
        let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][Int(((days % 7) + 7) % 7)]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(weekday), \(two(Int(d))) \(months[Int(m) - 1]) \(y) \(two(secs / 3600)):\(two(secs / 60 % 60)):\(two(secs % 60)) GMT"
    }

    static func parse(_ text: String) -> Int64? {
        let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
        var day: Int?, month: Int?, year: Int?, hms: (Int, Int, Int)?
        var offset = 0
        for token in text.split(whereSeparator: { " ,\t".contains($0) }).flatMap({ t -> [Substring] in
            // "+0100"/"-0530" is a zone; other dashes separate a date ("15-Nov-2023").
            (t.first == "+" || t.first == "-") && t.count == 5 ? [t] : t.split(separator: "-")
        }) {
            let t = token.lowercased()
            if hms == nil, t.contains(":") {
                let p = t.split(separator: ":").compactMap { Int($0) }
                if p.count == 3 { hms = (p[0], p[1], p[2]); continue }
                if p.count == 2 { hms = (p[0], p[1], 0); continue }
            }
            if (t.first == "+" || t.first == "-"), t.count == 5, let v = Int(t.dropFirst()) {
                offset = (t.first == "-" ? -1 : 1) * ((v / 100) * 3600 + (v % 100) * 60)
                continue
            }
            if t.count == 8, day == nil, month == nil, year == nil, let v = Int(t) {
                // 20231115
                year = v / 10000
                month = v / 100 % 100
                day = v % 100
                continue
            }
            if month == nil, let m = months.firstIndex(where: { t.hasPrefix($0) }) { month = m + 1; continue }
            if let n = Int(t) {
                if day == nil && t.count <= 2 && n >= 1 && n <= 31 { day = n } else if year == nil { year = n < 70 ? 2000 + n : n < 100 ? 1900 + n : n }
            }
        }
        guard let d = day, let m = month, let y = year, y >= 1601, (1 ... 12).contains(m) else { return nil }
        let (h, mi, s) = hms ?? (0, 0, 0)
        // Days from 1970-01-01 (a civil-from-days inverse).
        let yy = m <= 2 ? y - 1 : y
        let era = (yy >= 0 ? yy : yy - 399) / 400
        let yoe = yy - era * 400
        let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = Int64(era * 146097 + doe - 719468)
        return days * 86400 + Int64(h * 3600 + mi * 60 + s) - Int64(offset)
    }
}
