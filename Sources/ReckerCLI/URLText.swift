/// The little URL arithmetic the CLI needs, on text (no Foundation): curl's scheme guess,
/// query building, percent-encoding, and resolving a redirect's `Location`.
enum URLText {
    /// The parts of an absolute URL.
    struct Parts: Equatable {
        var scheme: String
        /// Host and port as written (userinfo removed), e.g. "127.0.0.1:8080".
        var authority: String
        var userinfo: String?
        /// Path and query, at least "/".
        var target: String

        var host: String {
            if authority.hasPrefix("["), let end = authority.firstIndex(of: "]") {
                return String(authority[...end])
            }
            return String(authority.prefix { $0 != ":" })
        }

        var port: Int {
            let afterHost = authority.dropFirst(host.count)
            if afterHost.hasPrefix(":"), let p = Int(afterHost.dropFirst()) { return p }
            return scheme == "https" ? 443 : 80
        }

        /// Scheme, host and port: what decides where credentials may go on a redirect.
        var origin: String { "\(scheme)://\(host.lowercased()):\(port)" }

        var path: String { String(target.prefix { $0 != "?" }) }
    }

    /// curl's guess for a URL without a scheme: http.
    static func withScheme(_ url: String, default scheme: String = "http") -> String {
        parse(url) != nil ? url : scheme + "://" + url
    }

    /// Splits an absolute URL; nil when it has no scheme.
    static func parse(_ url: String) -> Parts? {
        guard let colon = url.firstIndex(of: ":"), url[colon...].hasPrefix("://") else { return nil }
        let scheme = url[..<colon].lowercased()
        guard !scheme.isEmpty, scheme.allSatisfy({ $0.isLetter || $0.isNumber || "+-.".contains($0) }) else { return nil }
        var rest = url[url.index(colon, offsetBy: 3)...]
        if let hash = rest.firstIndex(of: "#") { rest = rest[..<hash] }
        let end = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
        var authority = String(rest[..<end])
        var userinfo: String?
        if let at = authority.lastIndex(of: "@") {
            userinfo = String(authority[..<at])
            authority = String(authority[authority.index(after: at)...])
        }
        var target = String(rest[end...])
        if target.isEmpty || target.hasPrefix("?") { target = "/" + target }
        return Parts(scheme: scheme, authority: authority, userinfo: userinfo, target: target)
    }

    /// `base` with `query` added to its query string (-G). curl 7.88 appends it through its
    /// URL parser, which writes every %XX escape of the added part in lower case.
    static func appendingQuery(_ base: String, _ query: String) -> String {
        var url = base
        if let hash = url.firstIndex(of: "#") { url = String(url[..<hash]) }
        var added = Array(query.utf8)
        var i = 0
        while i + 2 < added.count {
            if added[i] == UInt8(ascii: "%"), added[i + 1].isHexDigit, added[i + 2].isHexDigit {
                added[i + 1] = added[i + 1].lowercasedASCII
                added[i + 2] = added[i + 2].lowercasedASCII
                i += 3
            } else {
                i += 1
            }
        }
        let joiner = url.hasSuffix("?") ? "" : url.contains("?") ? "&" : "?"
        return url + joiner + String(decoding: added, as: UTF8.self)
    }

    /// The URL a `Location` value leads to from `base` (RFC 3986 §5.2).
    static func resolve(_ location: String, against base: String) -> String {
        let loc = location.trimming(" \t")
        if parse(loc) != nil { return loc }
        guard let b = parse(base) else { return loc }
        let prefix = b.scheme + "://" + (b.userinfo.map { $0 + "@" } ?? "") + b.authority
        if loc.hasPrefix("//") { return b.scheme + ":" + loc }
        if loc.hasPrefix("/") { return prefix + removeDotSegments(loc) }
        if loc.hasPrefix("?") { return prefix + b.path + loc }
        if loc.isEmpty { return prefix + b.target }
        let dir = String(b.path[..<(b.path.lastIndex(of: "/").map { b.path.index(after: $0) } ?? b.path.endIndex)])
        return prefix + removeDotSegments(dir + loc)
    }

    /// Removes "." and ".." segments from a path (the query kept as it is).
    static func removeDotSegments(_ target: String) -> String {
        let q = target.firstIndex(of: "?") ?? target.endIndex
        let path = target[..<q]
        var out: [Substring] = []
        let segments = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        for (n, s) in segments.enumerated() {
            let last = n == segments.count - 1
            if s == "." {
                if last { out.append("") }
            } else if s == ".." {
                if !out.isEmpty { out.removeLast() }
                if last { out.append("") }
            } else {
                out.append(s)
            }
        }
        return "/" + out.joined(separator: "/") + target[q...]
    }

    /// The last segment of the URL's path, for -O; nil when there is none.
    static func remoteName(_ url: String) -> String? {
        guard let p = parse(url) else { return nil }
        let name = p.path.split(separator: "/", omittingEmptySubsequences: false).last.map(String.init) ?? ""
        return name.isEmpty || name == "." || name == ".." ? nil : name
    }

    /// `%XX` escapes decoded (a URL's userinfo, as curl reads it); others kept as written.
    static func percentDecoded(_ s: String) -> String {
        let bytes = Array(s.utf8)
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "%"), i + 2 < bytes.count, bytes[i + 1].isHexDigit, bytes[i + 2].isHexDigit,
               let v = UInt8(String(decoding: bytes[(i + 1) ... (i + 2)], as: UTF8.self), radix: 16) {
                out.append(v)
                i += 3
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Percent-encodes all but RFC 3986's unreserved characters, as curl_easy_escape does.
    static func percentEncoded(_ s: String) -> String { percentEncoded(bytes: Array(s.utf8)) }

    /// The same for --data-urlencode, written as curl 7.88 writes it there: a space as '+',
    /// upper-case hex digits (`q={` is `q=%7B`; request signatures depend on it).
    static func formEncoded(_ s: String) -> String { percentEncoded(bytes: Array(s.utf8), form: true) }

    static func percentEncoded(bytes: [UInt8], form: Bool = false) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        for b in bytes {
            switch b {
            case UInt8(ascii: "a") ... UInt8(ascii: "z"), UInt8(ascii: "A") ... UInt8(ascii: "Z"),
                 UInt8(ascii: "0") ... UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.append(b)
            case UInt8(ascii: " ") where form:
                out.append(UInt8(ascii: "+"))
            default:
                out += [UInt8(ascii: "%"), hex[Int(b >> 4)], hex[Int(b & 15)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

extension String {
    /// The string without leading and trailing characters from `set`.
    func trimming(_ set: String) -> String {
        String(drop { set.contains($0) }.reversed().drop { set.contains($0) }.reversed())
    }
}

extension UInt8 {
    var isHexDigit: Bool { (0x30 ... 0x39).contains(self) || (0x41 ... 0x46).contains(self) || (0x61 ... 0x66).contains(self) }
    var lowercasedASCII: UInt8 { (0x41 ... 0x5A).contains(self) ? self + 0x20 : self }
}
