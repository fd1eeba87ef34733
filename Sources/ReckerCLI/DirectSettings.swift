/// What a command line asks of its own connection, which a pool shared by every client
/// cannot give it (another Unix socket, other CAs, a proxy, a host mapping, an HTTP
/// version, a client certificate): such a call is served as curl would serve it, by
/// `recker-direct` in this process without the pool (`-v` and `%{pooled}` say so).
public struct DirectSettings: Sendable, Equatable {
    /// --unix-socket PATH: HTTP to a server listening there (curl's meaning).
    public var unixSocket: String?
    /// -k on an https URL.
    public var insecure = false
    public var caFile: String?
    public var caPath: String?
    /// --resolve HOST:PORT:ADDR and --connect-to HOST:PORT:HOST2:PORT2, as libcurl takes them.
    public var resolve: [String] = []
    public var connectTo: [String] = []
    /// -x URL, --noproxy LIST, -U USER:PASS.
    public var proxy: String?
    public var noProxy: String?
    public var proxyUser: String?
    /// --http1.0, --http1.1, --http2, --http2-prior-knowledge.
    public var httpVersion: HTTPVersion?
    /// -E/--cert FILE[:PASSWORD], --key FILE.
    public var cert: String?
    public var key: String?
    /// -4 or -6.
    public var ipVersion: Int?
    /// --tlsv1.3, --tls-max VERSION, --ciphers LIST.
    public var minTLS13 = false
    public var tlsMax: String?
    public var ciphers: String?

    public enum HTTPVersion: Sendable, Equatable {
        case http10, http11, http2, http2PriorKnowledge
    }

    public init() {}
}
