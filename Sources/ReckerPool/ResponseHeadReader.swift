/// What reckerd makes of an upstream's response head, line by line as libcurl hands the
/// lines over (`CURLOPT_HEADERFUNCTION`): which headers reach the client, and which heads
/// are refused. libcurl frames the body; this reader refuses the heads whose framing a
/// proxy must not trust and keeps what it passes on clean. No I/O: tested on its own.
package struct ResponseHeadReader {
    /// What a line comes to.
    package enum Verdict: Equatable {
        /// A status line: a new head begins (an interim 1xx, then the final one).
        case status
        case ok
        /// The response must fail with UPSTREAM_PROTOCOL, saying why.
        case refuse(String)
    }

    /// The current head's headers, in order, names and values as passed on.
    package private(set) var headers: [(name: String, value: String)] = []
    package private(set) var reason = ""
    /// The latest status line's code.
    package private(set) var status = 0
    /// A status line was read and its head ended with the empty line.
    package private(set) var complete = false
    private var inHead = false
    private var bytes = 0
    private var contentLength: UInt64?
    private var transferEncoding = false
    private let maxCount: Int
    private let maxBytes: Int

    package init(maxCount: Int, maxBytes: Int) {
        self.maxCount = maxCount
        self.maxBytes = maxBytes
    }

    /// Reads one line, its CRLF or LF included or not.
    package mutating func read(_ line: some Collection<UInt8>) -> Verdict {
        var text = Array(line)
        while let last = text.last, last == 0x0A || last == 0x0D { text.removeLast() }
        if text.starts(with: Array("HTTP/".utf8)) { return statusLine(text) }
        guard inHead else { return .ok }  // trailers, after the head: not passed on
        if text.isEmpty {
            inHead = false
            complete = true
            return .ok
        }
        if text[0] == 0x20 || text[0] == 0x09 { return fold(text) }
        guard let colon = text.firstIndex(of: UInt8(ascii: ":")) else {
            return .refuse("the upstream sent a header line without a colon")
        }
        let name = text[..<colon]
        // RFC 9110 §5.1: a name is a token; a space before the colon (RFC 9112 §5.1) or any
        // other byte makes it no header at all, dropped as the HTTP front drops it.
        guard !name.isEmpty, name.allSatisfy(Self.isTokenByte) else { return .ok }
        let value = Self.cleanValue(text[(colon + 1)...])
        return add(String(decoding: name, as: UTF8.self), value)
    }

    private mutating func statusLine(_ text: [UInt8]) -> Verdict {
        // RFC 9112 §4: HTTP-version SP 3DIGIT SP reason-phrase (libcurl writes HTTP/2's as
        // "HTTP/2 200 ").
        var i = 5
        func digits() -> Int {
            let start = i
            while i < text.count, (0x30 ... 0x39).contains(text[i]) { i += 1 }
            return i - start
        }
        var valid = digits() == 1
        if valid, i < text.count, text[i] == UInt8(ascii: ".") {
            i += 1
            valid = digits() == 1
        }
        valid = valid && i < text.count && text[i] == 0x20
        i += 1
        valid = valid && digits() == 3 && (i == text.count || text[i] == 0x20)
        guard valid else {
            let shown = Self.cleanValue(text.prefix(40)) + (text.count > 40 ? "..." : "")
            return .refuse("the upstream's status line is not HTTP's (RFC 9112 §4): \"\(shown)\"")
        }
        headers.removeAll(keepingCapacity: true)
        bytes = 0
        contentLength = nil
        transferEncoding = false
        inHead = true
        complete = false
        reason = i < text.count ? Self.cleanValue(text[(i + 1)...]) : ""
        status = Int(String(decoding: text[(i - 3) ..< i], as: UTF8.self)) ?? 0
        return .status
    }

    /// An obs-fold line (RFC 9112 §5.2): joined to the field before it with one space, as a
    /// proxy may; refused where it continues a field that frames the body; consumed
    /// unread where no field precedes it (RFC 9112 §2.2).
    private mutating func fold(_ text: [UInt8]) -> Verdict {
        guard let last = headers.last else { return .ok }
        let name = last.name.lowercased()
        if name == "content-length" || name == "transfer-encoding" {
            return .refuse("the upstream folded its \(last.name) header over two lines (obs-fold, RFC 9112 §5.2): the body's framing is unclear")
        }
        let more = Self.cleanValue(text[...])
        guard !more.isEmpty else { return .ok }
        bytes += more.utf8.count + 1
        guard bytes <= maxBytes else { return .refuse("the upstream's response has more than \(maxBytes) bytes of headers (limits.maxHeaderBytes)") }
        headers[headers.count - 1].value = last.value.isEmpty ? more : last.value + " " + more
        return .ok
    }

    private mutating func add(_ name: String, _ value: String) -> Verdict {
        bytes += name.utf8.count + value.utf8.count
        guard headers.count < maxCount else { return .refuse("the upstream's response has more than \(maxCount) headers (limits.maxHeaders)") }
        guard bytes <= maxBytes else { return .refuse("the upstream's response has more than \(maxBytes) bytes of headers (limits.maxHeaderBytes)") }
        switch name.lowercased() {
        case "content-length":
            // RFC 9112 §6.3: an invalid or conflicting length is an unrecoverable error,
            // which a proxy answers with 502; a list of equal values is one value.
            var length: UInt64?
            for part in value.split(separator: ",", omittingEmptySubsequences: false) {
                var digits = Array(part.utf8)
                while let first = digits.first, first == 0x20 || first == 0x09 { digits.removeFirst() }
                while let last = digits.last, last == 0x20 || last == 0x09 { digits.removeLast() }
                guard !digits.isEmpty, digits.allSatisfy({ (0x30 ... 0x39).contains($0) }),
                      let n = UInt64(String(decoding: digits, as: UTF8.self)) else {
                    return .refuse("the upstream's Content-Length is not a number: \"\(value.prefix(40))\"")
                }
                guard length == nil || length == n else { return .refuse("the upstream sent conflicting Content-Length values (RFC 9112 §6.3)") }
                length = n
            }
            if let seen = contentLength, seen != length { return .refuse("the upstream sent conflicting Content-Length values (RFC 9112 §6.3)") }
            contentLength = length
        case "transfer-encoding":
            transferEncoding = true
        default:
            break
        }
        if contentLength != nil && transferEncoding {
            // RFC 9112 §6.1: a sign of response smuggling; nginx refuses it from upstreams too.
            return .refuse("the upstream sent both Content-Length and Transfer-Encoding (RFC 9112 §6.1)")
        }
        headers.append((name: name, value: value))
        return .ok
    }

    /// A value without its surrounding whitespace, each control byte (a bare CR included,
    /// RFC 9112 §2.2; RFC 9110 §5.5) replaced by a space.
    static func cleanValue(_ bytes: some Collection<UInt8>) -> String {
        var out = bytes.map { $0 < 0x20 && $0 != 0x09 || $0 == 0x7F ? 0x20 : $0 }
        while let first = out.first, first == 0x20 || first == 0x09 { out.removeFirst() }
        while let last = out.last, last == 0x20 || last == 0x09 { out.removeLast() }
        return String(decoding: out, as: UTF8.self)
    }

    /// RFC 9110 §5.6.2 tchar.
    static func isTokenByte(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a") ... UInt8(ascii: "z"), UInt8(ascii: "A") ... UInt8(ascii: "Z"), UInt8(ascii: "0") ... UInt8(ascii: "9"): true
        default: Array("!#$%&'*+-.^_`|~".utf8).contains(b)
        }
    }
}
