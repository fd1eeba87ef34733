/// An HTTP request as the client hands it to the daemon (REQUEST_HEAD).
public struct RequestHead: Sendable, Equatable {
    public var method: String
    public var url: String
    public var headers: [(name: String, value: String)]
    /// The body size, or nil when it is not known in advance (sent chunked upstream).
    public var bodyLength: UInt64?
    public var options: RequestOptions

    public init(method: String = "GET", url: String, headers: [(name: String, value: String)] = [],
                bodyLength: UInt64? = nil, options: RequestOptions = RequestOptions()) {
        self.method = method
        self.url = url
        self.headers = headers
        self.bodyLength = bodyLength
        self.options = options
    }

    public static func == (a: RequestHead, b: RequestHead) -> Bool {
        a.method == b.method && a.url == b.url && a.bodyLength == b.bodyLength && a.options == b.options
            && a.headers.elementsEqual(b.headers) { $0.name == $1.name && $0.value == $1.value }
    }
}

/// Per-request options; absent ones take the daemon's configured values.
public struct RequestOptions: Sendable, Equatable {
    /// Option tags (docs/PROTOCOL.md §2.3). Bit 15 marks an option the daemon must know.
    public enum Tag {
        public static let connectTimeout: UInt16 = 0x0001
        public static let totalTimeout: UInt16 = 0x0002
        public static let followRedirects: UInt16 = 0x0003
        public static let compressed: UInt16 = 0x0004
        public static let keepMethod: UInt16 = 0x0005
        public static let critical: UInt16 = 0x8000
    }

    public var connectTimeoutMs: UInt32?
    public var totalTimeoutMs: UInt32?
    /// Follow up to this many redirects; nil or 0 does not follow.
    public var followRedirects: UInt8?
    public var compressed: Bool?
    /// Keep the method and body across a 301/302/303 (curl's `-X POST`); otherwise a POST
    /// becomes a GET there.
    public var keepMethod: Bool?
    /// Options this build does not know, kept as received (tag, value).
    public var unknown: [(tag: UInt16, value: [UInt8])] = []

    public init(connectTimeoutMs: UInt32? = nil, totalTimeoutMs: UInt32? = nil,
                followRedirects: UInt8? = nil, compressed: Bool? = nil) {
        self.connectTimeoutMs = connectTimeoutMs
        self.totalTimeoutMs = totalTimeoutMs
        self.followRedirects = followRedirects
        self.compressed = compressed
    }

    public static func == (a: RequestOptions, b: RequestOptions) -> Bool {
        a.connectTimeoutMs == b.connectTimeoutMs && a.totalTimeoutMs == b.totalTimeoutMs
            && a.followRedirects == b.followRedirects && a.compressed == b.compressed && a.keepMethod == b.keepMethod
            && a.unknown.elementsEqual(b.unknown) { $0.tag == $1.tag && $0.value == $1.value }
    }
}

/// The final response's head and the facts about the connection that carried it.
public struct ResponseHead: Sendable, Equatable {
    public var status: UInt16
    /// 10, 11, 20 or 30.
    public var httpVersion: UInt8
    /// reckerd's id of the upstream connection.
    public var connectionID: UInt64
    /// The connection had served an earlier request.
    public var reused: Bool
    public var queueMicros: UInt32
    public var connectMicros: UInt32
    public var tlsMicros: UInt32
    public var firstByteMicros: UInt32
    public var headers: [(name: String, value: String)]

    public init(status: UInt16, httpVersion: UInt8, connectionID: UInt64, reused: Bool,
                queueMicros: UInt32 = 0, connectMicros: UInt32 = 0, tlsMicros: UInt32 = 0,
                firstByteMicros: UInt32 = 0, headers: [(name: String, value: String)] = []) {
        self.status = status
        self.httpVersion = httpVersion
        self.connectionID = connectionID
        self.reused = reused
        self.queueMicros = queueMicros
        self.connectMicros = connectMicros
        self.tlsMicros = tlsMicros
        self.firstByteMicros = firstByteMicros
        self.headers = headers
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

    public static func == (a: ResponseHead, b: ResponseHead) -> Bool {
        a.status == b.status && a.httpVersion == b.httpVersion && a.connectionID == b.connectionID
            && a.reused == b.reused && a.queueMicros == b.queueMicros && a.connectMicros == b.connectMicros
            && a.tlsMicros == b.tlsMicros && a.firstByteMicros == b.firstByteMicros
            && a.headers.elementsEqual(b.headers) { $0.name == $1.name && $0.value == $1.value }
    }
}

/// RESPONSE_END: the totals of a finished response.
public struct ResponseEnd: Sendable, Equatable {
    public var totalMicros: UInt32
    public var bodyBytes: UInt64
    public init(totalMicros: UInt32, bodyBytes: UInt64) {
        self.totalMicros = totalMicros
        self.bodyBytes = bodyBytes
    }
}
