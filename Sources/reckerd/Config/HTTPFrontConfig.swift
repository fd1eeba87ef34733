/// The `http` section: the HTTP/1.1 proxy front (docs/HTTP-FRONT.md). Off by default.
struct HTTPFrontConfig: Equatable {
    var enabled = false
    /// The front's Unix socket; nil: `http.sock` beside the daemon's own socket
    /// (`/run/reckerd/http.sock` for the system daemon).
    var socket: String?
    /// An optional loopback TCP listener, for `HTTP_PROXY` users.
    var listen: LoopbackAddress?
    /// Whether response heads carry `X-Reckerd-Reused`, `X-Reckerd-Connection` and
    /// `X-Reckerd-Queue-Ms`.
    var annotate = false
    /// A request head must arrive whole this soon after its first byte (slowloris).
    var headerTimeoutMs = 10_000
    /// A kept-alive connection with no request in progress is closed after this long, and
    /// so is one whose client takes none of its waiting output for as long.
    var idleTimeoutMs = 60_000

    /// The section as `--check-config` prints it.
    var json: ConfigJSON {
        var members: [(String, ConfigJSON)] = [("enabled", .bool(enabled))]
        if let socket { members.append(("socket", .string(socket))) }
        if let listen { members.append(("listen", .string(listen.description))) }
        members += [("annotate", .bool(annotate)), ("headerTimeout", .int(headerTimeoutMs)), ("idleTimeout", .int(idleTimeoutMs))]
        return .object(members)
    }
}
