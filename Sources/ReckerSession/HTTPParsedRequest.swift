/// A request head as HTTPRequestReader read it from an HTTP client, before reckerd's rules.
package struct HTTPParsedRequest {
    package init() {}

    package var method = ""
    /// The request target as sent: "/path?q" (origin-form), "http://host/path"
    /// (absolute-form), "host:port" (authority-form) or "*".
    package var target = ""
    package var major: UInt = 1
    package var minor: UInt = 1
    /// In order, as received (names as sent, values without surrounding whitespace).
    package var headers: [(name: String, value: String)] = []
    /// The reader's verdict on the client's wish for keep-alive (version and `Connection`).
    package var keepAlive = true
    package var chunked = false
    package var contentLength: UInt64?
    /// The client asked to switch protocols (`Upgrade` with `Connection: upgrade`).
    package var upgrade = false

    package var isHTTP10: Bool { major == 1 && minor == 0 }

    /// The values of every header named `name` (lower-case).
    package func values(_ name: String) -> [String] {
        headers.compactMap { $0.name.lowercased() == name ? $0.value : nil }
    }
}
