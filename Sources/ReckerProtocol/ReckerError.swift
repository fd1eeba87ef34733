/// An error as it travels on the wire: a stable code, the raw cause, and one line for people.
///
/// Codes never change meaning; new ones are added as the daemon learns new failures.
public struct ReckerError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A stable numeric error code (docs/PROTOCOL.md §5).
    public struct Code: RawRepresentable, Hashable, Sendable {
        public let rawValue: UInt16
        public init(rawValue: UInt16) { self.rawValue = rawValue }

        public static let malformedFrame = Code(rawValue: 1)
        public static let frameTooLarge = Code(rawValue: 2)
        public static let badHandshake = Code(rawValue: 3)
        public static let unsupportedVersion = Code(rawValue: 4)
        public static let unknownFrameType = Code(rawValue: 5)
        public static let invalidStream = Code(rawValue: 6)
        public static let flowControlError = Code(rawValue: 7)
        public static let tooManyInFlight = Code(rawValue: 8)
        public static let invalidMethod = Code(rawValue: 100)
        public static let invalidURL = Code(rawValue: 101)
        public static let invalidHeaderName = Code(rawValue: 102)
        public static let invalidHeaderValue = Code(rawValue: 103)
        public static let forbiddenHeader = Code(rawValue: 104)
        public static let unknownCriticalOption = Code(rawValue: 105)
        public static let bodyLengthMismatch = Code(rawValue: 106)
        public static let headersTooLarge = Code(rawValue: 107)
        public static let dnsFailed = Code(rawValue: 200)
        public static let connectFailed = Code(rawValue: 201)
        public static let connectTimeout = Code(rawValue: 202)
        public static let tlsFailed = Code(rawValue: 203)
        public static let timeout = Code(rawValue: 204)
        public static let upstreamSendFailed = Code(rawValue: 205)
        public static let upstreamRecvFailed = Code(rawValue: 206)
        public static let upstreamProtocol = Code(rawValue: 207)
        public static let tooManyRedirects = Code(rawValue: 208)
        public static let upstreamFailed = Code(rawValue: 209)
        public static let cancelled = Code(rawValue: 300)
        public static let shuttingDown = Code(rawValue: 301)
        public static let queueFull = Code(rawValue: 302)
        public static let queueTimeout = Code(rawValue: 303)
        public static let accessDenied = Code(rawValue: 304)
        public static let localResources = Code(rawValue: 305)
        public static let destinationDenied = Code(rawValue: 306)
        public static let tooManyClients = Code(rawValue: 307)
        public static let internalError = Code(rawValue: 399)

        /// Codes on the client side only: never sent by the daemon.
        public static let daemonUnavailable = Code(rawValue: 900)
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

    public var code: Code
    /// The raw cause (a CURLcode, an errno), or 0.
    public var detail: UInt32
    public var message: String
    /// The request may have reached the upstream, so it may have had an effect there.
    public var mayHaveReachedUpstream: Bool
    /// Sending the same request again cannot repeat an effect on the upstream.
    public var retrySafe: Bool

    public init(_ code: Code, _ message: String, detail: UInt32 = 0,
                mayHaveReachedUpstream: Bool = false, retrySafe: Bool = true) {
        self.code = code
        self.message = message
        self.detail = detail
        self.mayHaveReachedUpstream = mayHaveReachedUpstream
        self.retrySafe = retrySafe
    }

    public var description: String { "\(code.name) (\(code.rawValue)): \(message)" }
}
