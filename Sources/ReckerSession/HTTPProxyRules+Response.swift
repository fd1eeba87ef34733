import ReckerProtocol

extension HTTPProxyRules {
    /// How a response body is delimited for the client.
    package enum Framing: Equatable {
        /// No body (HEAD, 1xx, 204, 304).
        case none
        case length(UInt64)
        case chunked
        /// Until the connection closes (an HTTP/1.0 client and no known length).
        case close
    }

    /// What the client is told in a response head, and how the connection goes on.
    package struct ResponseStart {
        package var bytes: [UInt8]
        package var framing: Framing
        /// The connection stays open for the next request after this response.
        package var keepAlive: Bool
    }

    /// The head sent to the client for an upstream response: hop-by-hop headers dropped,
    /// `Via` added, the body framed for this client, reckerd's facts when `annotate` is on.
    package static func responseStart(_ head: ResponseHead, method: String, clientHTTP10: Bool, clientKeepAlive: Bool,
                              annotate: Bool) -> ResponseStart {
        let connectionNamed = Set(head.headers.filter { $0.name.lowercased() == "connection" }
            .flatMap { $0.value.split(separator: ",") }.map { $0.trimmingSpaces.lowercased() })
        let lengths = head.headers.filter { $0.name.lowercased() == "content-length" }.map(\.value)
        // A Transfer-Encoding overrides a Content-Length (RFC 9112 §6.3): the body the
        // engine delivers is the de-chunked one, whatever length was announced beside it.
        let coded = head.headers.contains { $0.name.lowercased() == "transfer-encoding" }
        let length: UInt64? = lengths.count == 1 && !coded ? UInt64(lengths[0]) : nil
        let noBody = method == "HEAD" || head.status < 200 || head.status == 204 || head.status == 304
        let framing: Framing = noBody ? .none : length.map(Framing.length) ?? (clientHTTP10 ? .close : .chunked)
        let keepAlive = clientKeepAlive && framing != .close

        var out = Array("HTTP/1.1 \(head.status) \(reason(head))\r\n".utf8)
        out.reserveCapacity(512)
        for h in head.headers {
            let lower = h.name.lowercased()
            if hopByHop.contains(lower) || connectionNamed.contains(lower) || lower == "content-length" { continue }
            // Only a name that is a token (RFC 9110 §5.1) is passed on: "Transfer-Encoding "
            // with a space before its colon would slip past the hop-by-hop names above, and
            // an empty or spaced name breaks the client's parsing of the rest of the head.
            // A line end or NUL in a value would let an upstream split the response.
            guard !h.name.isEmpty, h.name.utf8.allSatisfy(isTokenByte), !h.value.utf8.contains(where: isLineBreaking) else { continue }
            // reckerd's own headers are reckerd's to say (X-Reckerd-Error, the annotations).
            if lower.hasPrefix("x-reckerd-") { continue }
            out += h.name.utf8
            out += ": ".utf8
            out += h.value.utf8
            out += "\r\n".utf8
        }
        if noBody, method == "HEAD" || head.status == 304, let length {
            out += "Content-Length: \(length)\r\n".utf8
        }
        switch framing {
        case .length(let n): out += "Content-Length: \(n)\r\n".utf8
        case .chunked: out += "Transfer-Encoding: chunked\r\n".utf8
        case .none, .close: break
        }
        out += "Via: \(via)\r\n".utf8
        if annotate {
            out += "X-Reckerd-Reused: \(head.reused ? 1 : 0)\r\n".utf8
            out += "X-Reckerd-Connection: \(head.connectionID)\r\n".utf8
            out += "X-Reckerd-Queue-Ms: \(milliseconds(head.queueMicros))\r\n".utf8
        }
        if !keepAlive {
            out += "Connection: close\r\n".utf8
        } else if clientHTTP10 {
            out += "Connection: keep-alive\r\n".utf8
        }
        out += "\r\n".utf8
        return ResponseStart(bytes: out, framing: framing, keepAlive: keepAlive)
    }

    /// A response reckerd makes itself: the status, `X-Reckerd-Error`, and a plain-text body
    /// naming the error code. `close` adds `Connection: close`.
    package static func errorResponse(_ refusal: HTTPRefusal, close: Bool, method: String = "GET") -> [UInt8] {
        // A 2xx reckerd answers as the final recipient (OPTIONS with Max-Forwards: 0) is no
        // error: it has no body and no X-Reckerd-Error.
        let success = refusal.status < 300
        let body = success ? [] : Array("reckerd: \(refusal.code): \(refusal.message)\n".utf8)
        var out = Array("HTTP/1.1 \(refusal.status) \(reason(status: refusal.status))\r\n".utf8)
        out += "Content-Type: text/plain; charset=utf-8\r\nContent-Length: \(body.count)\r\n".utf8
        if !success { out += "X-Reckerd-Error: \(refusal.code)\r\n".utf8 }
        out += "Via: \(via)\r\n".utf8
        for h in refusal.headers { out += "\(h)\r\n".utf8 }
        if close { out += "Connection: close\r\n".utf8 }
        out += "\r\n".utf8
        if method != "HEAD" { out += body }
        return out
    }

    /// A response with a body reckerd makes itself (`/metrics`).
    package static func documentResponse(status: UInt16, contentType: String, _ body: [UInt8], method: String, close: Bool) -> [UInt8] {
        var out = Array("HTTP/1.1 \(status) \(reason(status: status))\r\n".utf8)
        out += "Content-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n".utf8
        if close { out += "Connection: close\r\n".utf8 }
        out += "\r\n".utf8
        if method != "HEAD" { out += body }
        return out
    }

    private static func isLineBreaking(_ b: UInt8) -> Bool { b == 0x0D || b == 0x0A || b == 0 }

    /// tchar (RFC 9110 §5.6.2).
    package static func isTokenByte(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a") ... UInt8(ascii: "z"), UInt8(ascii: "A") ... UInt8(ascii: "Z"), UInt8(ascii: "0") ... UInt8(ascii: "9"):
            return true
        default:
            return Array("!#$%&'*+-.^_`|~".utf8).contains(b)
        }
    }

    /// "0.123" for 123 µs.
    package static func milliseconds(_ micros: UInt32) -> String {
        let frac = String(micros % 1000)
        return "\(micros / 1000).\(String(repeating: "0", count: 3 - frac.count))\(frac)"
    }

    /// The upstream's reason phrase when the engine reported it, else the standard one.
    package static func reason(_ head: ResponseHead) -> String {
        if let r = head.facts?.reason, !r.isEmpty, !r.utf8.contains(where: isLineBreaking) { return r }
        return reason(status: head.status)
    }

    package static func reason(status: UInt16) -> String {
        switch status {
        case 100: "Continue"
        case 200: "OK"
        case 201: "Created"
        case 204: "No Content"
        case 206: "Partial Content"
        case 301: "Moved Permanently"
        case 302: "Found"
        case 304: "Not Modified"
        case 400: "Bad Request"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 408: "Request Timeout"
        case 413: "Content Too Large"
        case 417: "Expectation Failed"
        case 431: "Request Header Fields Too Large"
        case 500: "Internal Server Error"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        case 505: "HTTP Version Not Supported"
        case 508: "Loop Detected"
        default: "Status"
        }
    }
}
