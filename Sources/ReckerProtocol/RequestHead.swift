/// An HTTP request as the client hands it to the daemon (REQUEST_HEAD).
public struct RequestHead: Sendable, Equatable {
    /// The HTTP method, an RFC 9110 token such as `GET`.
    public var method: String
    /// The absolute http or https URL.
    public var url: String
    /// Request headers, sent in order; framing and hop-by-hop headers belong to reckerd.
    public var headers: [(name: String, value: String)]
    /// The body size, or nil when it is not known in advance (sent chunked upstream).
    public var bodyLength: UInt64?
    /// Per-request options; absent ones take the daemon's configuration.
    public var options: RequestOptions

    /// A request head; `bodyLength` nil sends the body chunked upstream.
    public init(method: String = "GET", url: String, headers: [(name: String, value: String)] = [],
                bodyLength: UInt64? = nil, options: RequestOptions = RequestOptions()) {
        self.method = method
        self.url = url
        self.headers = headers
        self.bodyLength = bodyLength
        self.options = options
    }

    /// Equal when every field is, headers in the same order.
    public static func == (a: RequestHead, b: RequestHead) -> Bool {
        a.method == b.method && a.url == b.url && a.bodyLength == b.bodyLength && a.options == b.options
            && a.headers.elementsEqual(b.headers) { $0.name == $1.name && $0.value == $1.value }
    }
}

/// Per-request options; absent ones take the daemon's configured values.
public struct RequestOptions: Sendable, Equatable {
    /// Option tags (docs/PROTOCOL.md §2.3). Bit 15 marks an option the daemon must know.
    package enum Tag {
        package static let connectTimeout: UInt16 = 0x0001
        package static let totalTimeout: UInt16 = 0x0002
        package static let followRedirects: UInt16 = 0x0003
        package static let compressed: UInt16 = 0x0004
        package static let keepMethod: UInt16 = 0x0005
        package static let insecure: UInt16 = 0x0006
        package static let critical: UInt16 = 0x8000
    }

    /// Milliseconds allowed for DNS, TCP connect and TLS.
    public var connectTimeoutMs: UInt32?
    /// Milliseconds allowed for the whole request, redirects included.
    public var totalTimeoutMs: UInt32?
    /// Follow up to this many redirects; nil or 0 does not follow.
    public var followRedirects: UInt8?
    /// Ask for a compressed response (`Accept-Encoding`) and hand back the decoded body.
    public var compressed: Bool?
    /// Keep the method and body across a 301/302/303 (curl's `-X POST`); otherwise a POST
    /// becomes a GET there.
    public var keepMethod: Bool?
    /// Skip the upstream's certificate and name checks (curl's `-k`), on connections of
    /// their own; the daemon may refuse it (`tls.allowInsecure`).
    public var insecure: Bool?
    /// Options this build does not know, kept as received (tag, value).
    package var unknown: [(tag: UInt16, value: [UInt8])] = []

    /// Options for one request; nil leaves an option to the daemon's configuration.
    public init(connectTimeoutMs: UInt32? = nil, totalTimeoutMs: UInt32? = nil,
                followRedirects: UInt8? = nil, compressed: Bool? = nil, keepMethod: Bool? = nil) {
        self.connectTimeoutMs = connectTimeoutMs
        self.totalTimeoutMs = totalTimeoutMs
        self.followRedirects = followRedirects
        self.compressed = compressed
        self.keepMethod = keepMethod
    }

    /// Equal when every option is, unknown ones included.
    public static func == (a: RequestOptions, b: RequestOptions) -> Bool {
        a.connectTimeoutMs == b.connectTimeoutMs && a.totalTimeoutMs == b.totalTimeoutMs
            && a.followRedirects == b.followRedirects && a.compressed == b.compressed && a.keepMethod == b.keepMethod
            && a.insecure == b.insecure
            && a.unknown.elementsEqual(b.unknown) { $0.tag == $1.tag && $0.value == $1.value }
    }
}

/// The final response's head and the facts about the connection that carried it.
public struct ResponseHead: Sendable, Equatable {
    /// The HTTP status code of the final response (after redirects reckerd followed).
    public var status: UInt16
    /// 10, 11, 20 or 30.
    public var httpVersion: UInt8
    /// reckerd's id of the upstream connection.
    public var connectionID: UInt64
    /// The connection had served an earlier request.
    public var reused: Bool
    /// Microseconds the request waited in reckerd for a connection.
    public var queueMicros: UInt32
    /// Microseconds of DNS and TCP connect (0 on a reused connection).
    public var connectMicros: UInt32
    /// Microseconds of the TLS handshake (0 when reused or plain HTTP).
    public var tlsMicros: UInt32
    /// Microseconds from the request's start to the first response byte.
    public var firstByteMicros: UInt32
    /// The upstream's response headers as received, in order.
    public var headers: [(name: String, value: String)]
    /// Facts about the final hop's connection, when the client asked for them (the `FACTS`
    /// feature, PROTOCOL.md §2.5); nil otherwise.
    public var facts: ResponseFacts?

    package init(status: UInt16, httpVersion: UInt8, connectionID: UInt64, reused: Bool,
                queueMicros: UInt32 = 0, connectMicros: UInt32 = 0, tlsMicros: UInt32 = 0,
                firstByteMicros: UInt32 = 0, headers: [(name: String, value: String)] = [], facts: ResponseFacts? = nil) {
        self.status = status
        self.httpVersion = httpVersion
        self.connectionID = connectionID
        self.reused = reused
        self.queueMicros = queueMicros
        self.connectMicros = connectMicros
        self.tlsMicros = tlsMicros
        self.firstByteMicros = firstByteMicros
        self.headers = headers
        self.facts = facts
    }

    /// "1.0", "1.1", "2" or "3": how a wire version number (10, 11, 20, 30) is written.
    public static func versionName(_ version: UInt8) -> String {
        switch version {
        case 10: "1.0"
        case 20: "2"
        case 30: "3"
        default: "1.1"
        }
    }

    /// This response's HTTP version, written as `versionName(_:)` does.
    public var versionName: String { ResponseHead.versionName(httpVersion) }

    /// The first value of a header, compared without case.
    public func header(_ name: String) -> String? {
        let lower = name.lowercased()
        return headers.first { $0.name.lowercased() == lower }?.value
    }

    /// Equal when every field is, headers in the same order.
    public static func == (a: ResponseHead, b: ResponseHead) -> Bool {
        a.status == b.status && a.httpVersion == b.httpVersion && a.connectionID == b.connectionID
            && a.reused == b.reused && a.queueMicros == b.queueMicros && a.connectMicros == b.connectMicros
            && a.tlsMicros == b.tlsMicros && a.firstByteMicros == b.firstByteMicros && a.facts == b.facts
            && a.headers.elementsEqual(b.headers) { $0.name == $1.name && $0.value == $1.value }
    }
}

/// What reckerd knows of the connection a response came over (RESPONSE_HEAD's facts block,
/// PROTOCOL.md §2.5): what curl's `-w` calls remote_ip, local_port, time_namelookup and the
/// status line's reason phrase.
public struct ResponseFacts: Sendable, Equatable {
    /// The final status line's reason phrase as the upstream sent it ("" over HTTP/2 and 3).
    public var reason: String
    /// The upstream address connected to, as text ("" if unknown), and its port (0 if unknown).
    public var remoteIP: String
    public var remotePort: UInt16
    /// reckerd's end of the connection.
    public var localIP: String
    public var localPort: UInt16
    /// Microseconds of name resolution (0 on a reused connection or for an address literal).
    public var namelookupMicros: UInt32

    package init(reason: String = "", remoteIP: String = "", remotePort: UInt16 = 0, localIP: String = "", localPort: UInt16 = 0,
                 namelookupMicros: UInt32 = 0) {
        self.reason = reason
        self.remoteIP = remoteIP
        self.remotePort = remotePort
        self.localIP = localIP
        self.localPort = localPort
        self.namelookupMicros = namelookupMicros
    }
}

/// RESPONSE_END: the totals of a finished response.
public struct ResponseEnd: Sendable, Equatable {
    /// Microseconds from the request's arrival at reckerd to its end.
    public var totalMicros: UInt32
    /// Body bytes delivered (after decoding a compressed body).
    public var bodyBytes: UInt64
    package init(totalMicros: UInt32, bodyBytes: UInt64) {
        self.totalMicros = totalMicros
        self.bodyBytes = bodyBytes
    }
}
