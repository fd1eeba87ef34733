/// An HTTP request to send through reckerd.
public struct ReckerRequest: Sendable {
    /// Method, URL, headers and options, as they go on the wire.
    public var head: RequestHead
    /// The body, sent with a Content-Length; nil sends none.
    public var body: [UInt8]?

    /// A request for `url` (absolute, or relative to the client's `baseURL`). POST, PUT and
    /// PATCH without a body go with `Content-Length: 0` (RFC 9110 §8.6).
    public init(method: String = "GET", url: String, headers: [(name: String, value: String)] = [],
                body: [UInt8]? = nil, options: RequestOptions = RequestOptions()) {
        let defined = ["POST", "PUT", "PATCH"].contains(method)
        head = RequestHead(method: method, url: url, headers: headers,
                           bodyLength: body.map { UInt64($0.count) } ?? (defined ? 0 : nil), options: options)
        self.body = body
    }
}
