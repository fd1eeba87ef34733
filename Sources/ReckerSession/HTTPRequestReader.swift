/// Reads HTTP/1.x requests from a client's bytes, strictly (RFC 9112): where each request
/// starts and ends, its head, and its body de-chunked. Everything a proxy must not forgive
/// is refused with a 400 (or 431) naming the rule, because a lenient reader in front of a
/// stricter or differently lenient upstream is how requests are smuggled: a bare LF or CR,
/// obs-fold, a space before a colon, a method or name that is not a token, a version that
/// is not `HTTP/DIGIT.DIGIT`, conflicting or malformed framing, chunk sizes or chunk line
/// ends that are not exact. Any token is a method (RFC 9110 §9.1: QUERY, BREW, a 64-byte
/// extension). Pure: bytes in, events out; the connection decides what they become.
package struct HTTPRequestReader {
    package enum Event {
        /// The first byte of a request arrived (the header timer starts).
        case begun
        case head(HTTPParsedRequest)
        /// Body bytes, de-chunked (a slice of the input).
        case body(ArraySlice<UInt8>)
        /// The request is whole; the reader is ready for the next one.
        case end
        case refused(HTTPRefusal)
    }

    private enum State {
        case idle
        case head
        case length(remaining: UInt64)
        case chunkSize
        case chunkData(remaining: UInt64)
        case chunkDataEnd
        case trailers
        /// The head said there is no body: `.end` comes without input.
        case bodyless
        case refused
    }

    /// Most bytes a head may have (request line, headers, line ends), and the trailers too.
    package let headLimit: Int
    /// The longest chunk-size line, extensions included.
    package static let chunkLineLimit = 4096

    private var state = State.idle
    private var line: [UInt8] = []
    private var lines: [[UInt8]] = []
    private var headBytes = 0
    /// The method of the request being read, once its head is whole ("" before).
    package private(set) var method = ""

    package init(headLimit: Int) { self.headLimit = headLimit }

    /// True when an event is due without more input (the end of a body-less request).
    package var hasEventWithoutInput: Bool { if case .bodyless = state { true } else { false } }

    /// A request is partly read (its head or body has begun and not ended).
    package var inRequest: Bool {
        switch state {
        case .idle, .refused: false
        default: true
        }
    }

    /// Reads from `bytes` up to the next event; returns how many bytes were taken and the
    /// event, or nil when every byte was taken and none completed anything.
    package mutating func read(_ bytes: ArraySlice<UInt8>) -> (taken: Int, event: Event?) {
        var i = bytes.startIndex
        while true {
            switch state {
            case .refused:
                return (i - bytes.startIndex, nil)
            case .bodyless:
                state = .idle
                return (i - bytes.startIndex, .end)
            case .idle:
                guard i < bytes.endIndex else { return (i - bytes.startIndex, nil) }
                method = ""
                line = []
                lines = []
                headBytes = 0
                state = .head
                return (0, .begun)
            case .head:
                while i < bytes.endIndex {
                    let b = bytes[i]
                    i += 1
                    guard let step = fieldLineStep(b) else {
                        return refuse(i, bytes, 431, "HEADERS_TOO_LARGE", "the request head is longer than \(headLimit) bytes (limits.maxHeaderBytes, limits.maxHeaders)")
                    }
                    switch step {
                    case .more:
                        continue
                    case .bad(let why):
                        return refuse(i, bytes, 400, "BAD_REQUEST", why)
                    case .line(let l):
                        // Empty lines before the request line are ignored (RFC 9112 §2.2).
                        if l.isEmpty && lines.isEmpty { continue }
                        if !l.isEmpty {
                            if !lines.isEmpty, l.first == 0x20 || l.first == 0x09 {
                                return refuse(i, bytes, 400, "BAD_REQUEST", "a header line is folded (obs-fold, RFC 9112 §5.2)")
                            }
                            lines.append(l)
                            continue
                        }
                        switch Self.parseHead(lines) {
                        case .failure(let refusal):
                            return refuse(i, bytes, refusal)
                        case .success(let (request, framing)):
                            method = request.method
                            lines = []
                            switch framing {
                            case .none: state = .bodyless
                            case .length(let n): state = n == 0 ? .bodyless : .length(remaining: n)
                            case .chunked: state = .chunkSize
                            }
                            return (i - bytes.startIndex, .head(request))
                        }
                    }
                }
                return (i - bytes.startIndex, nil)
            case .length(let remaining):
                guard i < bytes.endIndex else { return (i - bytes.startIndex, nil) }
                let n = Int(min(UInt64(bytes.endIndex - i), remaining))
                let piece = bytes[i ..< i + n]
                state = remaining == UInt64(n) ? .bodyless : .length(remaining: remaining - UInt64(n))
                return (i + n - bytes.startIndex, .body(piece))
            case .chunkData(let remaining):
                guard i < bytes.endIndex else { return (i - bytes.startIndex, nil) }
                let n = Int(min(UInt64(bytes.endIndex - i), remaining))
                let piece = bytes[i ..< i + n]
                state = remaining == UInt64(n) ? .chunkDataEnd : .chunkData(remaining: remaining - UInt64(n))
                return (i + n - bytes.startIndex, .body(piece))
            case .chunkDataEnd:
                // Exactly CRLF after chunk data (RFC 9112 §7.1); `line` holds the CR once seen.
                while i < bytes.endIndex {
                    let b = bytes[i]
                    i += 1
                    guard b == (line.isEmpty ? 0x0D : 0x0A) else {
                        return refuse(i, bytes, 400, "BAD_REQUEST", "chunk data is not followed by CRLF (RFC 9112 §7.1)")
                    }
                    if line.isEmpty {
                        line = [0x0D]
                    } else {
                        line = []
                        state = .chunkSize
                        break
                    }
                }
                if case .chunkDataEnd = state { return (i - bytes.startIndex, nil) }
            case .chunkSize:
                while i < bytes.endIndex {
                    let b = bytes[i]
                    i += 1
                    switch lineStep(b) {
                    case .more:
                        if line.count > Self.chunkLineLimit {
                            return refuse(i, bytes, 400, "BAD_REQUEST", "a chunk-size line is longer than \(Self.chunkLineLimit) bytes")
                        }
                        continue
                    case .bad(let why):
                        return refuse(i, bytes, 400, "BAD_REQUEST", why)
                    case .line(let l):
                        guard let size = Self.chunkSize(l) else {
                            return refuse(i, bytes, 400, "BAD_REQUEST", "an invalid chunk size (RFC 9112 §7.1: hex digits, then optional ;extensions)")
                        }
                        if size == 0 {
                            headBytes = 0
                            state = .trailers
                        } else {
                            state = .chunkData(remaining: size)
                        }
                    }
                    break
                }
                if case .chunkSize = state { return (i - bytes.startIndex, nil) }
            case .trailers:
                // Trailer fields are read, checked as header lines, and dropped: a proxy
                // may discard them (RFC 9110 §6.5.1).
                while i < bytes.endIndex {
                    let b = bytes[i]
                    i += 1
                    guard let step = fieldLineStep(b) else {
                        return refuse(i, bytes, 431, "HEADERS_TOO_LARGE", "the request's trailers are longer than \(headLimit) bytes")
                    }
                    switch step {
                    case .more:
                        continue
                    case .bad(let why):
                        return refuse(i, bytes, 400, "BAD_REQUEST", why)
                    case .line(let l):
                        if l.isEmpty {
                            state = .idle
                            return (i - bytes.startIndex, .end)
                        }
                        if l.first == 0x20 || l.first == 0x09 {
                            return refuse(i, bytes, 400, "BAD_REQUEST", "a trailer line is folded (obs-fold, RFC 9112 §5.2)")
                        }
                        if case .failure(let refusal) = Self.parseField(l) { return refuse(i, bytes, refusal) }
                    }
                }
                return (i - bytes.startIndex, nil)
            }
        }
    }

    // MARK: - lines

    private enum LineStep {
        case more
        case line([UInt8])
        case bad(String)
    }

    /// `lineStep` for the head and the trailers, whose bytes count against `headLimit`;
    /// nil once past it.
    private mutating func fieldLineStep(_ b: UInt8) -> LineStep? {
        headBytes += 1
        return headBytes > headLimit ? nil : lineStep(b)
    }

    /// Collects a line; only CRLF ends one (RFC 9112 §2.2: a bare CR or LF is refused).
    private mutating func lineStep(_ b: UInt8) -> LineStep {
        if line.last == 0x0D {
            guard b == 0x0A else { return .bad("a line ends in a bare CR, not CRLF (RFC 9112 §2.2)") }
            line.removeLast()
            defer { line = [] }
            return .line(line)
        }
        if b == 0x0A { return .bad("a line ends in a bare LF, not CRLF (RFC 9112 §2.2)") }
        line.append(b)
        return .more
    }

    private mutating func refuse(_ i: Int, _ bytes: ArraySlice<UInt8>, _ status: UInt16, _ code: String, _ message: String) -> (Int, Event?) {
        refuse(i, bytes, HTTPRefusal(status, code, message))
    }

    private mutating func refuse(_ i: Int, _ bytes: ArraySlice<UInt8>, _ refusal: HTTPRefusal) -> (Int, Event?) {
        state = .refused
        return (i - bytes.startIndex, .refused(refusal))
    }

    // MARK: - the head

    package enum Framing: Equatable {
        case none
        case length(UInt64)
        case chunked
    }

    /// RFC 9110 §5.6.2.
    package static func isTchar(_ b: UInt8) -> Bool {
        switch b {
        case 0x30 ... 0x39, 0x41 ... 0x5A, 0x61 ... 0x7A: true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
             UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
             UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"): true
        default: false
        }
    }

    private static func bad(_ message: String) -> Result<(HTTPParsedRequest, Framing), HTTPRefusal> {
        .failure(HTTPRefusal(400, "BAD_REQUEST", message))
    }

    /// The request line and header lines of one head (without line ends), made into a
    /// request and its framing (RFC 9112 §6.3), or refused.
    package static func parseHead(_ lines: [[UInt8]]) -> Result<(HTTPParsedRequest, Framing), HTTPRefusal> {
        guard let first = lines.first else { return bad("an empty request head") }
        var r = HTTPParsedRequest()
        // request-line = method SP request-target SP HTTP-version (RFC 9112 §3)
        let parts = first.split(separator: 0x20, omittingEmptySubsequences: false)
        guard parts.count == 3 else {
            return bad("the request line is not METHOD SP TARGET SP VERSION with single spaces (RFC 9112 §3)")
        }
        guard !parts[0].isEmpty, parts[0].allSatisfy(isTchar) else {
            return bad("the method is not a token (RFC 9110 §9.1)")
        }
        guard !parts[1].isEmpty, parts[1].allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            return bad("the request target is empty or holds a control, space or non-ASCII byte (RFC 9112 §3.2)")
        }
        let v = Array(parts[2])
        guard v.count == 8, v.starts(with: Array("HTTP/".utf8)), (0x30 ... 0x39).contains(v[5]), v[6] == UInt8(ascii: "."),
              (0x30 ... 0x39).contains(v[7]) else {
            return bad("the version is not HTTP/DIGIT.DIGIT (RFC 9112 §2.3)")
        }
        r.method = String(decoding: parts[0], as: UTF8.self)
        r.target = String(decoding: parts[1], as: UTF8.self)
        r.major = UInt(v[5] - 0x30)
        r.minor = UInt(v[7] - 0x30)

        for l in lines.dropFirst() {
            switch parseField(l) {
            case .failure(let refusal): return .failure(refusal)
            case .success(let field): r.headers.append(field)
            }
        }

        var close = false, keepAlive = false, connectionUpgrade = false
        for token in r.values("connection").flatMap({ $0.split(separator: ",") }) {
            switch token.trimmingSpaces.lowercased() {
            case "close": close = true
            case "keep-alive": keepAlive = true
            case "upgrade": connectionUpgrade = true
            default: break
            }
        }
        r.keepAlive = !close && (r.major > 1 || r.minor >= 1 || keepAlive)
        r.upgrade = connectionUpgrade && !r.values("upgrade").isEmpty

        // Framing, RFC 9112 §6.1 and §6.3: one way to find the body's end, or none.
        let lengths = r.values("content-length")
        let codings = r.values("transfer-encoding")
        if !codings.isEmpty && !lengths.isEmpty {
            return bad("both Transfer-Encoding and Content-Length: a request smuggling pattern (RFC 9112 §6.3)")
        }
        if !codings.isEmpty {
            guard codings.count == 1, codings[0].lowercased() == "chunked" else {
                return bad("Transfer-Encoding must be exactly \"chunked\" (other codings are not accepted from clients)")
            }
            r.chunked = true
            return .success((r, .chunked))
        }
        guard let length = lengths.first else { return .success((r, .none)) }
        guard lengths.count == 1 else { return bad("more than one Content-Length (RFC 9112 §6.3)") }
        guard !length.isEmpty, length.utf8.count <= 19, length.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let n = UInt64(length) else {
            return bad("Content-Length is not a number of at most 19 digits")
        }
        r.contentLength = n
        return .success((r, .length(n)))
    }

    /// field-line = field-name ":" OWS field-value OWS (RFC 9112 §5): a token name with no
    /// space before the colon; a value of visible characters, spaces, tabs and obs-text.
    package static func parseField(_ l: [UInt8]) -> Result<(name: String, value: String), HTTPRefusal> {
        guard let colon = l.firstIndex(of: UInt8(ascii: ":")) else {
            return .failure(HTTPRefusal(400, "BAD_REQUEST", "a header line without a colon"))
        }
        let name = l[..<colon]
        guard !name.isEmpty else { return .failure(HTTPRefusal(400, "BAD_REQUEST", "a header with an empty name")) }
        guard name.allSatisfy(isTchar) else {
            return .failure(HTTPRefusal(400, "BAD_REQUEST", name.last == 0x20 || name.last == 0x09
                ? "whitespace between a header's name and its colon (RFC 9112 §5.1)"
                : "a header name is not a token (RFC 9110 §5.1)"))
        }
        var value = l[(colon + 1)...]
        guard value.allSatisfy({ $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7F) }) else {
            return .failure(HTTPRefusal(400, "BAD_REQUEST", "a header value holds a control character (RFC 9110 §5.5)"))
        }
        while let f = value.first, f == 0x20 || f == 0x09 { value = value.dropFirst() }
        while let f = value.last, f == 0x20 || f == 0x09 { value = value.dropLast() }
        return .success((String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self)))
    }

    /// chunk-size [ chunk-ext ] (RFC 9112 §7.1): 1 to 16 hex digits, then nothing or `;`
    /// and extensions (ignored, but without controls).
    package static func chunkSize(_ l: [UInt8]) -> UInt64? {
        var size: UInt64 = 0
        var digits = 0
        for b in l {
            let d: UInt8
            switch b {
            case 0x30 ... 0x39: d = b - 0x30
            case 0x41 ... 0x46: d = b - 0x41 + 10
            case 0x61 ... 0x66: d = b - 0x61 + 10
            case UInt8(ascii: ";"):
                guard digits > 0 else { return nil }
                let ext = l[(digits + 1)...]
                guard ext.allSatisfy({ $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7F) }) else { return nil }
                return size
            default:
                return nil
            }
            digits += 1
            guard digits <= 16 else { return nil }
            size = size << 4 | UInt64(d)
        }
        return digits > 0 ? size : nil
    }
}
