import ReckerProtocol

/// What the HTTP front does with a request and its response, without a socket: which
/// requests are refused and why, which headers are hop-by-hop, where a request goes
/// (absolute-form, origin-form with `Host`, TLS origination), how a response is framed for
/// the client. docs/HTTP-FRONT.md says the same in prose.
package enum HTTPProxyRules {
    /// A request ready for the engine, and what the connection must do around it.
    package struct Upstream {
        package var head: RequestHead
        package var target: RequestValidator.Target
        /// A body follows the head (chunked, or a `Content-Length` above 0).
        package var hasBody: Bool
        /// The client waits for `100 Continue` before it sends the body.
        package var expectContinue: Bool
    }

    /// Hop-by-hop headers (RFC 9110 §7.6.1), never forwarded either way; `Connection` may
    /// name more. `Proxy-*` headers are for this proxy, `Content-Length` and `Host` are
    /// set anew by the engine from the body and the URL.
    package static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
        "proxy-authorization", "proxy-authenticate",
    ]

    package static let via = "1.1 reckerd"
    package static let methodsAllowed = "GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS"

    /// Checks a parsed request against the proxy's rules and turns it into the request the
    /// engine sends. Refusals carry their status (400, 405, 417, 431, 505, 508, …).
    package static func upstream(_ r: HTTPParsedRequest, originate: Set<String>, limits: HeaderLimits) throws(HTTPRefusal) -> Upstream {
        // RFC 9110 §2.5: a later minor version of HTTP/1 is served as the highest this
        // front speaks, 1.1.
        guard r.major == 1 else {
            throw HTTPRefusal(505, "UNSUPPORTED_VERSION", "reckerd's HTTP front speaks HTTP/1.0 and HTTP/1.1")
        }
        // In any case: an upstream that reads methods without regard to case would take
        // "trace" as TRACE (RFC 9110 §9.1 makes them distinct; some servers do not).
        if r.method.uppercased() == "TRACE" {
            throw HTTPRefusal(405, "INVALID_METHOD",
                              "TRACE is not forwarded: the upstream would reflect the request's credentials in its answer (cross-site tracing)",
                              headers: ["Allow: \(methodsAllowed)"])
        }
        var maxForwards: Int?
        if r.method == "OPTIONS" && r.values("max-forwards").count > 1 {
            throw HTTPRefusal(400, "BAD_REQUEST", "more than one Max-Forwards (RFC 9110 §7.6.2: one number)")
        }
        if r.method == "OPTIONS", let value = r.values("max-forwards").first {
            guard let n = Int(Substring(value).trimmingSpaces), n >= 0 else { throw HTTPRefusal(400, "BAD_REQUEST", "Max-Forwards is not a number") }
            // RFC 9110 §7.6.2: at 0 the intermediary answers as the final recipient.
            if n == 0 { throw HTTPRefusal(200, "OK", "", headers: ["Allow: \(methodsAllowed)"]) }
            maxForwards = n - 1
        }
        if r.method.uppercased() == "CONNECT" {
            throw HTTPRefusal(405, "INVALID_METHOD",
                              "CONNECT opens a tunnel, which holds one upstream connection for one client and cannot share a pool; send the request itself (GET http://host/path, or an https:// URL in absolute form) and reckerd sends it on a pooled connection",
                              headers: ["Allow: \(methodsAllowed)"])
        }
        do { try limits.check(r.headers, "the request") } catch { throw HTTPRefusal(error) }

        // Framing (Content-Length, Transfer-Encoding) was decided, and its conflicts
        // refused, by HTTPRequestReader: it had to find where the request ends.
        if r.values("via").contains(where: { $0.lowercased().contains("reckerd") }) {
            throw HTTPRefusal(508, "LOOP_DETECTED", "the request has been through reckerd already (Via): it would loop")
        }

        var expectContinue = false
        let expects = r.values("expect")
        if !expects.isEmpty {
            guard expects.count == 1, expects[0].lowercased() == "100-continue" else {
                throw HTTPRefusal(417, "EXPECTATION_FAILED", "only Expect: 100-continue is understood")
            }
            expectContinue = !r.isHTTP10
        }

        let url = try resolve(r, originate: originate)

        let connectionNamed = Set(r.values("connection").flatMap { $0.split(separator: ",") }
            .map { $0.trimmingSpaces.lowercased() })
        var headers: [(name: String, value: String)] = []
        headers.reserveCapacity(r.headers.count + 1)
        for h in r.headers {
            let lower = h.name.lowercased()
            if hopByHop.contains(lower) || connectionNamed.contains(lower) || lower.hasPrefix("proxy-")
                || lower == "host" || lower == "content-length" || lower == "expect" {
                continue
            }
            // A name with an underscore is dropped, as nginx does by default: a backend that
            // maps "_" to "-" would read Transfer_Encoding as Transfer-Encoding, which this
            // front never checked (a smuggling path).
            if lower.contains("_") { continue }
            if lower == "max-forwards", let n = maxForwards {
                headers.append((h.name, String(n)))
                continue
            }
            headers.append(h)
        }
        headers.append(("Via", via))

        let hasBody = r.chunked || (r.contentLength ?? 0) > 0
        let head = RequestHead(method: r.method, url: url, headers: headers, bodyLength: r.chunked ? nil : r.contentLength)
        let target: RequestValidator.Target
        do { target = try RequestValidator.validate(head, endRequest: !hasBody, limits: limits) } catch {
            throw HTTPRefusal(error)
        }
        return Upstream(head: head, target: target, hasBody: hasBody, expectContinue: expectContinue && hasBody)
    }

    /// The absolute URL a request names: its absolute-form target, or `http://` + `Host`
    /// + its origin-form target; http becomes https for a domain with `originate`.
    package static func resolve(_ r: HTTPParsedRequest, originate: Set<String>) throws(HTTPRefusal) -> String {
        let hosts = r.values("host")
        guard hosts.count <= 1 else { throw HTTPRefusal(400, "BAD_REQUEST", "more than one Host header (RFC 9112 §3.2)") }
        var url: String
        if r.target.hasPrefix("/") {
            guard let host = hosts.first, !host.isEmpty else {
                throw HTTPRefusal(400, "BAD_REQUEST", "an origin-form request (GET /path) needs a Host header naming the upstream")
            }
            guard host.utf8.allSatisfy(isAuthorityByte) else {
                throw HTTPRefusal(400, "BAD_REQUEST", "the Host header is not a host[:port]")
            }
            url = "http://" + host + r.target
        } else if r.target.lowercased().hasPrefix("http://") || r.target.lowercased().hasPrefix("https://") {
            // RFC 9112 §3.2.2: the target's authority wins over Host, which is set anew; a
            // Host that is not an authority is refused all the same (HTTP-FRONT.md).
            if let host = hosts.first, host.isEmpty || !host.utf8.allSatisfy(isAuthorityByte) {
                throw HTTPRefusal(400, "BAD_REQUEST", "the Host header is not a host[:port]")
            }
            url = r.target
        } else {
            throw HTTPRefusal(400, "INVALID_URL", "the request target must be an http:// or https:// URL (absolute-form) or a /path with Host")
        }
        if r.isHTTP10 == false && hosts.isEmpty {
            throw HTTPRefusal(400, "BAD_REQUEST", "an HTTP/1.1 request must carry a Host header (RFC 9112 §3.2)")
        }
        let target: RequestValidator.Target
        do { target = try RequestValidator.parse(url: url) } catch { throw HTTPRefusal(error) }
        // A name with its root dot ("api.example.com.") is the same name: without this, the
        // spelling would leave in plain http what the config says must go out over TLS.
        let bare = target.host.hasSuffix(".") ? String(target.host.dropLast()) : target.host
        let bareDomain = target.domain.hasPrefix("[") ? target.domain : "\(bare):\(target.domain.split(separator: ":").last ?? "")"
        if !target.https && [target.domain, target.host, bare, bareDomain].contains(where: originate.contains) {
            // "http" → "https": the host and an explicit port stay as the client gave them.
            url = "https" + url.dropFirst(4)
        }
        return url
    }

    /// Bytes a `Host` value may hold: a reg-name, an IPv4 or bracketed IPv6 address, a port.
    private static func isAuthorityByte(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a") ... UInt8(ascii: "z"), UInt8(ascii: "A") ... UInt8(ascii: "Z"), UInt8(ascii: "0") ... UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: ":"),
             UInt8(ascii: "["), UInt8(ascii: "]"), UInt8(ascii: "%"):
            return true
        default:
            return false
        }
    }

    /// The HTTP status a reckerd error stands for at the HTTP front.
    package static func status(for error: ReckerError) -> UInt16 {
        switch error.code {
        case .connectTimeout, .timeout, .queueTimeout: 504
        case .dnsFailed, .connectFailed, .tlsFailed, .upstreamSendFailed, .upstreamRecvFailed, .upstreamProtocol,
             .tooManyRedirects, .upstreamFailed: 502
        case .queueFull, .shuttingDown, .localResources, .tooManyInFlight, .tooManyClients: 503
        case .accessDenied, .destinationDenied: 403
        case .headersTooLarge: 431
        case .invalidMethod, .invalidURL, .invalidHeaderName, .invalidHeaderValue, .forbiddenHeader,
             .unknownCriticalOption, .bodyLengthMismatch: 400
        default: 500
        }
    }
}

extension HTTPRefusal {
    /// A request reckerd's own checks refused, with the status its code stands for.
    package init(_ error: ReckerError) {
        self.init(HTTPProxyRules.status(for: error), error.code.name, error.message)
    }
}
