/// A whole response: status, headers, connection facts, and the body.
public struct ReckerResponse: Sendable {
    /// Status, headers, and which upstream connection carried the request.
    public var head: ResponseHead
    /// The whole body (decoded, when the request asked for `compressed`).
    public var body: [UInt8]
    /// The request's totals: time taken and body bytes.
    public var end: ResponseEnd
    /// The HTTP status code.
    public var status: Int { Int(head.status) }
}
