/// A request head as HTTPRequestReader read it from an HTTP client, before reckerd's rules.
struct HTTPParsedRequest {
    var method = ""
    /// The request target as sent: "/path?q" (origin-form), "http://host/path"
    /// (absolute-form), "host:port" (authority-form) or "*".
    var target = ""
    var major: UInt = 1
    var minor: UInt = 1
    /// In order, as received (names as sent, values without surrounding whitespace).
    var headers: [(name: String, value: String)] = []
    /// The reader's verdict on the client's wish for keep-alive (version and `Connection`).
    var keepAlive = true
    var chunked = false
    var contentLength: UInt64?
    /// The client asked to switch protocols (`Upgrade` with `Connection: upgrade`).
    var upgrade = false

    var isHTTP10: Bool { major == 1 && minor == 0 }

    /// The values of every header named `name` (lower-case).
    func values(_ name: String) -> [String] {
        headers.compactMap { $0.name.lowercased() == name ? $0.value : nil }
    }
}
