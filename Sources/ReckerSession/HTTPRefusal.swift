/// Why the HTTP front answers a request itself instead of sending it upstream: the status
/// and a plain-text reason naming reckerd's error code. Every refusal closes the
/// connection, since what follows on it (a body, a smuggled request) cannot be trusted.
package struct HTTPRefusal: Error {
    package var status: UInt16
    /// reckerd's error code name (`INVALID_URL`, `BAD_REQUEST`, …), also sent as `X-Reckerd-Error`.
    package var code: String
    package var message: String
    /// Extra response headers (`Allow` on a 405).
    package var headers: [String] = []

    package init(_ status: UInt16, _ code: String, _ message: String, headers: [String] = []) {
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
    }
}
