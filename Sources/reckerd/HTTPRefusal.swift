import ReckerProtocol

/// Why the HTTP front answers a request itself instead of sending it upstream: the status
/// and a plain-text reason naming reckerd's error code. Every refusal closes the
/// connection, since what follows on it (a body, a smuggled request) cannot be trusted.
struct HTTPRefusal: Error {
    var status: UInt16
    /// reckerd's error code name (`INVALID_URL`, `BAD_REQUEST`, …), also sent as `X-Reckerd-Error`.
    var code: String
    var message: String
    /// Extra response headers (`Allow` on a 405).
    var headers: [String] = []

    init(_ status: UInt16, _ code: String, _ message: String, headers: [String] = []) {
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
    }

    /// A request reckerd's own checks refused, with the status its code stands for.
    init(_ error: ReckerError) {
        self.init(HTTPProxyRules.status(for: error), error.code.name, error.message)
    }
}
