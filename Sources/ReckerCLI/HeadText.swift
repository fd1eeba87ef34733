import ReckerProtocol

/// Heads written out as curl writes them (-i, -D, -v).
enum HeadText {
    /// The response head: "HTTP/1.1 200 OK", the headers, a blank line, each line ending CRLF.
    /// HTTP/1 heads keep the upstream's reason phrase (the facts block, PROTOCOL.md §2.5), or
    /// get RFC 9110's from a daemon that sends none.
    static func response(_ h: ResponseHead) -> String {
        var text = h.httpVersion >= 20
            ? "HTTP/\(h.versionName) \(h.status) \r\n"
            : "HTTP/\(h.versionName) \(h.status) \(h.facts?.reason ?? reason(h.status))\r\n"
        for x in h.headers { text += "\(x.name): \(x.value)\r\n" }
        return text + "\r\n"
    }

    /// The request head as reckerd's engine sends it: libcurl's Host and Accept (unless
    /// named), Accept-Encoding with --compressed, the client's headers, Content-Length.
    static func request(_ r: RequestHead, version: String) -> String {
        let parts = URLText.parse(r.url)
        var text = "\(r.method) \(parts?.target ?? "/") HTTP/\(version)\r\n"
        let named = Set(r.headers.map { $0.name.lowercased() })
        if !named.contains("host") { text += "Host: \(parts?.authority ?? "")\r\n" }
        if !named.contains("accept") { text += "Accept: */*\r\n" }
        if r.options.compressed == true && !named.contains("accept-encoding") {
            text += "Accept-Encoding: deflate, gzip, br, zstd\r\n"
        }
        for h in r.headers { text += h.value.isEmpty ? "\(h.name):\r\n" : "\(h.name): \(h.value)\r\n" }
        if let n = r.bodyLength { text += "Content-Length: \(n)\r\n" }
        return text + "\r\n"
    }

    /// Each line of `text` behind `prefix` ("> ", "< "), as curl -v prints them.
    static func prefixed(_ text: String, _ prefix: String) -> String {
        // "\r\n" is one Character in Swift.
        text.split(separator: "\r\n", omittingEmptySubsequences: false).dropLast().map { prefix + $0 + "\r\n" }.joined()
    }

    /// RFC 9110's reason phrase for a status code ("" for one it does not name).
    static func reason(_ status: UInt16) -> String {
        switch status {
        case 100: "Continue"
        case 101: "Switching Protocols"
        case 200: "OK"
        case 201: "Created"
        case 202: "Accepted"
        case 203: "Non-Authoritative Information"
        case 204: "No Content"
        case 205: "Reset Content"
        case 206: "Partial Content"
        case 300: "Multiple Choices"
        case 301: "Moved Permanently"
        case 302: "Found"
        case 303: "See Other"
        case 304: "Not Modified"
        case 305: "Use Proxy"
        case 307: "Temporary Redirect"
        case 308: "Permanent Redirect"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 402: "Payment Required"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 406: "Not Acceptable"
        case 407: "Proxy Authentication Required"
        case 408: "Request Timeout"
        case 409: "Conflict"
        case 410: "Gone"
        case 411: "Length Required"
        case 412: "Precondition Failed"
        case 413: "Content Too Large"
        case 414: "URI Too Long"
        case 415: "Unsupported Media Type"
        case 416: "Range Not Satisfiable"
        case 417: "Expectation Failed"
        case 421: "Misdirected Request"
        case 422: "Unprocessable Content"
        case 426: "Upgrade Required"
        case 428: "Precondition Required"
        case 429: "Too Many Requests"
        case 431: "Request Header Fields Too Large"
        case 500: "Internal Server Error"
        case 501: "Not Implemented"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        case 505: "HTTP Version Not Supported"
        default: ""
        }
    }
}
