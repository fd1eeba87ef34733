/// The most headers, and bytes of header names and values, one head may carry: the daemon
/// announces its own in WELCOME and holds requests and responses to them.
package struct HeaderLimits: Sendable, Equatable {
    package var count: Int
    package var bytes: Int
    package init(count: Int, bytes: Int) {
        self.count = count
        self.bytes = bytes
    }

    /// The daemon's defaults (`limits.maxHeaders`, `limits.maxHeaderBytes`).
    package static let standard = HeaderLimits(count: 1000, bytes: 65536)

    /// Throws `HEADERS_TOO_LARGE` when `headers` are over the limits.
    package func check(_ headers: [(name: String, value: String)], _ whose: String) throws(ReckerError) {
        guard headers.count <= count else {
            throw ReckerError(.headersTooLarge, "\(whose) has \(headers.count) headers, more than the \(count) allowed (limits.maxHeaders)")
        }
        let total = headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count }
        guard total <= bytes else {
            throw ReckerError(.headersTooLarge, "\(whose) has \(total) bytes of headers, more than the \(bytes) allowed (limits.maxHeaderBytes)")
        }
    }
}

/// The checks every request passes before anything is sent upstream
/// (docs/PROTOCOL.md §2.3). Shared by the daemon and clients that want to fail early.
package enum RequestValidator {
    /// The upstream a URL names: scheme, host and port, which is also its pool's key.
    package struct Target: Sendable, Hashable {
        package let https: Bool
        package let host: String
        package let port: UInt16
        /// `host:port`, the pool and stats key; built once, since the engine keys every
        /// event of a request by it.
        package let domain: String

        package init(https: Bool, host: String, port: UInt16) {
            self.https = https
            self.host = host
            self.port = port
            domain = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        }
    }

    /// Framing and hop-by-hop headers that belong to the daemon, lower-cased.
    static let forbidden: Set<String> = [
        "content-length", "transfer-encoding", "connection", "upgrade", "expect", "te",
        "keep-alive", "trailer",
    ]

    /// Checks a request head (`endRequest`: no body follows), returning the upstream it
    /// targets.
    package static func validate(_ head: RequestHead, endRequest: Bool = false,
                                limits: HeaderLimits = .standard) throws(ReckerError) -> Target {
        guard isToken(head.method) else {
            throw ReckerError(.invalidMethod, "method is not an HTTP token")
        }
        guard head.method.uppercased() != "CONNECT" else {
            throw ReckerError(.invalidMethod, "CONNECT opens a tunnel, which cannot share a pool")
        }
        let target = try parse(url: head.url)
        guard !hasCredentials(head.url) else {
            throw ReckerError(.invalidURL, "the URL holds credentials (user@ or user:pass@): send an Authorization header instead")
        }
        if let n = head.bodyLength, n > UInt64(Int64.max) {
            throw ReckerError(.bodyLengthMismatch, "body_length \(n) is above 2^63-1")
        }
        if endRequest, let n = head.bodyLength, n != 0 {
            throw ReckerError(.bodyLengthMismatch, "END_REQUEST is set, so no body follows, but body_length is \(n)")
        }
        try limits.check(head.headers, "the request")
        for h in head.headers {
            guard isToken(h.name) else {
                throw ReckerError(.invalidHeaderName, "header name \(printable(h.name)) is not an HTTP token")
            }
            // RFC 9110 §5.5: a field value is visible characters, SP and HTAB (and obs-text).
            guard !h.value.utf8.contains(where: { ($0 < 0x20 && $0 != 0x09) || $0 == 0x7F }) else {
                throw ReckerError(.invalidHeaderValue, "header \(h.name) holds a control character")
            }
            let lower = h.name.lowercased()
            if forbidden.contains(lower) || lower.hasPrefix("proxy-") {
                throw ReckerError(.forbiddenHeader, "header \(h.name) is set by reckerd, not by clients")
            }
        }
        if let critical = head.options.unknown.first(where: { $0.tag & RequestOptions.Tag.critical != 0 }) {
            throw ReckerError(.unknownCriticalOption, "unknown critical option 0x\(String(critical.tag, radix: 16))")
        }
        return target
    }

    /// Parses an absolute http or https URL; anything else is `INVALID_URL`.
    package static func parse(url: String) throws(ReckerError) -> Target {
        let bytes = Array(url.utf8)
        guard !bytes.contains(where: { $0 <= 0x20 || $0 == 0x7F }) else {
            throw ReckerError(.invalidURL, "URL holds spaces or control characters")
        }
        guard let colon = bytes.firstIndex(of: UInt8(ascii: ":")) else {
            throw ReckerError(.invalidURL, "URL has no scheme")
        }
        let scheme = String(decoding: bytes[..<colon], as: UTF8.self).lowercased()
        guard scheme == "http" || scheme == "https" else {
            throw ReckerError(.invalidURL, "scheme \(printable(scheme)) is not http or https")
        }
        let rest = bytes[(colon + 1)...]
        guard rest.starts(with: Array("//".utf8)) else {
            throw ReckerError(.invalidURL, "URL is not absolute (no //host)")
        }
        let authorityStart = rest.startIndex + 2
        let authorityEnd = rest[authorityStart...].firstIndex { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") } ?? rest.endIndex
        var authority = rest[authorityStart ..< authorityEnd]
        if let at = authority.lastIndex(of: UInt8(ascii: "@")) { authority = authority[(at + 1)...] }
        var host: ArraySlice<UInt8>
        var portText: ArraySlice<UInt8> = []
        if authority.first == UInt8(ascii: "[") {
            guard let close = authority.firstIndex(of: UInt8(ascii: "]")) else {
                throw ReckerError(.invalidURL, "unterminated IPv6 address")
            }
            host = authority[(authority.startIndex + 1) ..< close]
            let after = authority[(close + 1)...]
            if !after.isEmpty {
                guard after.first == UInt8(ascii: ":") else { throw ReckerError(.invalidURL, "junk after IPv6 address") }
                portText = after.dropFirst()
            }
        } else if let c = authority.lastIndex(of: UInt8(ascii: ":")) {
            host = authority[..<c]
            portText = authority[(c + 1)...]
        } else {
            host = authority
        }
        guard !host.isEmpty else { throw ReckerError(.invalidURL, "URL has no host") }
        // RFC 3986 §3.2.2 reg-name: no quote, angle bracket, backslash, caret, backtick, brace
        // or bar (curl refuses them too); bytes above 0x7F pass for IDN names.
        if authority.first != UInt8(ascii: "["), let bad = host.first(where: { Array("\"<>\\^`{|}".utf8).contains($0) }) {
            throw ReckerError(.invalidURL, "the host holds \(printable(String(decoding: [bad], as: UTF8.self))), which no host name has")
        }
        guard authority.first == UInt8(ascii: "[") || !host.contains(UInt8(ascii: ":")) else {
            throw ReckerError(.invalidURL, "URL has more than one port, or an IPv6 address without brackets")
        }
        // A percent-encoded host ("127.0.0.1%00.evil") is refused here rather than handed to
        // libcurl, which would fail it later, and would have made it a domain of its own.
        guard authority.first == UInt8(ascii: "[") || !host.contains(UInt8(ascii: "%")) else {
            throw ReckerError(.invalidURL, "URL has a percent-encoded host name; write the name itself")
        }
        var port: UInt16 = scheme == "https" ? 443 : 80
        if !portText.isEmpty {
            guard portText.count <= 5, portText.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                  let p = UInt16(String(decoding: portText, as: UTF8.self)), p > 0 else {
                throw ReckerError(.invalidURL, "bad port")
            }
            port = p
        }
        return Target(https: scheme == "https", host: String(decoding: host, as: UTF8.self).lowercased(), port: port)
    }

    /// Whether an http(s) URL has userinfo (`user@` or `user:pass@`) in its authority.
    package static func hasCredentials(_ url: String) -> Bool {
        let bytes = Array(url.utf8)
        guard let colon = bytes.firstIndex(of: UInt8(ascii: ":")), bytes[(colon + 1)...].starts(with: Array("//".utf8)) else {
            return false
        }
        let authority = bytes[(colon + 3)...].prefix { $0 != UInt8(ascii: "/") && $0 != UInt8(ascii: "?") && $0 != UInt8(ascii: "#") }
        return authority.contains(UInt8(ascii: "@"))
    }

    /// Methods whose repetition cannot change anything on the server (RFC 9110 §9.2.1).
    package static func isSafeMethod(_ method: String) -> Bool {
        ["GET", "HEAD", "OPTIONS", "TRACE"].contains(method)
    }

    /// Whether reckerd may send this request a second time, on a fresh connection, when
    /// the reused connection it went out on closed before any answer: idempotent methods
    /// (RFC 9110 §9.2.2: GET, HEAD, OPTIONS, TRACE, PUT, DELETE), or any method whose
    /// request carries an `Idempotency-Key` header, which tells the upstream to apply
    /// it at most once. Anything else is never sent twice.
    /// Methods are case-sensitive (RFC 9110 §9.1): `put` is another method, not PUT. An
    /// empty `Idempotency-Key` keys nothing.
    package static func mayResend(_ head: RequestHead) -> Bool {
        ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"].contains(head.method)
            || head.headers.contains { $0.name.lowercased() == "idempotency-key" && !$0.value.allSatisfy { $0 == " " || $0 == "\t" } }
    }

    /// RFC 9110 token: one or more tchar.
    package static func isToken(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.allSatisfy { c in
            switch c {
            case UInt8(ascii: "a") ... UInt8(ascii: "z"), UInt8(ascii: "A") ... UInt8(ascii: "Z"),
                 UInt8(ascii: "0") ... UInt8(ascii: "9"):
                true
            default:
                "!#$%&'*+-.^_`|~".utf8.contains(c)
            }
        }
    }

    private static func printable(_ s: String) -> String {
        "\"" + String(s.unicodeScalars.prefix(64).map { $0.value < 0x20 || $0.value == 0x7F ? "?" : Character($0) }) + "\""
    }
}
