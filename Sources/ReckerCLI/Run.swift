import ReckerProtocol

#if canImport(Glibc)
import Glibc
#endif

/// What differs between `recker` and its fallback helper `recker-direct`.
public struct CLIEnvironment {
    /// Opens the channel requests go through.
    public var connect: (_ socketPath: String, _ handshakeTimeoutMs: Int) throws(ReckerError) -> any MessageChannel
    /// Runs the request without the daemon when none listens and fallback is on; returns
    /// the exit code (or nil when no fallback is available).
    public var fallback: (() -> Int32?)?
    /// True in `recker-direct`: the request goes out directly, not pooled.
    public var direct: Bool

    public init(connect: @escaping (_ socketPath: String, _ handshakeTimeoutMs: Int) throws(ReckerError) -> any MessageChannel,
                fallback: (() -> Int32?)?, direct: Bool) {
        self.connect = connect
        self.fallback = fallback
        self.direct = direct
    }
}

/// Exit codes (README "Exit codes"): curl's where curl has the same meaning, 70+ for the daemon.
enum ExitCode {
    static let ok: Int32 = 0
    static let usage: Int32 = 2
    static let badRequest: Int32 = 3
    static let dns: Int32 = 6
    static let connect: Int32 = 7
    static let upstreamProtocol: Int32 = 8
    static let httpError: Int32 = 22
    static let writeError: Int32 = 23
    static let timeout: Int32 = 28
    static let tls: Int32 = 35
    static let redirects: Int32 = 47
    static let send: Int32 = 55
    static let recv: Int32 = 56
    static let daemonUnavailable: Int32 = 70
    static let daemonProtocol: Int32 = 71
    static let daemonRefused: Int32 = 72
    static let batchItemsFailed: Int32 = 73

    static func of(_ e: ReckerError) -> Int32 {
        switch e.code {
        case .daemonUnavailable: daemonUnavailable
        case .invalidMethod, .invalidURL, .invalidHeaderName, .invalidHeaderValue, .forbiddenHeader,
             .unknownCriticalOption, .bodyLengthMismatch, .headersTooLarge: badRequest
        case .dnsFailed: dns
        case .connectFailed: connect
        case .connectTimeout, .timeout, .queueTimeout: timeout
        case .tlsFailed: tls
        case .tooManyRedirects: redirects
        case .upstreamSendFailed: send
        case .upstreamRecvFailed: recv
        case .upstreamProtocol, .upstreamFailed: upstreamProtocol
        case .shuttingDown, .queueFull, .tooManyInFlight, .accessDenied, .localResources, .destinationDenied, .tooManyClients: daemonRefused
        default: daemonProtocol
        }
    }
}

/// Runs the `recker` command line and returns its exit code.
public func runRecker(_ arguments: [String], _ env: CLIEnvironment) -> Int32 {
    // A reader that goes away (`| head -c 10`) is a write error (exit 23, as curl), not a
    // death by SIGPIPE (141).
    signal(SIGPIPE, SIG_IGN)
    do {
        return run(try Options.parse(arguments), env)
    } catch {
        if let m = error.message {
            Output.stderr.write("recker: \(m)\nrecker: try 'recker --help'\n")
        } else {
            Output.stdout.write(Options.usage + "\n")
        }
        return error.message == nil ? 0 : error.exitCode
    }
}

func run(_ o: Options, _ env: CLIEnvironment) -> Int32 {
    if o.version {
        Output.stdout.write("recker \(Message.release) (reckerd protocol \(Message.version))\n")
        return ExitCode.ok
    }
    let socketPath = o.socket ?? SocketPaths.clientPath()
    func report(_ e: ReckerError) -> Int32 {
        if !o.silent || o.showError {
            var text = "recker: \(e.message) [\(e.code.name)]\n"
            if e.mayHaveReachedUpstream && !e.retrySafe {
                text += "recker: the request may have reached the upstream: sending it again may repeat its effect\n"
            }
            if e.code == .daemonUnavailable {
                text += "recker: start the daemon with `reckerd` (or `systemctl start reckerd.socket`), point RECKER_SOCKET at its socket, or pass --fallback to fetch without it\n"
            }
            Output.stderr.write(text)
        }
        return ExitCode.of(e)
    }

    let connection: any MessageChannel
    do {
        // The handshake waits as long as -m allows, else a few seconds.
        connection = try env.connect(socketPath, o.request.totalTimeoutMs.map { Int($0) } ?? ReckerConnection.defaultHandshakeTimeoutMs)
    } catch {
        if error.code == .daemonUnavailable, o.fallback, let fallback = env.fallback, let code = fallback() {
            return code
        }
        return report(error)
    }
    if env.direct && !o.silent {
        Output.stderr.write("recker: no reckerd listening; fetching directly (not pooled)\n")
    }

    if o.stats {
        do {
            try connection.send(.statsRequest(stream: 1, format: o.statsFormat))
            while true {
                switch try connection.receive() {
                case .statsResponse(_, let document, let more):
                    Output.stdout.write(document)
                    if more { continue }
                    if o.statsFormat == 0 { Output.stdout.write([0x0A]) }
                    return ExitCode.ok
                case .error(_, let e): return report(e)
                default: continue
                }
            }
        } catch { return report(error) }
    }

    if o.batch {
        let path = o.url ?? "-"
        let text: String
        do { text = String(decoding: try readAll(path), as: UTF8.self) } catch {
            Output.stderr.write("recker: \(error.message ?? "cannot read \(path)")\n")
            return error.exitCode
        }
        do {
            let items = try Batch.read(text, options: o.request)
            let failed = try Batch(items: items, concurrency: o.concurrency, outputDir: o.outputDir, connection: connection).run()
            return failed == 0 ? ExitCode.ok : ExitCode.batchItemsFailed
        } catch let e as UsageError {
            Output.stderr.write("recker: \(e.message ?? "bad input")\n")
            return ExitCode.usage
        } catch let e as ReckerError {
            return report(e)
        } catch {
            return ExitCode.daemonProtocol
        }
    }

    let method = o.method ?? (o.headOnly ? "HEAD" : o.body != nil ? "POST" : "GET")
    let body = o.body ?? []
    // As curl, a User-Agent unless the command line names one.
    let headers = o.headers.contains { $0.name.lowercased() == "user-agent" } ? o.headers
        : o.headers + [(name: "User-Agent", value: "recker/\(Message.release)")]
    let head = RequestHead(method: method, url: o.url!, headers: headers,
                           bodyLength: o.body.map { UInt64($0.count) }, options: o.request)
    var out = Output.stdout
    // -o writes to a temporary file beside FILE, renamed over it only on success: a refused
    // request, a -f error or a broken transfer leaves an existing FILE as it was.
    var staged: (fd: Int32, temp: String, path: String)?
    if let path = o.output {
        var template = Array((path + ".recker-XXXXXX").utf8CString)
        let fd = mkstemp(&template)
        if fd >= 0 { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        guard fd >= 0 else {
            return report(ReckerError(.internalError, "cannot write beside \(path): \(String(cString: strerror(errno)))"))
        }
        let mask = umask(0)
        umask(mask)
        fchmod(fd, 0o666 & ~mask)
        staged = (fd, String(cString: template), path)
        out = Output(fd: fd)
    }
    let code = exchange(o, head, body, connection, out, env, report)
    if let staged {
        close(staged.fd)
        if code == ExitCode.ok && rename(staged.temp, staged.path) == 0 { return code }
        unlink(staged.temp)
        if code == ExitCode.ok {
            return report(ReckerError(.internalError, "cannot write \(staged.path): \(String(cString: strerror(errno)))"))
        }
    }
    return code
}

/// Sends the request and writes the response to `out`; returns the exit code.
private func exchange(_ o: Options, _ head: RequestHead, _ body: [UInt8], _ connection: any MessageChannel, _ out: Output,
                      _ env: CLIEnvironment, _ report: (ReckerError) -> Int32) -> Int32 {
    let window = Int(connection.welcome.initialWindow)
    let maxData = Int(connection.welcome.maxFrame) - Frame.headerSize
    var sendWindow = window
    var sent = 0
    var unacked = 0
    var response: ResponseHead?
    var suppressBody = false
    do {
        try connection.send(.requestHead(stream: 1, head, endRequest: o.body == nil))
        while true {
            if o.body != nil && sent < body.count && sendWindow > 0 {
                let n = min(sendWindow, maxData, body.count - sent)
                try connection.send(.requestBody(stream: 1, Array(body[sent ..< sent + n]), endRequest: sent + n == body.count))
                sent += n
                sendWindow -= n
                continue
            }
            switch try connection.receive() {
            case .windowUpdate(_, let inc):
                sendWindow += Int(inc)
            case .responseHead(_, let h):
                response = h
                if o.fail && h.status >= 400 {
                    suppressBody = true
                    continue
                }
                if o.include {
                    var text = "HTTP/\(h.versionName) \(h.status)\r\n"
                    for x in h.headers { text += "\(x.name): \(x.value)\r\n" }
                    text += "\r\n"
                    guard out.write(text) else { return report(ReckerError(.internalError, "write error")) }
                }
            case .responseBody(_, let data):
                unacked += data.count
                if !suppressBody && !out.write(data) {
                    if !o.silent { Output.stderr.write("recker: failed writing the body\n") }
                    return ExitCode.writeError
                }
                if unacked >= window / 2 {
                    try connection.send(.windowUpdate(stream: 1, increment: UInt32(unacked)))
                    unacked = 0
                }
            case .responseEnd(_, let end):
                if let w = o.writeOut { Output.stdout.write(WriteOut.expand(w, head: response, end: end, pooled: !env.direct)) }
                if suppressBody {
                    if !o.silent || o.showError {
                        Output.stderr.write("recker: The requested URL returned error: \(response!.status)\n")
                    }
                    return ExitCode.httpError
                }
                return ExitCode.ok
            case .error(_, let e):
                if let w = o.writeOut { Output.stdout.write(WriteOut.expand(w, head: response, end: nil, pooled: !env.direct)) }
                return report(e)
            default:
                continue
            }
        }
    } catch {
        return report(error)
    }
}
