/// Every frame of protocol v1 as a typed value (docs/PROTOCOL.md §2).
///
/// Public only because `MessageChannel` is: `ReckerClient` is the API for clients, and
/// docs/PROTOCOL.md the contract for other languages. The codec itself is `package`.
public enum Message: Sendable, Equatable {
    /// HELLO (§2.1): the client's first frame.
    case hello(Hello)
    /// WELCOME (§2.2): the daemon's answer to HELLO.
    case welcome(Welcome)
    /// REQUEST_HEAD (§2.3); `endRequest`: no body follows.
    case requestHead(stream: UInt32, RequestHead, endRequest: Bool)
    /// REQUEST_BODY (§2.4); `endRequest`: the last body frame.
    case requestBody(stream: UInt32, [UInt8], endRequest: Bool)
    /// RESPONSE_HEAD (§2.5).
    case responseHead(stream: UInt32, ResponseHead)
    /// RESPONSE_BODY (§2.6): the next bytes of the body.
    case responseBody(stream: UInt32, [UInt8])
    /// RESPONSE_END (§2.7): the request is over.
    case responseEnd(stream: UInt32, ResponseEnd)
    /// WINDOW_UPDATE (§2.8): `increment` more body bytes may be sent on the stream.
    case windowUpdate(stream: UInt32, increment: UInt32)
    /// CANCEL (§2.9): stop the request and free its upstream connection.
    case cancel(stream: UInt32)
    /// ERROR (§2.10): the request failed, or on stream 0 the connection.
    case error(stream: UInt32, ReckerError)
    /// PING (§2.11) with 8 opaque bytes.
    case ping([UInt8])
    /// PONG (§2.11): the PING's bytes, returned.
    case pong([UInt8])
    /// `format`: 0 JSON, 1 Prometheus text, 2 table (docs/PROTOCOL.md §2.12).
    case statsRequest(stream: UInt32, format: UInt8 = 0)
    /// `more`: the document goes on in the next STATS_RESPONSE of the stream (PROTOCOL.md 2.12).
    case statsResponse(stream: UInt32, json: [UInt8], more: Bool = false)

    /// The 4-byte magic that opens HELLO and WELCOME.
    package static let magic: [UInt8] = Array("RECK".utf8)
    /// The protocol version this build speaks.
    package static let version: UInt16 = ReckerVersion.protocolVersion
    /// reckerd's release, which `recker --version` and `reckerd --version` print.
    package static let release = ReckerVersion.release
    /// `body_length` value meaning "not known".
    package static let unknownLength = UInt64.max

    /// HELLO: the client's first frame.
    public struct Hello: Sendable, Equatable {
        package var minVersion: UInt16
        package var maxVersion: UInt16
        package var features: UInt32
        package init(minVersion: UInt16 = Message.version, maxVersion: UInt16 = Message.version, features: UInt32 = 0) {
            self.minVersion = minVersion
            self.maxVersion = maxVersion
            self.features = features
        }
    }

    /// Feature bits (docs/PROTOCOL.md §3).
    package enum Feature {
        /// WELCOME carries the header limits.
        package static let limits: UInt32 = 0x1
        /// RESPONSE_HEAD carries the connection facts block (PROTOCOL.md §2.5).
        package static let facts: UInt32 = 0x2
    }

    /// WELCOME: the daemon's version choice and limits.
    public struct Welcome: Sendable, Equatable {
        package var version: UInt16
        package var features: UInt32
        package var maxFrame: UInt32
        package var maxInFlight: UInt32
        package var initialWindow: UInt32
        /// The request header limits, present when `features` has `Feature.limits`.
        package var headerLimits: HeaderLimits?
        package init(version: UInt16 = Message.version, features: UInt32 = 0, maxFrame: UInt32,
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
    package var stream: UInt32 {
        switch self {
        case .hello, .welcome, .ping, .pong: 0
        case .requestHead(let s, _, _), .requestBody(let s, _, _), .responseHead(let s, _),
             .responseBody(let s, _), .responseEnd(let s, _), .windowUpdate(let s, _),
             .cancel(let s), .error(let s, _), .statsRequest(let s, _), .statsResponse(let s, _, _):
            s
        }
    }
}
