/// An error as it travels on the wire: a stable code, the raw cause, and one line for people.
///
/// Codes never change meaning; new ones are added as the daemon learns new failures.
public struct ReckerError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A stable numeric error code (docs/PROTOCOL.md §5).
    public struct Code: RawRepresentable, Hashable, Sendable {
        /// The number on the wire.
        public let rawValue: UInt16
        /// The code with this number, known to this build or not.
        public init(rawValue: UInt16) { self.rawValue = rawValue }

        /// A frame whose body does not match its type (connection error).
        public static let malformedFrame = Code(rawValue: 1)
        /// A frame longer than the announced maximum (connection error).
        public static let frameTooLarge = Code(rawValue: 2)
        /// No HELLO first, a wrong magic, or no WELCOME in answer (connection error).
        public static let badHandshake = Code(rawValue: 3)
        /// No protocol version both sides speak (connection error).
        public static let unsupportedVersion = Code(rawValue: 4)
        /// A frame type not in the protocol (connection error).
        public static let unknownFrameType = Code(rawValue: 5)
        /// Stream 0 where a request belongs, or an id already in flight (connection error).
        public static let invalidStream = Code(rawValue: 6)
        /// Body data beyond the flow-control window (connection error).
        public static let flowControlError = Code(rawValue: 7)
        /// More requests in flight on the connection than the daemon allows.
        public static let tooManyInFlight = Code(rawValue: 8)
        /// The method is not an HTTP token, or is CONNECT.
        public static let invalidMethod = Code(rawValue: 100)
        /// The URL is not an absolute http or https URL, or holds credentials.
        public static let invalidURL = Code(rawValue: 101)
        /// A header name is not an HTTP token.
        public static let invalidHeaderName = Code(rawValue: 102)
        /// A header value holds a control character.
        public static let invalidHeaderValue = Code(rawValue: 103)
        /// A framing or hop-by-hop header, which reckerd sets itself.
        public static let forbiddenHeader = Code(rawValue: 104)
        /// A request option marked critical that the daemon does not know.
        public static let unknownCriticalOption = Code(rawValue: 105)
        /// The body sent does not match the announced length.
        public static let bodyLengthMismatch = Code(rawValue: 106)
        /// More headers, or header bytes, than the daemon's limits.
        public static let headersTooLarge = Code(rawValue: 107)
        /// The upstream's name did not resolve.
        public static let dnsFailed = Code(rawValue: 200)
        /// The TCP connection to the upstream failed.
        public static let connectFailed = Code(rawValue: 201)
        /// DNS, connect and TLS took longer than the connect timeout.
        public static let connectTimeout = Code(rawValue: 202)
        /// The TLS handshake failed (an untrusted certificate, for one).
        public static let tlsFailed = Code(rawValue: 203)
        /// The request took longer than its total timeout (the daemon's, or the call's own).
        public static let timeout = Code(rawValue: 204)
        /// Sending the request upstream failed.
        public static let upstreamSendFailed = Code(rawValue: 205)
        /// Receiving the response from upstream failed.
        public static let upstreamRecvFailed = Code(rawValue: 206)
        /// The upstream broke HTTP (or the daemon's header limits).
        public static let upstreamProtocol = Code(rawValue: 207)
        /// More redirects than the request allowed.
        public static let tooManyRedirects = Code(rawValue: 208)
        /// Another upstream failure; `detail` holds the CURLcode.
        public static let upstreamFailed = Code(rawValue: 209)
        /// The request was cancelled (CANCEL, a cancelled task, or a dropped stream).
        public static let cancelled = Code(rawValue: 300)
        /// The daemon is shutting down and takes no new requests.
        public static let shuttingDown = Code(rawValue: 301)
        /// The queue for a connection to this upstream is full.
        public static let queueFull = Code(rawValue: 302)
        /// No connection to the upstream became free in time.
        public static let queueTimeout = Code(rawValue: 303)
        /// This user may not use the daemon (connection error).
        public static let accessDenied = Code(rawValue: 304)
        /// The daemon ran out of a local resource (descriptors, memory, disk).
        public static let localResources = Code(rawValue: 305)
        /// The daemon's destination policy refuses this upstream.
        public static let destinationDenied = Code(rawValue: 306)
        /// The daemon, or this user, has too many clients connected (connection error).
        public static let tooManyClients = Code(rawValue: 307)
        /// A bug in reckerd: the request failed without a better code.
        public static let internalError = Code(rawValue: 399)

        /// No daemon answers at the socket (a client-side code, never sent by the daemon).
        public static let daemonUnavailable = Code(rawValue: 900)
        /// The connection to the daemon broke (a client-side code, never sent by the daemon).
        public static let connectionLost = Code(rawValue: 901)

        /// The name used in docs/PROTOCOL.md, or the number for a code this build does not know.
        public var name: String {
            switch self {
            case .malformedFrame: "MALFORMED_FRAME"
            case .frameTooLarge: "FRAME_TOO_LARGE"
            case .badHandshake: "BAD_HANDSHAKE"
            case .unsupportedVersion: "UNSUPPORTED_VERSION"
            case .unknownFrameType: "UNKNOWN_FRAME_TYPE"
            case .invalidStream: "INVALID_STREAM"
            case .flowControlError: "FLOW_CONTROL_ERROR"
            case .tooManyInFlight: "TOO_MANY_IN_FLIGHT"
            case .invalidMethod: "INVALID_METHOD"
            case .invalidURL: "INVALID_URL"
            case .invalidHeaderName: "INVALID_HEADER_NAME"
            case .invalidHeaderValue: "INVALID_HEADER_VALUE"
            case .forbiddenHeader: "FORBIDDEN_HEADER"
            case .unknownCriticalOption: "UNKNOWN_CRITICAL_OPTION"
            case .bodyLengthMismatch: "BODY_LENGTH_MISMATCH"
            case .headersTooLarge: "HEADERS_TOO_LARGE"
            case .dnsFailed: "DNS_FAILED"
            case .connectFailed: "CONNECT_FAILED"
            case .connectTimeout: "CONNECT_TIMEOUT"
            case .tlsFailed: "TLS_FAILED"
            case .timeout: "TIMEOUT"
            case .upstreamSendFailed: "UPSTREAM_SEND_FAILED"
            case .upstreamRecvFailed: "UPSTREAM_RECV_FAILED"
            case .upstreamProtocol: "UPSTREAM_PROTOCOL"
            case .tooManyRedirects: "TOO_MANY_REDIRECTS"
            case .upstreamFailed: "UPSTREAM_FAILED"
            case .cancelled: "CANCELLED"
            case .shuttingDown: "SHUTTING_DOWN"
            case .queueFull: "QUEUE_FULL"
            case .queueTimeout: "QUEUE_TIMEOUT"
            case .accessDenied: "ACCESS_DENIED"
            case .localResources: "LOCAL_RESOURCES"
            case .destinationDenied: "DESTINATION_DENIED"
            case .tooManyClients: "TOO_MANY_CLIENTS"
            case .internalError: "INTERNAL"
            case .daemonUnavailable: "DAEMON_UNAVAILABLE"
            case .connectionLost: "CONNECTION_LOST"
            default: "ERROR_\(rawValue)"
            }
        }

        /// Whether the code ends the whole connection rather than one request.
        public var isConnectionError: Bool { rawValue < 8 || self == .accessDenied || self == .tooManyClients }
    }

    /// What went wrong, as a stable code.
    public var code: Code
    /// The raw cause (a CURLcode, an errno), or 0.
    public var detail: UInt32
    /// One line for people.
    public var message: String
    /// The request may have reached the upstream, so it may have had an effect there.
    public var mayHaveReachedUpstream: Bool
    /// Sending the same request again cannot repeat an effect on the upstream.
    public var retrySafe: Bool

    /// An error with `code` and a message for people.
    public init(_ code: Code, _ message: String, detail: UInt32 = 0,
                mayHaveReachedUpstream: Bool = false, retrySafe: Bool = true) {
        self.code = code
        self.message = message
        self.detail = detail
        self.mayHaveReachedUpstream = mayHaveReachedUpstream
        self.retrySafe = retrySafe
    }

    /// `NAME (number): message`.
    public var description: String { "\(code.name) (\(code.rawValue)): \(message)" }
}
