/// Every frame of protocol v1 as a typed value (docs/PROTOCOL.md §2).
public enum Message: Sendable, Equatable {
    case hello(Hello)
    case welcome(Welcome)
    case requestHead(stream: UInt32, RequestHead, endRequest: Bool)
    case requestBody(stream: UInt32, [UInt8], endRequest: Bool)
    case responseHead(stream: UInt32, ResponseHead)
    case responseBody(stream: UInt32, [UInt8])
    case responseEnd(stream: UInt32, ResponseEnd)
    case windowUpdate(stream: UInt32, increment: UInt32)
    case cancel(stream: UInt32)
    case error(stream: UInt32, ReckerError)
    case ping([UInt8])
    case pong([UInt8])
    /// `format`: 0 JSON, 1 Prometheus text, 2 table (docs/PROTOCOL.md §2.12).
    case statsRequest(stream: UInt32, format: UInt8 = 0)
    /// `more`: the document goes on in the next STATS_RESPONSE of the stream (PROTOCOL.md 2.12).
    case statsResponse(stream: UInt32, json: [UInt8], more: Bool = false)

    /// The 4-byte magic that opens HELLO and WELCOME.
    public static let magic: [UInt8] = Array("RECK".utf8)
    /// The protocol version this build speaks.
    public static let version: UInt16 = 1
    /// reckerd's release, which `recker --version` and `reckerd --version` print.
    public static let release = "0.1.0"
    /// `body_length` value meaning "not known".
    public static let unknownLength = UInt64.max

    /// HELLO: the client's first frame.
    public struct Hello: Sendable, Equatable {
        public var minVersion: UInt16
        public var maxVersion: UInt16
        public var features: UInt32
        public init(minVersion: UInt16 = Message.version, maxVersion: UInt16 = Message.version, features: UInt32 = 0) {
            self.minVersion = minVersion
            self.maxVersion = maxVersion
            self.features = features
        }
    }

    /// Feature bits (docs/PROTOCOL.md §3).
    public enum Feature {
        /// WELCOME carries the header limits.
        public static let limits: UInt32 = 0x1
    }

    /// WELCOME: the daemon's version choice and limits.
    public struct Welcome: Sendable, Equatable {
        public var version: UInt16
        public var features: UInt32
        public var maxFrame: UInt32
        public var maxInFlight: UInt32
        public var initialWindow: UInt32
        /// The request header limits, present when `features` has `Feature.limits`.
        public var headerLimits: HeaderLimits?
        public init(version: UInt16 = Message.version, features: UInt32 = 0, maxFrame: UInt32,
                    maxInFlight: UInt32, initialWindow: UInt32, headerLimits: HeaderLimits? = nil) {
            self.version = version
            self.features = features
            self.maxFrame = maxFrame
            self.maxInFlight = maxInFlight
            self.initialWindow = initialWindow
            self.headerLimits = headerLimits
        }
    }

    /// The stream the message belongs to (0 for connection frames).
    public var stream: UInt32 {
        switch self {
        case .hello, .welcome, .ping, .pong: 0
        case .requestHead(let s, _, _), .requestBody(let s, _, _), .responseHead(let s, _),
             .responseBody(let s, _), .responseEnd(let s, _), .windowUpdate(let s, _),
             .cancel(let s), .error(let s, _), .statsRequest(let s, _), .statsResponse(let s, _, _):
            s
        }
    }
}
