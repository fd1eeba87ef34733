/// What may be logged of a request.
package enum Redact {
    /// scheme://host:port/path — no user info, no query string, no fragment.
    package static func url(_ url: String) -> String {
        var s = Substring(url)
        if let q = s.firstIndex(where: { $0 == "?" || $0 == "#" }) { s = s[..<q] }
        if let scheme = s.firstRange(of: "://") {
            let rest = s[scheme.upperBound...]
            let authorityEnd = rest.firstIndex(of: "/") ?? rest.endIndex
            if let at = rest[..<authorityEnd].lastIndex(of: "@") {
                return String(s[..<scheme.upperBound]) + String(rest[rest.index(after: at)...])
            }
        }
        return String(s)
    }
}
